"""Walking an image file's container structure: where the image ends, and whether it is whole.

Pillow decodes only the first frame of a GIF (or APNG) and stops reading a
PNG at its image data, so a file cut in the middle of a later frame, or with a
broken chunk after the pixels, decodes without complaint. These walkers follow
the container itself (JPEG segments and entropy-coded data, PNG chunks with
their CRCs, GIF blocks and sub-blocks) to its trailer, without decoding
pixels. :func:`structure_problem` says what is wrong with a file whose
structure breaks off or is corrupt; :func:`end_of_image` is where the image
ends (bytes after it are a trailer, for the ``eoi`` method).
"""

from __future__ import annotations

import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"


def end_of_jpeg(data: bytes, start: int = 0) -> int | None:
    """Offset just past the EOI marker of the JPEG starting at ``start``; None if malformed."""
    n = len(data)
    if data[start : start + 2] != b"\xff\xd8":
        return None
    i = start + 2
    while i < n:
        if data[i] != 0xFF:
            return None
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker == 0xD9:
            return i
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        if i + 2 > n:
            return None
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2:
            return None
        i += length
        if marker != 0xDA:
            continue
        # Entropy-coded data: runs until an FF that is not stuffing (FF00) or a restart marker.
        while True:
            j = data.find(b"\xff", i)
            if j < 0 or j + 1 >= n:
                return None
            following = data[j + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                i = j + 2
            elif following == 0xFF:
                i = j + 1
            else:
                i = j
                break
    return None


def end_of_png(data: bytes) -> int | None:
    """Offset just past the CRC of the ``IEND`` chunk; None if malformed."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    i = len(PNG_SIGNATURE)
    n = len(data)
    while i + 12 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        chunk_type = data[i + 4 : i + 8]
        i += 12 + length
        if chunk_type == b"IEND":
            return i if i <= n else None
    return None


def _skip_sub_blocks(data: bytes, i: int) -> int | None:
    n = len(data)
    while i < n:
        size = data[i]
        i += 1
        if size == 0:
            return i
        i += size
    return None


def end_of_gif(data: bytes) -> int | None:
    """Offset just past the ``0x3B`` trailer; None if malformed."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    packed = data[10]
    i = 13 + (3 * (2 ** ((packed & 7) + 1)) if packed & 0x80 else 0)
    n = len(data)
    while i < n:
        block = data[i]
        if block == 0x3B:
            return i + 1
        if block == 0x21:  # extension: label, then sub-blocks
            nxt = _skip_sub_blocks(data, i + 2)
        elif block == 0x2C:  # image descriptor, optional local table, LZW size, sub-blocks
            if i + 10 > n:
                return None
            local = data[i + 9]
            i += 10 + (3 * (2 ** ((local & 7) + 1)) if local & 0x80 else 0)
            nxt = _skip_sub_blocks(data, i + 1)
        else:
            return None
        if nxt is None:
            return None
        i = nxt
    return None


def end_of_image(data: bytes) -> tuple[str, int | None]:
    """The container kind (``JPEG``, ``PNG``, ``GIF`` or ``other``) and where its image ends."""
    if data.startswith(JPEG_SOI):
        return "JPEG", end_of_jpeg(data)
    if data.startswith(PNG_SIGNATURE):
        return "PNG", end_of_png(data)
    if data[:4] == b"GIF8":
        return "GIF", end_of_gif(data)
    return "other", None


def png_problem(data: bytes) -> str | None:
    """Why a PNG's chunk structure is broken (a chunk cut short, a CRC mismatch, no ``IEND``); None when whole."""
    i, n = len(PNG_SIGNATURE), len(data)
    while i + 12 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        chunk_type = data[i + 4 : i + 8]
        if length > n - i - 12:
            return f"truncated: the file ends inside the {chunk_type!r} chunk at byte {i}, before IEND"
        if zlib.crc32(data[i + 4 : i + 8 + length]) != int.from_bytes(data[i + 8 + length : i + 12 + length], "big"):
            return f"corrupt: the {chunk_type!r} chunk at byte {i} fails its CRC"
        i += 12 + length
        if chunk_type == b"IEND":
            return None
    return "truncated: the file ends before the IEND chunk"


def structure_problem(data: bytes) -> str | None:
    """What is truncated or corrupt in a JPEG, PNG or GIF file's structure; None when it is whole (or not one of them).

    Bytes after the end of the image (a trailer) are not a problem here.
    """
    if data.startswith(JPEG_SOI):
        return None if end_of_jpeg(data) is not None else "truncated or corrupt JPEG: its segments break off before the end-of-image marker (FFD9)"
    if data.startswith(PNG_SIGNATURE):
        return png_problem(data)
    if data[:4] == b"GIF8":
        return None if end_of_gif(data) is not None else "truncated or corrupt GIF: a frame or block breaks off before the trailer (0x3B)"
    return None


__all__ = ["JPEG_SOI", "PNG_SIGNATURE", "end_of_gif", "end_of_image", "end_of_jpeg", "end_of_png", "png_problem", "structure_problem"]
