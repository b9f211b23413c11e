"""Reading image files safely, and writing files atomically.

Every path that reads a file the user gave us goes through :func:`load_carrier`:
it refuses empty, oversized, non-image, truncated and decompression-bomb files
with :class:`UnreadableFile` (a reason a person can act on), never with a
library traceback. Pixel counts are checked from the header, before decoding.
A JPEG, PNG or GIF whose structure breaks off or is corrupt anywhere (a later
GIF frame, a PNG chunk after the pixels) is refused too, though its first
frame decodes.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from stegwatch.format.structure import structure_problem


#: File-name suffixes of the image formats stegwatch reads (folder scans and ``--covers`` use them).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"})
#: The extension stegwatch gives a file it writes in each Pillow format.
FORMAT_EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp"}


class UnreadableFile(Exception):
    """A file that cannot be used as an image; ``reason`` says why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class ReadLimits:
    """Upper bounds on what we agree to read.

    ``max_bytes`` is the file size in bytes; ``max_pixels`` is width x height,
    checked from the header before any pixel is decoded. Computing a file's
    features takes at most about 36 bytes per pixel at its peak (a
    four-channel JPEG; an RGBA PNG about 26) plus the file's size, so the
    defaults (4096 x 4096 pixels, 200 MiB) keep one file under 1 GB
    (docs/reliability.md).
    """

    max_bytes: int = 200 * 1024 * 1024
    max_pixels: int = 4096 * 4096


DEFAULT_LIMITS = ReadLimits()


@dataclass
class CarrierFile:
    """One decoded file: its raw bytes and its (loaded) first image.

    Extractors for every stream read from the same object, so a file is read
    and decoded once.
    """

    path: str
    data: bytes
    image: Image.Image

    @property
    def format(self) -> str:
        return self.image.format or "UNKNOWN"


# What Pillow raises on malformed input, depending on the plugin.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, ZeroDivisionError)


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _sniff(data: bytes) -> str | None:
    return next((kind for magic, kind in _SIGNATURES if data.startswith(magic)), None)


def _bomb(exc: Exception, limits: ReadLimits) -> str:
    """The reason for a file Pillow itself refused as a bomb: stegwatch's limit (far below Pillow's), then Pillow's words."""
    return f"refused as a decompression bomb: over the limit of {limits.max_pixels} pixels (Pillow: {exc})"


def decode_image(data: bytes, path: str, limits: ReadLimits = DEFAULT_LIMITS) -> Image.Image:
    """Decode ``data`` into a loaded Pillow image, or raise :class:`UnreadableFile`."""
    if not data:
        raise UnreadableFile(path, "empty file (0 bytes)")
    if len(data) > limits.max_bytes:
        raise UnreadableFile(path, f"file is {len(data)} bytes, over the limit of {limits.max_bytes}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # Pillow warns about malformed EXIF while decoding; the exif extractor reports it itself.
        warnings.filterwarnings("ignore", message="Corrupt EXIF data", category=UserWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            kind = _sniff(data)
            if kind:
                raise UnreadableFile(path, f"corrupt image header (starts like {kind}, but cannot be parsed)") from None
            raise UnreadableFile(path, "not an image (no known image format)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UnreadableFile(path, _bomb(exc, limits)) from None
        except _DECODE_ERRORS as exc:
            raise UnreadableFile(path, f"corrupt image header: {exc}") from None
        width, height = image.size
        if width < 1 or height < 1:
            raise UnreadableFile(path, f"image has no pixels ({width}x{height})")
        if width * height > limits.max_pixels:
            raise UnreadableFile(
                path,
                f"refused as a decompression bomb: {width}x{height} = {width * height} pixels, "
                f"over the limit of {limits.max_pixels}",
            )
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UnreadableFile(path, _bomb(exc, limits)) from None
        except _DECODE_ERRORS as exc:
            reason = str(exc) or type(exc).__name__
            if "truncated" in reason.lower() or isinstance(exc, EOFError):
                raise UnreadableFile(path, f"truncated image: {reason}") from None
            raise UnreadableFile(path, f"corrupt image data: {reason}") from None
    # Pillow decodes the first frame only and stops at the pixels; the rest of the file must be whole too.
    problem = structure_problem(data)
    if problem:
        raise UnreadableFile(path, problem)
    return image


def read_file_bytes(path: str | os.PathLike[str], limits: ReadLimits = DEFAULT_LIMITS) -> bytes:
    """Read a whole file, refusing missing, non-regular and oversized ones."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise UnreadableFile(path, "no such file") from None
    except OSError as exc:
        raise UnreadableFile(path, f"cannot stat: {exc.strerror or exc}") from None
    if not p.is_file():
        raise UnreadableFile(path, "not a regular file")
    if st.st_size > limits.max_bytes:
        raise UnreadableFile(path, f"file is {st.st_size} bytes, over the limit of {limits.max_bytes}")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise UnreadableFile(path, f"cannot read: {exc.strerror or exc}") from None


def load_carrier(path: str | os.PathLike[str], limits: ReadLimits = DEFAULT_LIMITS) -> CarrierFile:
    """Read and decode one file, or raise :class:`UnreadableFile` naming the reason."""
    data = read_file_bytes(path, limits)
    image = decode_image(data, str(path), limits)
    return CarrierFile(path=str(path), data=data, image=image)


def carrier_from_bytes(data: bytes, path: str = "<bytes>", limits: ReadLimits = DEFAULT_LIMITS) -> CarrierFile:
    """A :class:`CarrierFile` for bytes already in memory (tests, freshly embedded files)."""
    return CarrierFile(path=path, data=data, image=decode_image(data, path, limits))


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    ``durable`` also flushes the data to disk before the rename (for histories,
    manifests, baselines); bulk corpus files skip it, since their build journal
    re-verifies every file by hash on resume.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, *, durable: bool = True) -> None:
    """:func:`write_bytes_atomic` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_json_atomic(path: str | os.PathLike[str], data, *, indent: int = 1) -> None:
    """``data`` as sorted, indented JSON with a final newline, written atomically."""
    write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=True) + "\n")
