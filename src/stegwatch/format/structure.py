"""Walking an image file's container structure: where the image ends, and whether it is whole.

Pillow decodes only the first frame of a GIF (or APNG) and stops reading a
PNG at its image data, so a file cut in the middle of a later frame, or with a
broken chunk after the pixels, decodes without complaint. These walkers follow
the container itself (JPEG segments and entropy-coded data, PNG chunks with
their CRCs, GIF blocks and sub-blocks) to its trailer, without decoding
pixels. :func:`structure_problem` says what is wrong with a file whose
structure breaks off or is corrupt; :func:`end_of_image` is where the image
ends (bytes after it are a trailer, for the ``eoi`` method), and
:func:`trailer_parts` names the known structures a trailer is made of (a
second JPEG, a motion photo's MP4, Samsung's SEF, a PNG, an XMP packet,
padding) and the bytes none of them explains.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"


#: Start-of-frame markers (every SOFn but DHT ``C4``, JPG ``C8`` and DAC ``CC``): the segment naming the components.
JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def jpeg_segments(data: bytes, start: int = 0):
    """The marker segments of the JPEG starting at ``start``, as ``(marker, begin, end)``, through its EOI.

    ``begin`` is the segment's ``FF`` (after any fill bytes), ``end`` the offset just past it: past the
    length-counted body, and for a scan (``DA``) past its header only, the entropy-coded data being
    walked over between one segment and the next. SOI is not yielded. The walk stops at EOI, or
    silently where the structure breaks off (so a caller that needs the whole file checks that the
    last marker is EOI, ``D9``).
    """
    n = len(data)
    if data[start : start + 2] != b"\xff\xd8":
        return
    i = start + 2
    while i < n:
        if data[i] != 0xFF:
            return
        while i + 1 < n and data[i + 1] == 0xFF:  # fill bytes: the segment starts at the last FF
            i += 1
        if i + 1 >= n:
            return
        begin, marker = i, data[i + 1]
        i += 2
        if marker == 0xD9 or marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            yield marker, begin, i
            if marker == 0xD9:
                return
            continue
        if i + 2 > n:
            return
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2 or i + length > n:
            return
        i += length
        yield marker, begin, i
        if marker != 0xDA:
            continue
        # Entropy-coded data: runs until an FF that is not stuffing (FF00) or a restart marker.
        while True:
            j = data.find(b"\xff", i)
            if j < 0 or j + 1 >= n:
                return
            following = data[j + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                i = j + 2
            elif following == 0xFF:
                i = j + 1
            else:
                i = j
                break


def end_of_jpeg(data: bytes, start: int = 0) -> int | None:
    """Offset just past the EOI marker of the JPEG starting at ``start``; None if malformed."""
    for marker, _, end in jpeg_segments(data, start):
        if marker == 0xD9:
            return end
    return None


def jpeg_component_ids(data: bytes) -> tuple[int, ...]:
    """The component ids a JPEG's frame header (SOFn) declares, in order; () when it has none."""
    for marker, begin, end in jpeg_segments(data):
        if marker in JPEG_SOF_MARKERS and begin + 10 <= end:
            count = data[begin + 9]
            return tuple(data[begin + 10 : min(end, begin + 10 + 3 * count) : 3])
        if marker == 0xDA:
            break
    return ()


def with_jpeg_header_of(cover: bytes, written: bytes) -> bytes:
    """``written`` (a JPEG an encoder wrote from ``cover``'s coefficients) with ``cover``'s JFIF header and component ids.

    An encoder that rewrites coefficients leaves its own mark in the header: jpeglib (libjpeg)
    writes its own JFIF ``APP0`` before the cover's and numbers the components from 0, where
    Pillow, cameras and libjpeg's ``cjpeg`` number them from 1. Those bytes say which tool wrote
    the file, not whether it holds a payload, so a corpus that keeps them teaches a detector the
    tool (issue 16). Here the leading run of ``APP0`` segments becomes the cover's (none, one or
    more, byte for byte), and the ids in the frame header and in every scan header become the
    cover's, position for position. Nothing else changes: the coefficients, tables and entropy-coded
    data are the same bytes, so the file decodes exactly as ``written`` does. ``written`` comes back
    unchanged when either file is not a whole JPEG or the two declare different numbers of components.
    """
    cover_segments = list(jpeg_segments(cover))
    segments = list(jpeg_segments(written))
    if not cover_segments or cover_segments[-1][0] != 0xD9 or not segments or segments[-1][0] != 0xD9:
        return written
    cover_ids, ids = jpeg_component_ids(cover), jpeg_component_ids(written)
    if len(ids) != len(cover_ids) or len(set(cover_ids)) != len(cover_ids):
        return written
    renumber = dict(zip(ids, cover_ids, strict=True))

    def end_of_leading_app0(found: list[tuple[int, int, int]]) -> int:
        end = 2  # just past SOI
        for marker, _, segment_end in found:
            if marker != 0xE0:
                break
            end = segment_end
        return end

    body = end_of_leading_app0(segments)
    out = bytearray(written[body:])
    for marker, begin, end in segments:
        # Where the ids sit: three bytes apart after a frame header's count, two after a scan header's.
        if marker in JPEG_SOF_MARKERS:
            first, step, count = begin + 10, 3, written[begin + 9]
        elif marker == 0xDA:
            first, step, count = begin + 5, 2, written[begin + 4]
        else:
            continue
        for at in range(first, min(end, first + step * count), step):
            out[at - body] = renumber.get(written[at], written[at])
    return b"\xff\xd8" + cover[2:end_of_leading_app0(cover_segments)] + bytes(out)


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


