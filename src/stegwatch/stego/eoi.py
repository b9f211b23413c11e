"""``eoi``: payload appended after the end of the image (Starlight).

``payload + b"\\x00"`` after JPEG's final ``FFD9``, PNG's ``IEND`` chunk (after
its CRC) or GIF's ``0x3B`` trailer. The end of the image is found by walking
the file's structure, not by searching for the marker bytes, so a payload
that happens to contain ``FFD9`` is read whole. A complete JPEG image after
the end (multi-picture and motion-photo files) is a legitimate trailer, not a
payload: it is skipped, and only bytes after it count. A payload appended
after another known trailer (padding, a motion photo's video, a Samsung SEF
trailer) is read where the bytes no structure explains begin. Reading accepts
the payload with or without the NUL, and an ``AI42`` marker at its start.
"""

from __future__ import annotations


from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.format.structure import JPEG_SOI, end_of_gif, end_of_image, end_of_jpeg, end_of_png, trailer_parts  # the walkers live in format/
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


def trailer_start(data: bytes) -> tuple[int | None, int]:
    """Where the trailer begins: after the end of the image and any complete JPEG images that follow it.

    Returns that offset (None when the end of the image cannot be found) and
    how many embedded JPEG images were skipped. Offsets, not copies, so a
    large trailer is never held twice.
    """
    _, end = end_of_image(data)
    if end is None:
        return None, 0
    skipped = 0
    while data.startswith(JPEG_SOI, end):
        inner_end = end_of_jpeg(data, end)
        if inner_end is None:
            break
        end = inner_end
        skipped += 1
    return end, skipped


def split_trailer(data: bytes) -> tuple[bytes, int]:
    """Bytes after the end of the image, less any complete JPEG images that follow it.

    Returns the remaining trailer and how many embedded JPEG images were skipped.
    """
    start, skipped = trailer_start(data)
    return (b"", 0) if start is None else (data[start:], skipped)


def payload_starts(data: bytes) -> tuple[list[int], int]:
    """Where an appended payload may begin, and how many embedded JPEG images were skipped.

    First after the end of the image and any complete JPEG images that
    follow it (:func:`trailer_start`); then, where the file ends in another
    known trailer structure (padding, a motion photo's video, XMP, a Samsung
    SEF trailer: :func:`~stegwatch.format.structure.trailer_parts`), where the
    first bytes that none explains begin. A payload appended to a phone's
    file follows its trailer, and is read there.
    """
    start, skipped = trailer_start(data)
    if start is None:
        return [], 0
    starts = [start]
    unexplained = [part.start for part in trailer_parts(data, start) if part.kind == "unexplained"]
    if unexplained and unexplained[0] != start:
        starts.append(unexplained[0])
    return starts, skipped


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    data = carrier.data
    kind, _ = end_of_image(data)
    starts, skipped = payload_starts(data)
    found = []
    for n, start in enumerate(starts):
        trailer = data[start:]
        notes = [f"after {skipped} embedded JPEG image(s)" if skipped else "",
                 "after the known trailer structures" if n else ""]
        note = "; ".join(x for x in notes if x) or None
        # A trailer starting with AI42 is read with the marker taken off first, then whole: a payload may
        # itself begin with those four bytes.
        readings = [(trailer[len(AI42):], True), (trailer, False)] if trailer.startswith(AI42) else [(trailer, False)]
        for body, ai42 in readings:
            payload, terminated = read_terminated(body)
            if payload:
                found.append(Extraction(method=KEY, stream=f"after {kind} end of image", payload=payload,
                                        terminated=terminated, ai42=ai42, note=note))
    return found


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

__all__ = ["METHOD", "capacity", "embed", "end_of_gif", "end_of_image", "end_of_jpeg", "end_of_png", "extract",
           "payload_starts", "split_trailer", "trailer_start"]
