#!/usr/bin/env python3
"""Write stegwatch's curated cover list from a cover survey.

The survey (a TSV with the columns ``package version path sha256 licence
scene_id width height format mode kind notes``, one row per chosen file and
exactly one ``photo`` row per scene) records every photograph found in Debian
packages and PyPI wheels, looked at one by one. This script keeps the rows of
the packages stegwatch installs (chosen for photographs per megabyte of
download), drops the rows that are not camera photographs, shortens the
licence to its identifier (the rest goes to the notes), and writes
``src/stegwatch/corpus/covers.tsv`` sorted by package and path.

Usage: python scripts/import_cover_survey.py SURVEY.tsv [OUT.tsv]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

# Debian packages whose photographs the set-up installs (scripts/install-tools.sh reads the list):
# 65 MB of .deb for about 275 photographs. opencv-doc (96 MB, 57 photographs), gimp-help-en
# (50 MB, 23) and the desktop-background packages (0.1-0.5 photographs per MB) were left out.
PHOTO_PACKAGES = {
    "gcompris-qt-data",  # 44 MB: 254 photographs (115 of 1024-1920 px, 139 of at most 320 px)
    "lomiri-wallpapers-16.04",  # 16 MB: 13 camera photographs of 1365-5312 px
    "palapeli-data",  # 2 MB: 5 photographs of 1024-1620 px
    "cimg-examples",  # 2 MB: 2 small photographs (PPM, BMP)
    "libvips-doc",  # 0.7 MB: 1 photograph
    # Built in: the wheels of stegwatch's dependencies (imagehash brings PyWavelets).
    "pypi:scikit-image",
    "pypi:scikit-learn",
    "pypi:matplotlib",
    "pypi:PyWavelets",
}
# Listed for later use (alpha negatives), not installed by the set-up: 161 MB and 246 MB.
ALPHA_PACKAGES = {"tuxpaint-stamps-default", "stellarium-data"}
# Survey rows of kind photo that are not camera photographs: a scanned page.
NOT_CAMERA = {"ski-scanned-page"}

COLUMNS = ("package", "version", "path", "sha256", "licence", "scene_id", "kind", "notes")


def convert(row: dict[str, str]) -> dict[str, str] | None:
    """One row of the cover list, or None when the row is not kept."""
    kind = row["kind"]
    if row["scene_id"] in NOT_CAMERA:
        return None
    if not ((kind == "photo" and row["package"] in PHOTO_PACKAGES) or (kind == "alpha_cutout" and row["package"] in ALPHA_PACKAGES)):
        return None
    licence, _, detail = row["licence"].partition(" (")
    if licence.startswith(("public domain", "no known")):
        licence, detail = "public-domain", row["licence"]
    elif licence.startswith("Middlebury"):  # a research data set's terms, not a licence
        licence, detail = "unstated", row["licence"]
    elif licence == "CC0":
        licence = "CC0-1.0"
    notes = [f"{row['width']}x{row['height']} {row['format']} {row['mode']}"]
    if detail:
        notes.append("licence: " + detail.rstrip(")"))
    if row["notes"]:
        notes.append(row["notes"])
    return {
        "package": row["package"],
        "version": row["version"].split(" ")[0],
        "path": row["path"],
        "sha256": row["sha256"],
        "licence": licence.strip(),
        "scene_id": row["scene_id"],
        "kind": kind,
        "notes": "; ".join(notes).replace("\t", " "),
    }


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    survey = Path(argv[1])
    out = Path(argv[2]) if len(argv) == 3 else Path(__file__).resolve().parents[1] / "src/stegwatch/corpus/covers.tsv"
    with survey.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in (convert(row) for row in csv.DictReader(handle, delimiter="\t")) if r]
    rows.sort(key=lambda r: (r["kind"] != "photo", r["package"], r["path"]))
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{out}: {sum(r['kind'] == 'photo' for r in rows)} photographs, {len(rows)} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