def skip_sub_blocks(data: bytes, i: int) -> int | None:
    n = len(data)
    while i < n:
        size = data[i]
        i += 1
        if size == 0:
            return i
        i += size
    return None


@dataclass(frozen=True)
class GifWalk:
    """A GIF's block structure: where its blocks begin (after the global colour table), its extensions in file order
    as ``(label, start, end)`` byte ranges, and the offset just past its ``0x3B`` trailer (None when the walk breaks
    off: then ``extensions`` holds those passed before)."""

    start: int
    extensions: tuple[tuple[int, int, int], ...]
    end: int | None


def walk_gif(data: bytes) -> GifWalk | None:
    """Walk a GIF's blocks once (None when it is not a GIF87a/GIF89a file): :func:`end_of_gif` and the framing's
    comment extensions both read this walk."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    packed = data[10]
    start = 13 + (3 * (2 ** ((packed & 7) + 1)) if packed & 0x80 else 0)
    extensions: list[tuple[int, int, int]] = []
    i, n = start, len(data)
    end: int | None = None
    while i < n:
        block = data[i]
        if block == 0x3B:
            end = i + 1
            break
        if block == 0x21:  # extension: label, then sub-blocks
            nxt = skip_sub_blocks(data, i + 2)
            if nxt is not None:
                extensions.append((data[i + 1], i, nxt))  # nxt found: the label byte exists
        elif block == 0x2C:  # image descriptor, optional local table, LZW size, sub-blocks
            if i + 10 > n:
                break
            local = data[i + 9]
            i += 10 + (3 * (2 ** ((local & 7) + 1)) if local & 0x80 else 0)
            nxt = skip_sub_blocks(data, i + 1)
        else:
            break
        if nxt is None:
            break
        i = nxt
    return GifWalk(start, tuple(extensions), end)


def end_of_gif(data: bytes) -> int | None:
    """Offset just past the ``0x3B`` trailer; None if malformed."""
    walk = walk_gif(data)
    return None if walk is None else walk.end


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


# --- What a trailer is made of ------------------------------------------------------------------


@dataclass(frozen=True)
class TrailerPart:
    """A span ``[start, end)`` of a file's bytes after the end of its image, and what it is.

    ``kind``: ``jpeg`` (a complete JPEG image: multi-picture and MPF files),
    ``isobmff`` (MP4/MOV boxes from ``ftyp`` on: Google and other motion
    photos), ``samsung-sef`` (Samsung's trailer, found from its ``SEFT`` end),
    ``png`` (a PNG file, possibly cut short), ``png-chunks`` (whole PNG chunks
    with valid CRCs, e.g. a repeated ``IEND``), ``xmp`` (an XMP packet),
    ``padding`` (a run of ``00`` or ``FF`` bytes) or ``unexplained``.
    """

    kind: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


_BOX_TYPE_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \xa9")


def _isobmff_end(data: bytes, i: int, limit: int) -> int | None:
    """End of the run of ISO base media boxes starting with ``ftyp`` at ``i`` (whole boxes only)."""
    if data[i + 4: i + 8] != b"ftyp":
        return None
    j = i
    while j + 8 <= limit:
        size = int.from_bytes(data[j: j + 4], "big")
        if any(b not in _BOX_TYPE_BYTES for b in data[j + 4: j + 8]):
            break
        if size == 1 and j + 16 <= limit:
            size = int.from_bytes(data[j + 8: j + 16], "big")
        elif size == 0:
            size = limit - j
        if size < 8 or j + size > limit:
            break
        j += size
    return j if j > i else None


def _png_chunks_end(data: bytes, i: int, limit: int, *, allow_cut: bool) -> int:
    """End of the whole PNG chunks (valid CRCs) from ``i``; with ``allow_cut``, a last chunk cut by ``limit`` counts."""
    j = i
    while j + 12 <= limit:
        length = int.from_bytes(data[j: j + 4], "big")
        kind = data[j + 4: j + 8]
        if not kind.isalpha():
            break
        if j + 12 + length > limit:
            return limit if allow_cut else j
        if zlib.crc32(data[j + 4: j + 8 + length]) != int.from_bytes(data[j + 8 + length: j + 12 + length], "big"):
            break
        j += 12 + length
    if allow_cut and j < limit and limit - j < 12 and data[j + 4: min(j + 8, limit)].isalpha():
        return limit  # cut inside a chunk's header
    return j


def _samsung_sef_start(data: bytes, start: int, end: int | None = None) -> int | None:
    """Start of a Samsung SEF trailer that ends at ``end`` (default: the file's end): ``SEFH`` directory, then its
    length and ``SEFT``."""
    n = len(data) if end is None else end
    if data[n - 4: n] != b"SEFT" or n - start < 20:
        return None
    directory_length = int.from_bytes(data[n - 8: n - 4], "little")
    directory = n - 8 - directory_length
    if directory < start or data[directory: directory + 4] != b"SEFH":
        return None
    count = int.from_bytes(data[directory + 8: directory + 12], "little")
    if count == 0 or 12 + 12 * count > directory_length:
        return None
    first = directory
    for k in range(count):
        entry = directory + 12 + 12 * k
        offset = int.from_bytes(data[entry + 4: entry + 8], "little")
        length = int.from_bytes(data[entry + 8: entry + 12], "little")
        if offset < length or directory - offset < start:
            return None
        first = min(first, directory - offset)
    return first


#: How many ``SEFT`` footers before the file's end :func:`_samsung_sef_span` tries (bytes appended after a SEF
#: trailer may themselves hold the four letters).
SEF_FOOTERS_TRIED = 8


def _samsung_sef_span(data: bytes, start: int) -> tuple[int, int] | None:
    """Where a Samsung SEF trailer begins and ends: at the file's end, where a phone writes it, or followed by
    bytes appended later (its last valid ``SEFT`` footer after ``start``)."""
    footer = len(data)
    for _ in range(SEF_FOOTERS_TRIED):
        footer = data.rfind(b"SEFT", start, footer)
        if footer < 0:
            return None
        first = _samsung_sef_start(data, start, footer + 4)
        if first is not None:
            return first, footer + 4
    return None


def _xmp_end(data: bytes, i: int, limit: int) -> int | None:
    if not (data.startswith(b"<?xpacket begin=", i) or data.startswith(b"<x:xmpmeta", i)):
        return None
    close = data.find(b"<?xpacket end=", i, limit)
    if close >= 0:
        end = data.find(b"?>", close, limit)
        return end + 2 if end >= 0 else None
    close = data.find(b"</x:xmpmeta>", i, limit)
    return close + len(b"</x:xmpmeta>") if close >= 0 else None


def _padding_end(data: bytes, i: int, limit: int) -> int | None:
    value = data[i]
    if value not in (0x00, 0xFF):
        return None
    span = memoryview(data)[i:limit].tobytes()
    return limit - len(span.lstrip(bytes([value])))


def trailer_parts(data: bytes, start: int | None = None) -> list[TrailerPart]:
    """The known structures, padding and unexplained bytes after the end of the image, in file order.

    ``start`` defaults to :func:`end_of_image`'s end (no parts when it cannot
    be found). Structures are recognized where they begin; a Samsung SEF
    trailer is recognized from its ``SEFT`` footer, at the end of the file
    where a phone writes it or followed by appended bytes. Bytes from the
    first place that no structure explains up to the next structure found
    from the end are one ``unexplained`` part, and so are bytes after a SEF
    trailer: an appended payload is unexplained whatever precedes or
    follows it.
    """
    if start is None:
        _, start = end_of_image(data)
        if start is None:
            return []
    n = len(data)
    parts: list[TrailerPart] = []
    sef = _samsung_sef_span(data, start)
    limit = n if sef is None else sef[0]
    i = start
    while i < limit:
        end: int | None = None
        kind = ""
        if data.startswith(JPEG_SOI, i):
            kind, end = "jpeg", end_of_jpeg(data, i)
            end = end if end is not None and end <= limit else None
        elif data.startswith(PNG_SIGNATURE, i):
            kind, end = "png", _png_chunks_end(data, i + len(PNG_SIGNATURE), limit, allow_cut=True)
        elif data[i + 4: i + 8] == b"ftyp":
            kind, end = "isobmff", _isobmff_end(data, i, limit)
        elif data[i: i + 1] == b"<":
            kind, end = "xmp", _xmp_end(data, i, limit)
        elif data[i] in (0x00, 0xFF):
            kind, end = "padding", _padding_end(data, i, limit)
            chunks = _png_chunks_end(data, i, limit, allow_cut=False)
            if chunks > (end or i):  # a chunk whose length starts with zero bytes, e.g. IEND
                kind, end = "png-chunks", chunks
        if end is None or end <= i:
            parts.append(TrailerPart("unexplained", i, limit))
            break
        parts.append(TrailerPart(kind, i, end))
        i = end
    if sef is not None:
        parts.append(TrailerPart("samsung-sef", *sef))
        if sef[1] < n:  # bytes appended after the SEF trailer
            parts.append(TrailerPart("unexplained", sef[1], n))
    return parts


__all__ = ["GifWalk", "JPEG_SOF_MARKERS", "JPEG_SOI", "PNG_SIGNATURE", "TrailerPart", "end_of_gif", "end_of_image", "end_of_jpeg", "end_of_png",
           "jpeg_component_ids", "jpeg_segments", "png_problem", "structure_problem", "trailer_parts", "walk_gif", "with_jpeg_header_of"]
