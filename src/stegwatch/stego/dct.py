"""Quantized DCT coefficients of JPEG files, through jpeglib.

jpeglib reads and writes files by path only, so bytes go through a scratch
file (:func:`scratch_path`): an anonymous in-memory file on Linux, a private
temporary folder elsewhere. Coefficient arrays have jpeglib's layout: one array per
channel, shape (block rows, block columns, 8, 8); index [..., 0, 0] is DC.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import jpeglib
import numpy as np

from stegwatch.format.files import CarrierFile
from stegwatch.format.structure import end_of_jpeg, with_jpeg_header_of
from stegwatch.stego.base import Cover, EmbedError, cover_image, encode_image


@dataclass
class DctImage:
    """The quantized coefficients of a JPEG: Y (and Cb, Cr for colour) and its quantization tables."""

    jpeg: jpeglib.DCTJPEG
    #: The JPEG the coefficients were read from: :func:`write_dct` gives the file it writes this one's header.
    source: bytes = b""

    @property
    def Y(self) -> np.ndarray:  # noqa: N802 - the channel's name
        return self.jpeg.Y

    @property
    def is_colour(self) -> bool:
        return self.jpeg.Cb is not None

    @property
    def luma_qt(self) -> np.ndarray:
        return self.jpeg.qt[0]


def _memory_file() -> int | None:
    """A new anonymous in-memory file (Linux ``memfd``) that others can open by its ``/proc/self/fd`` path, or None
    where there is none (another system, no ``/proc``, a sandbox that refuses it)."""
    if not hasattr(os, "memfd_create"):  # Linux only
        return None
    try:
        fd = os.memfd_create("stegwatch-dct", os.MFD_CLOEXEC)
    except OSError:
        return None
    if not os.path.exists(f"/proc/self/fd/{fd}"):
        os.close(fd)
        return None
    return fd


@contextmanager
def scratch_path(data: bytes | memoryview = b"") -> Iterator[str]:
    """The path of a file holding ``data`` that libjpeg can open by name (and write), gone on exit.

    On Linux an anonymous in-memory file (``memfd_create``) named by its
    ``/proc/self/fd`` path (each open of that path opens the file anew, at
    its start, so what a writer left is read back by the same path): no
    folder is made and removed and nothing reaches the disk
    (``benchmarks/jpeg_read.py``: a corpus JPEG's coefficients in about 0.8
    of the time on an idle machine, 0.6 on a busy one). Elsewhere a file in
    a private temporary folder.
    """
    fd = _memory_file()
    if fd is not None:
        try:
            view = memoryview(data)
            while view:  # os.write may take less than all
                view = view[os.write(fd, view):]
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="stegwatch-dct-") as folder:
        path = os.path.join(folder, "image.jpg")
        with open(path, "wb") as handle:
            handle.write(data)
        yield path


def read_dct(data: bytes) -> DctImage:
    """Coefficients of a JPEG given as bytes; ValueError when it is not a readable JPEG."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG file")
    end = end_of_jpeg(data) or len(data)  # a trailer holds no coefficients: libjpeg never needs to read it
    with scratch_path(memoryview(data)[:end]) as path:
        try:
            jpeg = jpeglib.read_dct(path)
            jpeg.load()
        except Exception as exc:  # libjpeg reports corrupt data with assorted exceptions
            raise ValueError(f"cannot read JPEG coefficients: {exc}") from None
    return DctImage(jpeg, data)


def write_dct(image: DctImage) -> bytes:
    """Encode the (possibly modified) coefficients back into JPEG bytes, with the header of the JPEG they were read from.

    libjpeg would add its own JFIF segment and number the components from 0, a mark of the tool rather
    than of a payload (:func:`~stegwatch.format.structure.with_jpeg_header_of`).
    """
    with scratch_path() as path:
        image.jpeg.write_dct(path)
        with open(path, "rb") as handle:
            written = handle.read()
    return with_jpeg_header_of(image.source, written) if image.source else written


