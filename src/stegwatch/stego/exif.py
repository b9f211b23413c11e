"""``exif``: payload in the EXIF ``UserComment`` tag (Starlight).

``UserComment = b"ASCII\\x00\\x00\\x00" + payload + b"\\x00"``. Carrier: JPEG
or PNG (``eXIf`` chunk). Reading accepts the payload with or without the NUL,
and the other EXIF character codes (UNICODE, JIS, undefined).
"""

from __future__ import annotations

import piexif
from PIL import Image

from stegwatch.format.files import CarrierFile
from stegwatch.format.framing import with_exif_segment
from stegwatch.format.records import BitOrder
from stegwatch.stego.base import (
    Cover,
    EmbedError,
    cover_image,
    TERMINATOR,
    EmbedOptions,
    Extraction,
    StegoFile,
    StegoMethod,
    check_payload,
    encode_image,
    read_terminated,
)

KEY = "exif"
ASCII_HEADER = b"ASCII\x00\x00\x00"
_CHARSET_HEADERS = (ASCII_HEADER, b"UNICODE\x00", b"JIS\x00\x00\x00\x00\x00", b"\x00" * 8)
#: An APP1 segment holds at most 65,533 bytes; leave room for the IFD structure.
MAX_PAYLOAD = 60_000


def capacity(cover: Cover) -> int:
    return MAX_PAYLOAD


#: What a camera's empty UserComment holds: not a payload.
_BLANKS = b" \x00\t\r\n"


def user_comment_exif(comment: bytes, extra_ifd0: dict | None = None, extra_exif: dict | None = None,
                      base: bytes | None = None) -> bytes:
    """EXIF bytes (``Exif\\0\\0`` + TIFF) holding ``comment`` as the raw UserComment value.

    ``base``: a file's own EXIF, whose tags are kept beside the comment (a camera's make, model and
    dates stay, as they do when a tool writes a comment into a photograph); EXIF that piexif cannot
    read or write again is left out, and the comment stands alone.
    """
    def with_comment(tags: dict) -> dict:
        return {**tags, "0th": {**tags.get("0th", {}), **(extra_ifd0 or {})},
                "Exif": {**tags.get("Exif", {}), piexif.ExifIFD.UserComment: comment, **(extra_exif or {})}}

    if base:
        try:
            return piexif.dump(with_comment(piexif.load(base)))
        except Exception:  # piexif raises assorted errors on EXIF it cannot parse or re-encode
            pass
    return piexif.dump(with_comment({}))


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    """Write the payload into EXIF UserComment: inserted into the cover's own JPEG bytes when the cover is a
    JPEG file (no re-encoding, same quantization, its JFIF header kept), else into a fresh encoding (a PNG
    keeps its mode). A cover file's own EXIF tags stay beside the comment."""
    source = cover
    cover = cover_image(cover)
    check_payload(payload, capacity(cover), KEY)
    if not payload.strip(_BLANKS):
        # Cameras write blank comments: extraction ignores them, so a payload of blanks could never be read back.
        raise EmbedError(f"{KEY}: a payload of only blanks (spaces, tabs, newlines) reads back as a camera's empty comment")
    carrier = options.carrier or "JPEG"
    own = source.image.info.get("exif") if isinstance(source, CarrierFile) else None
    exif_bytes = user_comment_exif(ASCII_HEADER + payload + TERMINATOR, base=own)
    if carrier == "JPEG" and isinstance(source, CarrierFile) and source.format == "JPEG":
        try:
            data = with_exif_segment(source.data, exif_bytes)
        except ValueError as exc:  # the comment and the cover's own tags outgrow one segment
            raise EmbedError(f"{KEY}: {exc}") from None
        return StegoFile(data=data, format=carrier, embedding=METHOD.embedding())
    image = cover.convert("RGB") if carrier == "JPEG" and cover.mode not in ("RGB", "L") else cover
    data = encode_image(image, carrier, exif=exif_bytes, jpeg_quality=options.jpeg_quality)
    return StegoFile(data=data, format=carrier, embedding=METHOD.embedding())


def read_user_comment(image: Image.Image) -> bytes | None:
    """The raw UserComment value, or None when the file has no EXIF or no such tag.

    Raises ValueError when EXIF is present but malformed.
    """
    raw = image.info.get("exif")
    if not raw:
        return None
    try:
        exif = piexif.load(raw)
    except Exception as exc:  # piexif raises assorted errors on malformed EXIF
        raise ValueError(f"malformed EXIF: {exc}") from None
    value = exif.get("Exif", {}).get(piexif.ExifIFD.UserComment)
    return bytes(value) if value is not None else None


def decode_user_comment(comment: bytes, big_endian: bool = True) -> tuple[bytes, bool]:
    """Strip the character-code header; return payload bytes and whether a NUL ended it."""
    header = comment[:8]
    body = comment[8:] if header in _CHARSET_HEADERS else comment
    if header == b"UNICODE\x00":
        text = body.decode("utf-16-be" if big_endian else "utf-16-le", errors="replace")
        body = text.encode("utf-8")
    return read_terminated(body)


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    try:
        comment = read_user_comment(carrier.image)
    except ValueError:
        return []
    if comment is None:
        return []
    raw = carrier.image.info.get("exif", b"")
    tiff = raw[6:] if raw.startswith(b"Exif") else raw
    payload, terminated = decode_user_comment(comment, big_endian=tiff[:2] != b"II")
    if not payload.strip(_BLANKS):
        return []
    return [Extraction(method=KEY, stream="EXIF UserComment", payload=payload, terminated=terminated)]


METHOD = StegoMethod(
    key=KEY,
    category="metadata",
    technique="exif",
    ai42=False,
    carriers=("JPEG", "PNG"),
    embed=embed,
    extract=extract,
    capacity=capacity,
    description="payload in the EXIF UserComment tag",
    payload_unit="bytes",
)
