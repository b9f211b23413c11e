#!/usr/bin/env python3
"""Record sealwatch's rich features on a fixed set of images, as test fixtures for stegwatch.features.rich.

sealwatch (the field's reference feature library, uibk-uncover) needs torch,
so it is not a stegwatch dependency: ``make test`` compares stegwatch's
vectorized features with the outputs recorded here, and only this script
needs sealwatch. Run it in a separate virtual environment:

    python3.11 -m venv /work/anchor-venv
    /work/anchor-venv/bin/pip install 'sealwatch>=2025.9' jpeglib pillow numpy scikit-image
    # or, from a checkout: /work/anchor-venv/bin/pip install -e '.[anchor]' scikit-image
    /work/anchor-venv/bin/python scripts/sealwatch_fixtures.py

It writes, under tests/data/sealwatch/:

- the input images themselves, so the tests never depend on regenerating them
  bit for bit: ``spatial_<name>.png`` (8-bit grayscale) and
  ``jpeg_<name>_q<quality>.jpg`` (written by Pillow at that quality);
- ``features.npz``: ``spam/<name>`` (686 values, ``sealwatch.spam.extract``
  on the PNG's pixels), ``srmq1/<name>`` (SRMQ1's first- and second-order
  submodels from ``sealwatch.srmq1.extract``, float32, concatenated in the
  order and with the sizes that ``manifest.json`` lists) and
  ``dctr/<name>_q<quality>`` (8,000 values,
  ``sealwatch.dctr.extract_from_file(path, quality)``), each flattened in
  sealwatch's order (``sealwatch.tools.flatten``);
- ``manifest.json``: each input's SHA-256, size and quality, and the versions.

The inputs are made only when missing (or with ``--make-inputs``): fixed crops
of scikit-image's built-in photographs (the same wheel files stegwatch lists
as built-in covers), converted to grayscale with Pillow. Existing inputs are
kept, so re-running only re-records sealwatch's outputs.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import json
import platform
import sys
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "sealwatch"

#: (name, scikit-image data file, (top, left, height, width)): 256x256 crops and two of odd sizes.
SPATIAL = (
    ("astronaut", "astronaut.png", (100, 150, 256, 256)),
    ("camera", "camera.png", (64, 128, 256, 256)),
    ("coffee", "coffee.png", (50, 200, 256, 256)),
    ("chelsea", "chelsea.png", (20, 100, 256, 256)),
    ("brick", "brick.png", (0, 0, 256, 256)),
    ("moon", "moon.png", (128, 128, 256, 256)),
    ("rocket_odd", "rocket.jpg", (100, 150, 177, 301)),
    ("coins_odd", "coins.png", (20, 50, 129, 250)),
)
#: JPEG inputs: (spatial name, quality, colour). Qualities below and above 50 take both branches of DCTR's q.
JPEGS = (
    ("astronaut", 75, False),
    ("camera", 90, False),
    ("coffee", 30, False),
    ("chelsea", 50, False),
    ("brick", 95, False),
    ("moon", 85, False),
    ("rocket_odd", 85, False),
    ("coins_odd", 95, False),
    ("astronaut", 80, True),  # a colour JPEG (4:2:0): DCTR reads its luminance
)
#: SRMQ1 submodels recorded: the first- and second-order ones (sealwatch's names start so), which
#: stegwatch.features.rich.srmq1 implements.
SRMQ1_PREFIXES = ("s1_", "s2_")


def _photo(filename: str, colour: bool) -> Image.Image:
    import skimage

    image = Image.open(Path(skimage.__file__).parent / "data" / filename)
    image.load()
    return image.convert("RGB" if colour else "L")


def _crop(filename: str, box: tuple[int, int, int, int], colour: bool = False) -> Image.Image:
    top, left, height, width = box
    return _photo(filename, colour).crop((left, top, left + width, top + height))


def jpeg_name(name: str, quality: int, colour: bool) -> str:
    return f"jpeg_{name}{'_rgb' if colour else ''}_q{quality}.jpg"


def make_inputs(out: Path) -> None:
    """Write the input images (only the missing ones)."""
    boxes = {name: (filename, box) for name, filename, box in SPATIAL}
    for name, (filename, box) in boxes.items():
        path = out / f"spatial_{name}.png"
        if not path.exists():
            _crop(filename, box).save(path, optimize=True)
    for name, quality, colour in JPEGS:
        path = out / jpeg_name(name, quality, colour)
        if not path.exists():
            filename, box = boxes[name]
            buffer = io.BytesIO()
            _crop(filename, box, colour).save(buffer, format="JPEG", quality=quality)
            path.write_bytes(buffer.getvalue())


def record(out: Path) -> dict:
    import sealwatch

    arrays: dict[str, np.ndarray] = {}
    manifest: dict = {"sealwatch": importlib.metadata.version("sealwatch"), "numpy": np.__version__,
                      "python": platform.python_version(), "backend": str(sealwatch.get_backend()),
                      "command": " ".join([Path(sys.executable).name, *sys.argv]), "inputs": {},
                      "srmq1_submodels": []}
    for name, _, _ in SPATIAL:
        path = out / f"spatial_{name}.png"
        gray = np.asarray(Image.open(path))
        assert gray.dtype == np.uint8 and gray.ndim == 2, path
        arrays[f"spam/{name}"] = sealwatch.tools.flatten(sealwatch.spam.extract(gray))
        submodels = {k: v for k, v in sealwatch.srmq1.extract(gray).items() if k.startswith(SRMQ1_PREFIXES)}
        manifest["srmq1_submodels"] = [[k, int(v.size)] for k, v in submodels.items()]
        arrays[f"srmq1/{name}"] = np.concatenate([np.asarray(v).reshape(-1) for v in submodels.values()])
        manifest["inputs"][path.name] = {"kind": "spatial", "shape": list(gray.shape),
                                         "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    for name, quality, colour in JPEGS:
        path = out / jpeg_name(name, quality, colour)
        key = path.stem.removeprefix("jpeg_")
        arrays[f"dctr/{key}"] = sealwatch.tools.flatten(sealwatch.dctr.extract_from_file(str(path), quality))
        with Image.open(path) as image:
            size = [image.height, image.width]
        manifest["inputs"][path.name] = {"kind": "jpeg", "quality": quality, "shape": size, "colour": colour,
                                         "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    for key, values in arrays.items():
        assert np.all(np.isfinite(values)), key
    np.savez_compressed(out / "features.npz", **arrays)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--make-inputs", action="store_true", help="write missing input images (needs scikit-image)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    missing = [n for n, _, _ in SPATIAL if not (args.out / f"spatial_{n}.png").exists()]
    missing += [n for n, q, c in JPEGS if not (args.out / jpeg_name(n, q, c)).exists()]
    if args.make_inputs or missing:
        make_inputs(args.out)
    manifest = record(args.out)
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"recorded {len(manifest['inputs'])} inputs with sealwatch {manifest['sealwatch']} "
          f"into {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
