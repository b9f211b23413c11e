"""Cover sources: the listed photographs, their crops, and user folders.

The photographs come from the curated cover list (:mod:`stegwatch.corpus.covers`):
the built-in ones inside the scikit-image, scikit-learn, matplotlib and
PyWavelets wheels, and the ones inside Debian packages that the set-up
installs. Only camera photographs are used (no synthetic test charts). Each
photograph is one ``cover_id`` (``photo:<scene_id>``); every crop of it, and
every negative and stego file made from those crops, carries that id, so
cross-validation can keep a photograph's descendants in one fold.
``cover_source`` is the package that ships it.

A build reduces each photograph once (:func:`prepare_sources`: at most
:data:`REDUCED_LONG_SIDE` pixels on the long side, Lanczos) and keeps the
pixels uncompressed in its state folder; crops then read only the rows they
need from a memory map instead of decoding a 15 MB PNG per crop.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from stegwatch.corpus.covers import PHOTO_COVER_PREFIX, CoverLocation, CoverScan, ListedCover, read_cover_list, scan_covers
from stegwatch.format.files import DEFAULT_LIMITS, IMAGE_SUFFIXES, ReadLimits, UnreadableFile, decode_image, read_file_bytes
from stegwatch.parallel import map_unordered

#: Longest side, in pixels, of a photograph after :func:`prepare_sources`.
REDUCED_LONG_SIDE = 1600
#: Bump when :func:`reduce_photograph` changes the pixels it produces.
REDUCTION_VERSION = 1
#: Smallest crop side: a crop that would enlarge its photograph more than twice is halved down to this.
MIN_CROP_SIZE = 128


@dataclass(frozen=True)
class PhotoSource:
    """One source photograph: where its pixels are and which cover group it belongs to.

    ``path`` is an image file, a ``.npz`` array file (PyWavelets), a Qt
    resource bundle holding ``member``, or (after :func:`prepare_sources`)
    the reduced pixels as a ``.npy`` file. ``sha256`` is the listed file's.
    """

    name: str
    cover_id: str
    cover_source: str
    path: Path
    member: str | None = None
    sha256: str = ""


def photo_source(cover: ListedCover, location: CoverLocation) -> PhotoSource:
    return PhotoSource(name=cover.scene_id, cover_id=cover.cover_id, cover_source=cover.package,
                       path=location.path, member=location.member, sha256=cover.sha256)


@dataclass(frozen=True)
class ListedSources:
    """The listed photographs present here (verified), and the scan that found them."""

    sources: tuple[PhotoSource, ...]
    scan: CoverScan

    def missing_by_package(self) -> dict[str, dict]:
        return self.scan.missing_by_package()


@functools.cache
def listed_sources(*, builtin_only: bool = False, cover_list: Path | None = None,
                   roots: tuple[Path, ...] | None = None) -> ListedSources:
    """Every listed ``photo`` file present on this machine with its listed SHA-256, in list order.

    Debian files are looked for under ``STEGWATCH_COVERS_ROOT`` and ``/``
    (``roots`` overrides both); a missing file, or one with other bytes, is
    left out and reported in ``.scan.missing`` (``missing_by_package()``
    gives the install command per package). ``builtin_only`` keeps the
    photographs inside Python wheels only. Cached per process.
    """
    covers = read_cover_list(cover_list) if cover_list is not None else None
    scan = scan_covers(covers, builtin_only=builtin_only, roots=roots)
    return ListedSources(tuple(photo_source(f.cover, f.location) for f in scan.found), scan)


def builtin_sources() -> tuple[PhotoSource, ...]:
    """The built-in photographs (inside the wheels stegwatch depends on) present here, in list order."""
    return listed_sources(builtin_only=True).sources


def independent_photograph_ids(entries: Iterable) -> set[str]:
    """The ``cover_id`` of every listed photograph that a clean ``photo`` file of ``entries`` descends from.

    Counted: crops of the curated list's photographs (``cover_id`` ``photo:...``),
    built-in or Debian; not counted: synthetic images and user covers, whose
    origin stegwatch cannot vouch for.
    """
    return {e.cover_id for e in entries
            if e.label == "clean" and e.category == "photo" and str(e.cover_id).startswith(PHOTO_COVER_PREFIX)}


def _read_source_bytes(source: PhotoSource) -> bytes:
    return CoverLocation(source.path, source.member).read_bytes()


def decode_photograph(data: bytes, name: str, *, long_side: int | None = None) -> Image.Image:
    """A photograph's pixels as an RGB or L image.

    ``.npz`` data (PyWavelets' photographs) holds one uint8 array. With
    ``long_side``, a JPEG is decoded at the smallest DCT scale that keeps at
    least that many pixels on its long side (``Image.draft``), which is much faster.
    """
    if name.endswith(".npz"):
        with np.load(io.BytesIO(data)) as arrays:
            array = np.asarray(arrays[arrays.files[0]])
        return Image.fromarray(array.astype(np.uint8))
    image = Image.open(io.BytesIO(data))
    if long_side is not None and image.format == "JPEG" and max(image.size) > long_side:
        scale = long_side / max(image.size)
        image.draft(image.mode, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
    image.load()
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def reduce_photograph(data: bytes, name: str, long_side: int = REDUCED_LONG_SIDE) -> np.ndarray:
    """The photograph at most ``long_side`` pixels on its long side (Lanczos), as a uint8 array."""
    image = decode_photograph(data, name, long_side=long_side)
    if max(image.size) > long_side:
        scale = long_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(image)


def _prepare_one(cache_dir: Path, long_side: int, source: PhotoSource) -> tuple[PhotoSource, PhotoSource]:
    target = cache_dir / f"{source.sha256 or hashlib.sha256(str(source.path).encode()).hexdigest()}-{long_side}-v{REDUCTION_VERSION}.npy"
    try:
        np.load(target, mmap_mode="r")
    except (OSError, ValueError):
        pixels = reduce_photograph(_read_source_bytes(source), source.member or source.path.name, long_side)
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        with partial.open("wb") as handle:
            np.save(handle, pixels)
        os.replace(partial, target)
    return source, dataclasses.replace(source, path=target, member=None)


def prepare_sources(sources: tuple[PhotoSource, ...], cache_dir: str | Path, *,
                    long_side: int = REDUCED_LONG_SIDE, workers: int = 1) -> tuple[PhotoSource, ...]:
    """Reduce each photograph once into ``cache_dir`` (kept; reused when present), in the same order.

    Returns the same sources with ``path`` pointing at the reduced pixels
    (``<sha256>-<long_side>-v<version>.npy``).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    prepared: dict[PhotoSource, PhotoSource] = {}
    for chunk in map_unordered(functools.partial(_prepare_one, cache_dir, long_side), sources, workers=workers, chunk_size=4):
        prepared.update(chunk)
    return tuple(prepared[s] for s in sources)


@functools.lru_cache(maxsize=64)
def load_source(path: Path) -> Image.Image:
    """A source photograph file, decoded once per process, as RGB or L."""
    return decode_photograph(Path(path).read_bytes(), Path(path).name)


# Larger than the number of listed photographs: crops visit them round-robin, which an LRU
# cache smaller than the cycle would miss every time. Each memory map holds one file descriptor.
@functools.lru_cache(maxsize=512)
def source_pixels(source: PhotoSource) -> np.ndarray:
    """A source's pixels as a uint8 array (H, W) or (H, W, 3); reduced ``.npy`` files are memory-mapped."""
    if source.member is None and source.path.suffix == ".npy":
        return np.load(source.path, mmap_mode="r")
    return np.asarray(decode_photograph(_read_source_bytes(source), source.member or source.path.name))


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


def fitted_crop_size(size: int, short_side: int) -> int:
    """``size`` halved while it is over twice the photograph's short side (not below :data:`MIN_CROP_SIZE`).

    :func:`sample_crop` enlarges at most twice (its side is at least half the
    size) when the photograph allows it; this keeps that bound for small
    photographs too (a 512-pixel crop of a 200-pixel photograph becomes a
    256-pixel one) and leaves the mix of sizes as drawn for the rest.
    """
    while size > 2 * short_side and size // 2 >= MIN_CROP_SIZE:
        size //= 2
    return size


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


def render_crop_from_pixels(pixels: np.ndarray, spec: CropSpec) -> Image.Image:
    """:func:`render_crop` reading only the pixels the filter touches (same result as on the whole image).

    The margin covers the widest filter's support (Lanczos: 3 source pixels
    per output pixel when reducing), so no filter tap is lost at the cut.
    """
    height, width = pixels.shape[:2]
    margin = math.ceil(3 * max(1.0, spec.side / spec.size)) + 2
    x0, y0 = max(0, spec.left - margin), max(0, spec.top - margin)
    x1, y1 = min(width, spec.left + spec.side + margin), min(height, spec.top + spec.side + margin)
    region = Image.fromarray(np.ascontiguousarray(pixels[y0:y1, x0:x1]))
    return render_crop(region, dataclasses.replace(spec, left=spec.left - x0, top=spec.top - y0))


def photo_crop(source: PhotoSource, rng: np.random.Generator, size: int) -> tuple[Image.Image, CropSpec]:
    """A fresh crop of ``source`` drawn from ``rng`` (``size`` fitted to the photograph by :func:`fitted_crop_size`)."""
    pixels = source_pixels(source)
    height, width = pixels.shape[:2]
    spec = sample_crop(rng, width, height, fitted_crop_size(size, min(width, height)))
    return render_crop_from_pixels(pixels, spec), spec


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
