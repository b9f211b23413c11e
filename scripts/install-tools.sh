#!/usr/bin/env bash
# Install the external programs stegwatch drives: outguess and steghide (JPEG methods) and
# chromium (the dashboard's end-to-end test). As root with apt-get it installs them (and fails
# loudly if that fails); otherwise it says what is missing: the corpus then skips those methods
# and the tests that need a program are skipped with the reason.
set -euo pipefail
missing=()
for tool in outguess steghide chromium; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "note: ${missing[*]} not installed; stegwatch skips those methods. Install with: sudo apt-get install ${missing[*]}" >&2
fi
