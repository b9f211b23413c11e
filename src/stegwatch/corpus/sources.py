"""Cover sources: the photographs that installed packages ship, their crops, and user folders.

Nothing is downloaded: scikit-image, scikit-learn and matplotlib wheels carry
real photographs. Only photographs are used (no synthetic test charts). Each
photograph is one ``cover_id``; every crop of it, and every negative and stego
file made from those crops, carries that id, so cross-validation can keep a
photograph's descendants in one fold.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from stegwatch.format.files import DEFAULT_LIMITS, IMAGE_SUFFIXES, ReadLimits, UnreadableFile, decode_image, read_file_bytes


@dataclass(frozen=True)
class PhotoSource:
    """One source photograph: where it lives and which cover group it belongs to."""

    name: str
    cover_id: str
    cover_source: str
    path: Path


# (package, folder inside the package, file, cover group). The two motorcycle
# frames are a stereo pair of one scene, so they share a cover group.
_BUILTIN = (
    ("skimage", "data", "astronaut.png", "astronaut"),
    ("skimage", "data", "camera.png", "camera"),
    ("skimage", "data", "chelsea.png", "chelsea"),
    ("skimage", "data", "coffee.png", "coffee"),
    ("skimage", "data", "coins.png", "coins"),
    ("skimage", "data", "moon.png", "moon"),
    ("skimage", "data", "brick.png", "brick"),
    ("skimage", "data", "grass.png", "grass"),
    ("skimage", "data", "gravel.png", "gravel"),
    ("skimage", "data", "ihc.png", "ihc"),
    ("skimage", "data", "clock_motion.png", "clock"),
    ("skimage", "data", "motorcycle_left.png", "motorcycle"),
    ("skimage", "data", "motorcycle_right.png", "motorcycle"),
    ("skimage", "data", "rocket.jpg", "rocket"),
    ("skimage", "data", "retina.jpg", "retina"),
    ("skimage", "data", "hubble_deep_field.jpg", "hubble_deep_field"),
    ("sklearn", "datasets/images", "china.jpg", "china"),
    ("sklearn", "datasets/images", "flower.jpg", "flower"),
    ("matplotlib", "mpl-data/sample_data", "grace_hopper.jpg", "grace_hopper"),
)


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def builtin_sources() -> tuple[PhotoSource, ...]:
    """The built-in photographs that are present on this machine, in a fixed order."""
    found = []
    for package, folder, filename, group in _BUILTIN:
        base = _package_dir(package)
        if base is None:
            continue
        path = base / folder / filename
        if path.is_file():
            found.append(
                PhotoSource(
                    name=f"{package}:{Path(filename).stem}",
                    cover_id=f"{package}:{group}",
                    cover_source=package,
                    path=path,
                )
            )
    return tuple(found)


@functools.lru_cache(maxsize=64)
def load_source(path: Path) -> Image.Image:
    """A source photograph, decoded once per process, as RGB or L."""
    image = Image.open(path)
    image.load()
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


RESAMPLERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "box": Image.Resampling.BOX,
}


@dataclass(frozen=True)
class CropSpec:
    """A square crop of a source photograph, resampled to ``size`` pixels a side."""

    size: int
    left: int
    top: int
    side: int
    resample: str
    flip: str  # "none", "horizontal" or "vertical"
    rotate: int  # degrees, multiple of 90


def sample_crop(rng: np.random.Generator, width: int, height: int, size: int) -> CropSpec:
    """Draw a crop: position, scale (30-100% of the short side), filter, flip, rotation."""
    short = min(width, height)
    low = min(short, max(int(0.3 * short), size // 2))
    side = int(rng.integers(low, short + 1))
    return CropSpec(
        size=size,
        left=int(rng.integers(0, width - side + 1)),
        top=int(rng.integers(0, height - side + 1)),
        side=side,
        resample=str(rng.choice(sorted(RESAMPLERS))),
        flip=str(rng.choice(["none", "horizontal", "vertical"])),
        rotate=int(rng.choice([0, 90, 180, 270])),
    )


def render_crop(image: Image.Image, spec: CropSpec) -> Image.Image:
    box = (spec.left, spec.top, spec.left + spec.side, spec.top + spec.side)
    out = image.resize((spec.size, spec.size), RESAMPLERS[spec.resample], box=box)
    if spec.flip == "horizontal":
        out = ImageOps.mirror(out)
    elif spec.flip == "vertical":
        out = ImageOps.flip(out)
    if spec.rotate:
        out = out.rotate(spec.rotate, expand=True)
    return out


def photo_crop(source: PhotoSource, rng: np.random.Generator, size: int) -> tuple[Image.Image, CropSpec]:
    """A fresh crop of ``source`` drawn from ``rng``."""
    image = load_source(source.path)
    spec = sample_crop(rng, image.width, image.height, size)
    return render_crop(image, spec), spec




@dataclass(frozen=True)
class UserCover:
    """One file from a ``--covers`` folder; each file is its own cover group."""

    path: Path
    sha256: str
    cover_id: str
    extension: str
    format: str


def scan_user_covers(
    folders: list[Path], limits: ReadLimits = DEFAULT_LIMITS
) -> tuple[list[UserCover], list[tuple[str, str]]]:
    """Every readable image under ``folders`` (recursive, sorted), and (path, reason) for the rest.

    Files are fully decoded here, so a corrupt cover is reported before the build uses it.
    """
    covers: list[UserCover] = []
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            errors.append((str(folder), "not a folder"))
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
            try:
                data = read_file_bytes(path, limits)
                image = decode_image(data, str(path), limits)
            except UnreadableFile as exc:
                errors.append((exc.path, exc.reason))
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue  # the same bytes twice would put one cover in two groups
            seen.add(digest)
            suffix = path.suffix.lower() if path.suffix.lower() in IMAGE_SUFFIXES else ".img"
            covers.append(
                UserCover(
                    path=path,
                    sha256=digest,
                    cover_id=f"user:{path.stem}-{digest[:8]}",
                    extension=suffix,
                    format=image.format or "UNKNOWN",
                )
            )
    return covers, errors