def read_luma_spatial(data: bytes) -> np.ndarray:
    """The decompressed luminance plane (float64), as J-UNIWARD's cost needs it."""
    with scratch_path(data) as path:
        try:
            spatial = jpeglib.read_spatial(path, out_color_space=jpeglib.JCS_GRAYSCALE).spatial
        except OSError as exc:  # libjpeg cannot convert every colour space to grayscale (CMYK, YCCK)
            raise EmbedError(f"cannot read this JPEG's luminance ({exc}); a YCbCr or grayscale JPEG can carry it") from None
    return spatial[..., 0].astype(np.float64)


def jpeg_bytes_of(cover: Cover, quality: int) -> bytes:
    """The cover as JPEG bytes: its own file when it is a JPEG, else a fresh encoding."""
    if isinstance(cover, CarrierFile) and cover.data.startswith(b"\xff\xd8"):
        return cover.data
    return encode_image(cover_image(cover), "JPEG", jpeg_quality=quality)


def ac_mask(shape: tuple[int, ...]) -> np.ndarray:
    """True for AC positions (every coefficient but [..., 0, 0])."""
    mask = np.ones(shape, dtype=bool)
    mask[..., 0, 0] = False
    return mask


def nonzero_ac(coefficients: np.ndarray) -> int:
    """Number of non-zero AC coefficients (the denominator of bits per nzAC)."""
    return int(np.count_nonzero(coefficients[ac_mask(coefficients.shape)]))


def dct_rate_bytes(rate_bpnzac: float, nzac: int) -> int:
    """Payload bytes for ``rate_bpnzac`` bits per non-zero AC coefficient."""
    return max(1, int(round(rate_bpnzac * nzac / 8)))


def luma_nzac(cover: Cover, quality: int = 90) -> int:
    """Non-zero AC coefficients of the cover's luminance, or 0 when it is not a readable JPEG."""
    try:
        return nonzero_ac(read_dct(jpeg_bytes_of(cover, quality)).Y)
    except ValueError:
        return 0


def count_changes(cover_data: bytes, stego_data: bytes) -> tuple[int, int]:
    """(changed coefficients over all channels, non-zero AC coefficients of the cover's luminance)."""
    cover, stego = read_dct(cover_data), read_dct(stego_data)
    changed = 0
    for name in ("Y", "Cb", "Cr"):
        a, b = getattr(cover.jpeg, name), getattr(stego.jpeg, name)
        if a is None and b is None:
            continue
        if a is None or b is None or a.shape != b.shape:
            raise ValueError(f"channel {name} differs in shape between cover and stego")
        changed += int(np.count_nonzero(a != b))
    return changed, nonzero_ac(cover.Y)


def require_capacity(method: str, needed_bits: int, available: int) -> None:
    if needed_bits > available:
        raise EmbedError(f"{method}: {needed_bits} bits do not fit in {available} usable coefficients")


# The IJG (libjpeg) standard luminance table at quality 50 (raster order), which libjpeg scales by quality.
IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.int64)


def ijg_table(quality: int) -> np.ndarray:
    """libjpeg's luminance table for ``quality`` (1-100), baseline-clipped to 1..255."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((IJG_LUMA * scale + 50) // 100, 1, 255)


def ijg_quality(luma_table) -> int | None:
    """The IJG quality (1-100) of a luminance quantization table (64 values, any coefficient order).

    The quality whose libjpeg table it is exactly; else the closest one (tables of other encoders);
    None when there is no table.
    """
    if luma_table is None or len(luma_table) != 64:
        return None
    table = np.sort(np.asarray(luma_table, dtype=np.int64))
    errors = np.abs(_sorted_ijg_tables() - table).sum(axis=1)
    return int(np.argmin(errors)) + 1


@functools.cache
def _sorted_ijg_tables() -> np.ndarray:
    """(100, 64): :func:`ijg_table` of qualities 1..100, each sorted (computed once)."""
    tables = np.sort(np.stack([ijg_table(q) for q in range(1, 101)]), axis=1)
    tables.setflags(write=False)
    return tables
