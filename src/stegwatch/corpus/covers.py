"""The curated cover list: which photographs stegwatch builds corpora from, and where they are.

``covers.tsv`` (shipped in this package) names every cover file: the package
that ships it (a Debian package, or ``pypi:NAME`` for the wheels stegwatch
depends on), the package version it was checked against, its path, its
SHA-256, its licence, its scene and its kind:

- ``photo``: a camera photograph, one row per scene (a stereo pair or a
  sequence of one scene is one row), so every row is one independent
  photograph and one ``cover_id`` (``photo:<scene_id>``);
- ``alpha_cutout``: a photographic cut-out with real alpha (not counted as an
  independent photograph; material for alpha negatives).

A Debian row's path is relative to ``/`` (where apt installs it) or to a
folder named in ``STEGWATCH_COVERS_ROOT`` (several separated by ``:``; for
packages unpacked with ``dpkg -x``); ``BUNDLE.rcc::/NAME`` is a file inside a
Qt resource bundle. A ``pypi:`` row's path is relative to the folder holding
the installed module. A file is used only when its bytes have the listed
SHA-256, so a corpus never silently changes with a package update.

``stegwatch covers --doc docs/covers.md`` renders :func:`covers_document`.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.resources
import importlib.util
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from stegwatch.corpus.qt_resources import ResourceError, read_qt_resource

#: Columns of ``covers.tsv``, in order.
COLUMNS = ("package", "version", "path", "sha256", "licence", "scene_id", "kind", "notes")
#: Kinds of row: camera photographs (independent covers) and photographic cut-outs with alpha.
KINDS = ("photo", "alpha_cutout")
#: Environment variable: folders (``:``-separated) holding unpacked Debian packages, searched before ``/``.
COVERS_ROOT_ENV = "STEGWATCH_COVERS_ROOT"
#: Prefix of the package column for covers inside Python wheels.
PYPI = "pypi:"
#: Prefix of the ``cover_id`` of every listed photograph.
PHOTO_COVER_PREFIX = "photo:"
_BUNDLE_SEPARATOR = "::"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class ListedCover:
    """One row of the cover list."""

    package: str
    version: str
    path: str
    sha256: str
    licence: str
    scene_id: str
    kind: str
    notes: str = ""

    @property
    def builtin(self) -> bool:
        """Shipped inside a Python wheel that stegwatch depends on (no set-up needed)."""
        return self.package.startswith(PYPI)

    @property
    def cover_id(self) -> str:
        return f"{PHOTO_COVER_PREFIX}{self.scene_id}"

    @property
    def install_command(self) -> str:
        """How to get the package that ships this file."""
        if self.builtin:
            return f"pip install {self.package[len(PYPI):]}"
        return f"sudo apt-get install --no-install-recommends {self.package}"


def default_cover_list() -> Path:
    """The ``covers.tsv`` shipped with stegwatch."""
    return Path(str(importlib.resources.files("stegwatch.corpus") / "covers.tsv"))


def read_cover_list(path: str | Path | None = None) -> tuple[ListedCover, ...]:
    """The rows of a cover list (default: the shipped one), in file order."""
    with Path(path or default_cover_list()).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        return tuple(ListedCover(**{name: (row.get(name) or "").strip() for name in COLUMNS}) for row in reader)


def cover_roots(environ: dict[str, str] | None = None) -> tuple[Path, ...]:
    """Folders searched for Debian covers: those in ``STEGWATCH_COVERS_ROOT``, then ``/``."""
    value = (os.environ if environ is None else environ).get(COVERS_ROOT_ENV, "")
    return tuple(Path(p) for p in value.split(os.pathsep) if p) + (Path("/"),)


@dataclass(frozen=True)
class CoverLocation:
    """Where a listed cover's bytes are: a file, or a resource inside a Qt bundle file."""

    path: Path
    member: str | None = None

    def read_bytes(self) -> bytes:
        if self.member is None:
            return self.path.read_bytes()
        return read_qt_resource(self.path, self.member)


