#!/usr/bin/env bash
# Install what stegwatch uses from Debian: the programs it drives (outguess and steghide for the JPEG
# methods, chromium for the dashboard's end-to-end test) and the packages that ship the cover
# photographs of the default corpus (those with `photo` rows in src/stegwatch/corpus/covers.tsv;
# docs/covers.md lists them). As root with apt-get it installs what is missing (and fails loudly if
# that fails); otherwise it says what is missing: the corpus then skips those methods and builds
# from the photographs that are there, and the tests that need a program are skipped with the reason.
# Does nothing, quickly, when everything is installed.
set -euo pipefail
covers_list="$(cd "$(dirname "$0")/.." && pwd)/src/stegwatch/corpus/covers.tsv"

tools=()
for tool in outguess steghide chromium; do
  command -v "$tool" >/dev/null 2>&1 || tools+=("$tool")
done

packages=()
if command -v dpkg-query >/dev/null 2>&1; then
  for package in $(awk -F'\t' 'NR > 1 && $7 == "photo" && $1 !~ /^pypi:/ { print $1 }' "$covers_list" | sort -u); do
    [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" = "install ok installed" ] || packages+=("$package")
  done
fi

[ ${#tools[@]} -eq 0 ] && [ ${#packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  all=("${tools[@]}" "${packages[@]}")
  echo "installing ${all[*]} with apt-get" >&2
  apt-get update -qq
  export DEBIAN_FRONTEND=noninteractive
  [ ${#tools[@]} -eq 0 ] || apt-get install -y -qq "${tools[@]}" >/dev/null
  [ ${#packages[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
else
  [ ${#tools[@]} -eq 0 ] || echo "note: ${tools[*]} not installed; stegwatch skips those methods. Install with: sudo apt-get install ${tools[*]}" >&2
  [ ${#packages[@]} -eq 0 ] || echo "note: cover photographs from ${packages[*]} not installed; the default corpus uses the others. Install with: sudo apt-get install --no-install-recommends ${packages[*]}" >&2
fi
