"""A file's framing: the metadata and trailer around its image, which carry no pixels or coefficients.

A detector can tell clean files from stego by their framing instead of their
embedding: cameras write EXIF, phones append motion-photo trailers, exporters
add text chunks, while most embedding tools write a bare file. Real covers
have framing and so can stego made from them (an adversary keeps or restores
it at no cost), so a corpus whose stego files are all bare teaches a shortcut
that fails on the first stego file with EXIF. :func:`with_framing_of` gives a
stego file its cover's framing, and :func:`framing_of` is what the dataset
quality check reads.

Framing, per container:

- JPEG: the ``APP1``-``APP13``, ``APP15`` and ``COM`` segments before the
  scan (EXIF, XMP, ICC, MPF, vendor and comment segments). ``APP0`` (JFIF)
  and ``APP14`` (Adobe, whose colour-transform flag changes decoding) belong
  to the encoding and are not framing.
- PNG: the ``tEXt``, ``zTXt``, ``iTXt``, ``eXIf`` and ``tIME`` chunks.
- GIF: comment extensions (``21 FE``).
- Every container: the trailer, the bytes after the end of the image
  (:func:`stegwatch.format.structure.end_of_image`).
"""

from __future__ import annotations

from dataclasses import dataclass

from stegwatch.format.structure import PNG_SIGNATURE, end_of_image, jpeg_segments, walk_gif

#: JPEG markers whose segments are framing (APP1-APP13, APP15, COM).
JPEG_FRAMING_MARKERS = frozenset([*range(0xE1, 0xEE), 0xEF, 0xFE])
#: PNG chunk types that are framing.
PNG_FRAMING_CHUNKS = frozenset([b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"])


@dataclass(frozen=True)
class Framing:
    """The framing of one file: its metadata segments (whole, as written) and its trailer."""

    container: str
    metadata: tuple[bytes, ...] = ()
    trailer: bytes = b""
    #: Where metadata from another file goes in this one (None: a container this module does not
    #: know, or a broken structure).
    insert_at: int | None = None

    @property
    def metadata_bytes(self) -> int:
        return sum(len(segment) for segment in self.metadata)


def _jpeg_header(data: bytes) -> tuple[list[bytes], int | None]:
    """(framing segments, insertion offset after SOI and any leading APP0) of a JPEG, walking up to its first scan
    (:func:`~stegwatch.format.structure.jpeg_segments`: fill bytes before a marker, markers without a length)."""
    segments: list[bytes] = []
    insert_at = 2
    leading = True  # still in the segments right after SOI that are all APP0
    for marker, begin, end in jpeg_segments(data):
        if marker in (0xDA, 0xD9):
            return segments, insert_at
        if marker in JPEG_FRAMING_MARKERS:
            segments.append(data[begin:end])
        leading = leading and marker == 0xE0
        if leading:
            insert_at = end
    return segments, None


def _png_header(data: bytes) -> tuple[list[bytes], int | None]:
    """(framing chunks, offset of the first IDAT) of a PNG."""
    chunks: list[bytes] = []
    i, n = len(PNG_SIGNATURE), len(data)
    first_idat: int | None = None
    while i + 12 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            break
        if kind == b"IDAT" and first_idat is None:
            first_idat = i
        if kind in PNG_FRAMING_CHUNKS:
            chunks.append(data[i:end])
        if kind == b"IEND":
            break
        i = end
    return chunks, first_idat


def _gif_header(data: bytes) -> tuple[list[bytes], int | None]:
    """(comment extensions, offset of the first block after the global colour table) of a GIF."""
    walk = walk_gif(data)
    if walk is None:
        return [], None
    comments = [data[begin:end] for label, begin, end in walk.extensions if label == 0xFE]
    return comments, (walk.start if walk.start <= len(data) else None)


def _is_exif(segment: bytes) -> bool:
    """True for a JPEG ``APP1`` EXIF segment or a PNG ``eXIf`` chunk."""
    return segment.startswith(b"\xff\xe1") and segment[4:10] == b"Exif\x00\x00" or segment[4:8] == b"eXIf"


_HEADERS = {"JPEG": _jpeg_header, "PNG": _png_header, "GIF": _gif_header}


def with_exif_segment(jpeg: bytes, exif: bytes) -> bytes:
    """``jpeg`` with ``exif`` (``Exif\\0\\0`` + TIFF, as piexif dumps it) as its one EXIF segment.

    The segment takes the place of the file's first EXIF ``APP1`` (any other is dropped), or, in a file
    without one, goes after SOI and the leading ``APP0`` (JFIF) segments, where EXIF sits in a camera's
    file. Every other byte stays: piexif's own ``insert`` drops the JFIF segment, which would mark every
    file it wrote. ValueError when ``jpeg`` is not a JPEG or ``exif`` does not fit one segment.
    """
    if len(exif) > 0xFFFF - 2:
        raise ValueError(f"{len(exif)} bytes of EXIF do not fit one APP1 segment")
    segment = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    _, insert_at = _jpeg_header(jpeg) if jpeg.startswith(b"\xff\xd8") else ([], None)
    if insert_at is None:
        raise ValueError("not a JPEG whose header can be read up to its first scan")
    out, at, placed = bytearray(jpeg[:2]), 2, False
    for marker, begin, end in jpeg_segments(jpeg):
        if marker == 0xDA:
            break
        if _is_exif(jpeg[begin:end]):
            out += jpeg[at:begin] + (b"" if placed else segment)
            at, placed = end, True
    if not placed:
        return jpeg[:insert_at] + segment + jpeg[insert_at:]
    return bytes(out + jpeg[at:])


def framing_of(data: bytes) -> Framing:
    """The framing of a file's bytes (an empty one for containers it does not know, such as BMP)."""
    container, end = end_of_image(data)
    header = _HEADERS.get(container)
    if header is None or end is None:
        return Framing(container)
    metadata, insert_at = header(data)
    return Framing(container, tuple(metadata), data[end:], insert_at)


def with_framing_of(cover: bytes, stego: bytes) -> bytes:
    """``stego`` with ``cover``'s framing: its metadata segments and its trailer, where ``stego`` lacks them.

    Segments ``stego`` already holds byte for byte are not repeated; a
    ``stego`` with EXIF of its own keeps it alone, and one with a trailer of
    its own keeps that alone (so ``exif`` and ``eoi`` stego keep their
    payloads and get the rest of their cover's framing). A GIF given a
    comment is marked ``GIF89a``, the version that has extensions. The image itself
    (pixels, coefficients, tables) is untouched, so it decodes exactly as
    before. ``stego`` comes back unchanged when the two are different
    containers or its own structure is broken (a cover whose structure
    breaks off gives what could be read of it).
    """
    source, target = framing_of(cover), framing_of(stego)
    if source.container != target.container or target.insert_at is None:
        return stego
    own_exif = any(_is_exif(segment) for segment in target.metadata)
    extra = [segment for segment in source.metadata
             if segment not in target.metadata and not (own_exif and _is_exif(segment))]
    out = stego[: target.insert_at] + b"".join(extra) + stego[target.insert_at :]
    if extra and out.startswith(b"GIF87a"):
        out = b"GIF89a" + out[6:]  # extensions are GIF89a; a clean GIF with a comment says so
    if source.trailer and not target.trailer:
        out += source.trailer
    return out