def _module_folder(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


def locate(cover: ListedCover, roots: tuple[Path, ...]) -> CoverLocation | None:
    """Where ``cover`` is on this machine, or None (its hash is not checked here)."""
    file_part, _, member = cover.path.partition(_BUNDLE_SEPARATOR)
    if cover.builtin:
        base = _module_folder(file_part.split("/", 1)[0])
        candidates = [base] if base is not None else []
    else:
        candidates = list(roots)
    for root in candidates:
        path = root / file_part
        if path.is_file():
            return CoverLocation(path, member or None)
    return None


@dataclass(frozen=True)
class FoundCover:
    """A listed cover present on this machine with the listed bytes."""

    cover: ListedCover
    location: CoverLocation


@dataclass(frozen=True)
class MissingCover:
    """A listed cover that cannot be used here, and why."""

    cover: ListedCover
    reason: str


@dataclass(frozen=True)
class CoverScan:
    """Which listed covers this machine has (verified by SHA-256) and which it lacks."""

    found: tuple[FoundCover, ...]
    missing: tuple[MissingCover, ...]
    listed: tuple[ListedCover, ...] = field(default=())

    def missing_by_package(self) -> dict[str, dict]:
        """package -> files missing, files with other bytes, and the command that installs the package."""
        report: dict[str, dict] = {}
        for item in self.missing:
            row = report.setdefault(item.cover.package, {"missing": 0, "mismatched": 0, "install": item.cover.install_command})
            row["mismatched" if item.reason.startswith("sha256") else "missing"] += 1
        return dict(sorted(report.items()))


def _sha256_or_reason(location: CoverLocation, cover: ListedCover) -> str | None:
    try:
        data = location.read_bytes()
    except (OSError, ResourceError) as exc:
        return f"unreadable: {exc}"
    digest = hashlib.sha256(data).hexdigest()
    if digest != cover.sha256:
        return f"sha256 {digest[:12]}... differs from the listed {cover.sha256[:12]}... (listed for {cover.package} {cover.version})"
    return None


def scan_covers(
    covers: tuple[ListedCover, ...] | None = None,
    *,
    kinds: tuple[str, ...] = ("photo",),
    builtin_only: bool = False,
    roots: tuple[Path, ...] | None = None,
) -> CoverScan:
    """Find the listed covers of ``kinds`` on this machine and check each file's SHA-256.

    Parameters
    ----------
    covers : rows to look for (default: the shipped list).
    kinds : row kinds to include.
    builtin_only : only the covers inside Python wheels (no Debian package needed).
    roots : folders searched for Debian covers (default: :func:`cover_roots`).

    Returns
    -------
    CoverScan: the covers found with the listed bytes, in list order, and the
    missing ones with the reason (not found, unreadable, other bytes).
    """
    rows = tuple(c for c in (covers if covers is not None else read_cover_list())
                 if c.kind in kinds and (c.builtin or not builtin_only))
    roots = cover_roots() if roots is None else roots
    found: list[FoundCover] = []
    missing: list[MissingCover] = []
    for cover in rows:
        location = locate(cover, roots)
        reason = "not found" if location is None else _sha256_or_reason(location, cover)
        if reason is None and location is not None:
            found.append(FoundCover(cover, location))
        else:
            missing.append(MissingCover(cover, reason or "not found"))
    return CoverScan(found=tuple(found), missing=tuple(missing), listed=rows)


# --- the document ---------------------------------------------------------------------------


def installed_version(package: str) -> str | None:
    """The version of ``package`` installed here (dpkg-query for Debian, metadata for pypi:), or None."""
    if package.startswith(PYPI):
        from importlib import metadata

        try:
            return metadata.version(package[len(PYPI):])
        except metadata.PackageNotFoundError:
            return None
    if shutil.which("dpkg-query") is None:
        return None
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                            capture_output=True, text=True, check=False, timeout=30)
    status, _, version = result.stdout.partition("\t")
    return version.strip() if result.returncode == 0 and status.endswith(" installed") else None


@functools.cache
def debian_download_size(package: str) -> int | None:
    """The size in bytes of ``package``'s .deb as apt knows it (candidate version), or None."""
    if shutil.which("apt-cache") is None:
        return None
    result = subprocess.run(["apt-cache", "show", "--no-all-versions", package],
                            capture_output=True, text=True, check=False, timeout=60)
    for line in result.stdout.splitlines():
        if line.startswith("Size:"):
            return int(line.split(":", 1)[1])
    return None


def setup_packages(covers: tuple[ListedCover, ...] | None = None) -> list[str]:
    """The Debian packages the set-up installs: those with listed photographs."""
    rows = covers if covers is not None else read_cover_list()
    return sorted({c.package for c in rows if c.kind == "photo" and not c.builtin})


def covers_summary(scan: CoverScan, *, versions: bool = True) -> dict:
    """Per package: version, licences, photographs and cut-outs listed and present, download size; and totals.

    ``scan`` should cover every kind (``scan_covers(kinds=KINDS)``).
    ``versions=False`` skips asking dpkg and apt (the listed versions are shown).
    """
    present = {f.cover for f in scan.found}
    setup = set(setup_packages(scan.listed))
    packages = []
    for package in sorted({c.package for c in scan.listed}, key=lambda p: (not p.startswith(PYPI), p)):
        rows = [c for c in scan.listed if c.package == package]
        installed = installed_version(package) if versions else None
        size = debian_download_size(package) if versions and not package.startswith(PYPI) else None
        packages.append({
            "package": package,
            "listed_version": rows[0].version,
            "installed_version": installed,
            "licences": dict(Counter(c.licence for c in rows).most_common()),
            "photos_listed": sum(c.kind == "photo" for c in rows),
            "photos_present": sum(c.kind == "photo" and c in present for c in rows),
            "alpha_cutouts_listed": sum(c.kind == "alpha_cutout" for c in rows),
            "alpha_cutouts_present": sum(c.kind == "alpha_cutout" and c in present for c in rows),
            "download_bytes": size,
            "installed_by_setup": package.startswith(PYPI) or package in setup,
            "install": rows[0].install_command,
        })
    return {
        "packages": packages,
        "photos_listed": sum(p["photos_listed"] for p in packages),
        "photos_present": sum(p["photos_present"] for p in packages),
        "alpha_cutouts_listed": sum(p["alpha_cutouts_listed"] for p in packages),
        "alpha_cutouts_present": sum(p["alpha_cutouts_present"] for p in packages),
        "setup_packages": sorted(setup),
        "setup_download_bytes": sum(p["download_bytes"] or 0 for p in packages if p["package"] in setup),
        "missing": scan.missing_by_package(),
    }


#: The command that regenerates docs/covers.md (named in the document).
DOC_COMMAND = "stegwatch covers --doc docs/covers.md"


def covers_document(summary: dict) -> str:
    """docs/covers.md: the cover sources, versions, licences and counts, from :func:`covers_summary`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )
    env.filters["mb"] = lambda n: "" if n is None else f"{n / 1e6:.1f} MB"
    return env.get_template("covers.md.j2").render(summary=summary, command=DOC_COMMAND, env_var=COVERS_ROOT_ENV)


def covers_report(doc: str | Path | None = None) -> dict:
    """:func:`covers_summary` of every listed cover on this machine; with ``doc``, also write :func:`covers_document` there."""
    from stegwatch.format.files import write_text_atomic

    summary = covers_summary(scan_covers(kinds=KINDS))
    if doc is not None:
        write_text_atomic(doc, covers_document(summary))
    return summary
