"""``eoi``: payload appended after the end of the image (Starlight).

``payload + b"\\x00"`` after JPEG's final ``FFD9``, PNG's ``IEND`` chunk (after
its CRC) or GIF's ``0x3B`` trailer. The end of the image is found by walking
the file's structure, not by searching for the marker bytes, so a payload
that happens to contain ``FFD9`` is read whole. A complete JPEG image after
the end (multi-picture and motion-photo files) is a legitimate trailer, not a
payload: it is skipped, and only bytes after it count. Reading accepts the
payload with or without the NUL, and an ``AI42`` marker at its start.
"""

from __future__ import annotations


from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego.base import (
    Cover,
    cover_image,
    AI42,
    TERMINATOR,
    EmbedOptions,
    Extraction,
    StegoFile,
    StegoMethod,
    check_payload,
    encode_image,
    read_terminated,
)

KEY = "eoi"
MAX_PAYLOAD = 1 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8\xff"


def capacity(cover: Cover) -> int:
    return MAX_PAYLOAD


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    """Append the payload after the end of the image: to the cover's own bytes when it is a file of the carrier's
    format (its container stays exactly as it was), else to a fresh encoding."""
    source = cover
    cover = cover_image(cover)
    check_payload(payload, capacity(cover), KEY)
    carrier = options.carrier or "JPEG"
    if isinstance(source, CarrierFile) and source.format == carrier:
        return StegoFile(data=source.data + payload + TERMINATOR, format=carrier, embedding=METHOD.embedding())
    image = cover.convert("RGB") if carrier == "JPEG" and cover.mode not in ("RGB", "L") else cover
    data = encode_image(image, carrier, jpeg_quality=options.jpeg_quality) + payload + TERMINATOR
    return StegoFile(data=data, format=carrier, embedding=METHOD.embedding())


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


def split_trailer(data: bytes) -> tuple[bytes, int]:
    """Bytes after the end of the image, less any complete JPEG images that follow it.

    Returns the remaining trailer and how many embedded JPEG images were skipped.
    """
    _, end = end_of_image(data)
    if end is None:
        return b"", 0
    trailer = data[end:]
    skipped = 0
    while trailer.startswith(JPEG_SOI):
        inner_end = end_of_jpeg(trailer)
        if inner_end is None:
            break
        trailer = trailer[inner_end:]
        skipped += 1
    return trailer, skipped


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    kind, _ = end_of_image(carrier.data)
    trailer, skipped = split_trailer(carrier.data)
    ai42 = trailer.startswith(AI42)
    if ai42:
        trailer = trailer[len(AI42) :]
    payload, terminated = read_terminated(trailer)
    if not payload:
        return []
    note = f"after {skipped} embedded JPEG image(s)" if skipped else None
    return [
        Extraction(
            method=KEY,
            stream=f"after {kind} end of image",
            payload=payload,
            terminated=terminated,
            ai42=ai42,
            note=note,
        )
    ]


METHOD = StegoMethod(
    key=KEY,
    category="eoi",
    technique="raw",
    ai42=False,
    carriers=("JPEG", "PNG", "GIF"),
    embed=embed,
    extract=extract,
    capacity=capacity,
    description="payload appended after the end of the image",
    payload_unit="bytes",
)
