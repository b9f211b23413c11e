"""The shape every steganography method shares, and the bit plumbing they use.

A method is a :class:`StegoMethod`: ``embed(cover, payload, options)`` returns
a whole stego file (bytes + sidecar embedding type); ``extract(carrier, ...)``
returns every payload candidate it finds in one decoded file. Methods live one
per module and are found through :data:`stegwatch.stego.METHODS`.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from stegwatch.errors import EmbedError
from stegwatch.format.files import FORMAT_EXTENSIONS, CarrierFile
from stegwatch.format.records import BitOrder, EmbeddingType

BIT_ORDERS: tuple[BitOrder, BitOrder] = ("msb-first", "lsb-first")
TERMINATOR = b"\x00"
AI42 = b"AI42"

#: Shortest text that counts as a payload-shaped message found in a pixel stream.
#: At 8 bytes, chance alone produced one hit in the 6,400 clean files of the
#: default corpus (a JPEG's RGB LSBs read as '"EImEQ$.'); at 16 the chance per
#: stream is about (95/256)**16, near 1e-7.
MIN_TEXT_PAYLOAD = 16

#: The payload units a method's rate is given in, in words.
PAYLOAD_UNITS = {"bpp": "bits per pixel", "bpnzac": "bits per non-zero AC coefficient", "bytes": "bytes"}


@dataclass(frozen=True)
class EmbedOptions:
    """Options every method accepts; each method reads the ones it needs.

    ``bit_order`` for ordered pixel methods, ``carrier`` the output file
    format (``PNG``, ``JPEG``, ``GIF``, ``BMP``), ``key`` for keyed methods,
    ``jpeg_quality`` where a JPEG is written.
    """

    bit_order: BitOrder = "msb-first"
    carrier: str | None = None
    key: str | None = None
    jpeg_quality: int = 90
    #: False: embed the payload's bits alone, with no marker and no terminator (methods with
    #: ``raw_stream`` only), so that nothing extractable looks like a message.
    framed: bool = True


@dataclass(frozen=True)
class StegoFile:
    """A finished stego file: its bytes, its format and its sidecar embedding type."""

    data: bytes
    format: str
    embedding: EmbeddingType
    key: str | None = None
    #: More sidecar fields, e.g. ``simulation`` for simulator-only methods.
    sidecar_extra: dict | None = None

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSIONS[self.format]


@dataclass(frozen=True)
class Extraction:
    """One payload candidate found in one stream of a file.

    ``terminated`` is False when the payload ran to the end of its stream
    without the NUL terminator (accepted leniently for exif and eoi).
    """

    method: str
    stream: str
    payload: bytes
    bit_order: BitOrder | None = None
    terminated: bool = True
    ai42: bool = False
    note: str | None = None

    @property
    def text(self) -> str | None:
        """The payload as UTF-8 text, or None when it is not valid UTF-8."""
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError:
            return None

    @property
    def payload_shaped(self) -> bool:
        """Does this look like a hidden message rather than chance bits?

        Yes when the AI42 marker framed it, or when it is printable UTF-8 text
        of at least :data:`MIN_TEXT_PAYLOAD` bytes (metadata streams: any
        non-blank text) that ended where the framing says.
        """
        if self.ai42:
            return True
        text = self.text
        if text is None or not text.strip():
            return False
        if not looks_printable(text):
            return False
        if self.stream_kind == "pixel":
            return self.terminated and len(self.payload) >= MIN_TEXT_PAYLOAD and _varied(self.payload)
        return True

    @property
    def stream_kind(self) -> str:
        return "metadata" if self.method in ("exif", "eoi") else "pixel"

    def preview(self, limit: int = 60) -> str:
        """A short, safe preview: printable characters only, truncated."""
        text = self.payload.decode("utf-8", errors="replace")
        shown = "".join(ch if ch.isprintable() else "." for ch in text[:limit])
        return shown + ("..." if len(text) > limit else "")


#: A message's bytes vary: a pixel stream's candidate with less byte entropy than this (bits per byte) is a
#: repeated pattern (a flat or dithered area's LSBs read as "m\xdb\xb6" again and again), not text. Short
#: messages in any language have 3 or more.
MIN_TEXT_ENTROPY = 2.5


def _varied(payload: bytes) -> bool:
    values = np.frombuffer(payload[:1024], dtype=np.uint8)
    counts = np.bincount(values, minlength=256)
    p = counts[counts > 0] / max(1, values.size)
    return float(-(p * np.log2(p)).sum()) >= MIN_TEXT_ENTROPY


def looks_printable(text: str, min_ratio: float = 0.95) -> bool:
    if not text:
        return False
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\n\r\t")
    return printable / len(text) >= min_ratio


@dataclass(frozen=True)
class StegoMethod:
    """A steganography method: its taxonomy, and its embed/extract/capacity functions."""

    key: str
    category: str
    technique: str
    ai42: bool
    carriers: tuple[str, ...]
    embed: Callable[[Cover, bytes, EmbedOptions], StegoFile]
    extract: Callable[..., list[Extraction]]
    capacity: Callable[[Cover], int]
    ordered: bool = False
    keyed: bool = False
    description: str = ""
    #: The unit of the method's payload rate: a key of :data:`PAYLOAD_UNITS`.
    payload_unit: str = "bpp"
    #: True when the method only simulates the changes (no extractable message):
    #: its labels are proven by change rate against the cover, not by extraction.
    simulated: bool = False
    #: How the message is delimited: "nul" (payload + NUL: the payload cannot hold a NUL),
    #: "length" (a length header), "tool" (the external program's own), "none" (simulated).
    framing: str = "nul"
    #: External programs the method runs, and how to install them.
    requires: tuple[str, ...] = field(default_factory=tuple)
    install_hint: str = ""
    #: Pillow modes the method embeds into without converting the cover (empty: any mode).
    #: A container-matched corpus only draws covers whose format is in ``carriers`` and mode here.
    modes: tuple[str, ...] = ()
    #: For sequential LSB methods: the image's samples in embedding order (None when it has
    #: none). Lets an unframed payload be read back as raw bits (:meth:`read_unframed`).
    raw_stream: Callable[[Image.Image], np.ndarray | None] | None = None

    def accepts(self, image_format: str, mode: str) -> bool:
        """True when a file of this format and mode can be a cover whose stego keeps its container."""
        return image_format in self.carriers and (not self.modes or mode in self.modes)

    def read_unframed(self, carrier: CarrierFile, n_bytes: int, bit_order: BitOrder) -> bytes | None:
        """The first ``n_bytes`` along the embedding path, read as raw LSBs (an unframed payload)."""
        samples = self.raw_stream(carrier.image) if self.raw_stream is not None else None
        if samples is None:
            return None
        return from_bits((samples.reshape(-1)[: 8 * n_bytes] & 1).astype(np.uint8), bit_order)

    @property
    def payload_unit_description(self) -> str:
        """The payload unit in words, e.g. ``bits per non-zero AC coefficient``."""
        return PAYLOAD_UNITS.get(self.payload_unit, self.payload_unit)

    def missing_tools(self) -> list[str]:
        """The programs in ``requires`` that are not on PATH."""
        return [tool for tool in self.requires if shutil.which(tool) is None]

    def embedding(self, bit_order: BitOrder | None = None) -> EmbeddingType:
        return EmbeddingType(
            category=self.category,
            technique=self.technique,
            ai42=self.ai42,
            bit_order=bit_order if self.ordered else None,
        )


Cover = Image.Image | CarrierFile
"""What ``embed`` and ``capacity`` accept: a Pillow image, or a decoded file.

Pixel methods use the pixels; DCT methods need the JPEG file itself (its
quantized coefficients), so they take the file's bytes when it is a JPEG.
"""


def cover_image(cover: Cover) -> Image.Image:
    """The pixels of a cover, whichever form it came in."""
    return cover.image if isinstance(cover, CarrierFile) else cover


def to_bits(data: bytes, bit_order: BitOrder) -> np.ndarray:
    """Bytes -> array of 0/1 (uint8), in the given bit order within each byte."""
    order = "big" if bit_order == "msb-first" else "little"
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder=order)


def from_bits(bits: np.ndarray, bit_order: BitOrder) -> bytes:
    """Array of 0/1 -> bytes (trailing bits that do not fill a byte are dropped)."""
    usable = bits[: bits.size - bits.size % 8].astype(np.uint8, copy=False)
    order = "big" if bit_order == "msb-first" else "little"
    return np.packbits(usable, bitorder=order).tobytes()


def read_terminated(data: bytes) -> tuple[bytes, bool]:
    """Payload up to the first NUL, and whether a NUL was found."""
    end = data.find(TERMINATOR)
    if end < 0:
        return data, False
    return data[:end], True


def set_lsbs(samples: np.ndarray, bits: np.ndarray) -> None:
    """Replace the least significant bit of the first ``len(bits)`` samples, in place."""
    n = bits.size
    samples[:n] = (samples[:n] & 0xFE) | bits


def check_payload(payload: bytes, capacity: int, method: str, *, framed: bool = True) -> None:
    """Refuse a payload that does not fit, or (when ``framed``) that holds the NUL terminator."""
    if framed and TERMINATOR in payload:
        raise EmbedError(f"{method}: payload contains a NUL byte, which the framing uses as terminator")
    if len(payload) > capacity:
        raise EmbedError(f"{method}: payload of {len(payload)} bytes exceeds capacity of {capacity} bytes")


def encode_image(image: Image.Image, fmt: str, *, jpeg_quality: int = 90, **params: object) -> bytes:
    """Encode an image deterministically in ``fmt`` (PNG, JPEG, GIF, BMP)."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(buffer, "JPEG", quality=jpeg_quality, **params)
    elif fmt == "GIF":
        if image.mode != "P":
            image = to_palette(image)
        # optimize=False: Pillow would otherwise renumber the palette, moving every index.
        image.save(buffer, "GIF", optimize=False, **params)
    else:
        try:
            image.save(buffer, fmt, **params)
        except (OSError, KeyError, ValueError) as exc:  # Pillow cannot write every mode in every format (CMYK, PA as PNG)
            raise EmbedError(f"cannot write a {image.mode} image as {fmt}: {exc}") from None
    return buffer.getvalue()


def to_palette(image: Image.Image, *, dither: bool = True) -> Image.Image:
    """Quantize to a 256-entry palette (padded, so every index and its LSB twin is valid)."""
    rgb = image.convert("RGB")
    quantized = rgb.quantize(
        colors=256,
        method=Image.Quantize.MEDIANCUT,
        dither=Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE,
    )
    palette = quantized.getpalette() or []
    quantized.putpalette(palette + [0] * (768 - len(palette)))
    return quantized


def lsb_candidates(
    samples: np.ndarray,
    *,
    method: str,
    stream: str,
    bit_orders: tuple[BitOrder, ...],
    magic: bytes = b"",
) -> list[Extraction]:
    """NUL-terminated payloads read from the LSBs of ``samples`` in each bit order.

    With ``magic``, only streams that start with it count, and it is stripped.
    """
    bits = (samples.reshape(-1) & 1).astype(np.uint8)
    found = []
    for order in bit_orders:
        data = from_bits(bits, order)
        if magic:
            if not data.startswith(magic):
                continue
            data = data[len(magic):]
        payload, terminated = read_terminated(data)
        if not terminated or not payload:
            continue
        found.append(
            Extraction(
                method=method, stream=stream, payload=payload, bit_order=order, ai42=bool(magic)
            )
        )
    return found


def orders_to_try(bit_order: BitOrder | None) -> tuple[BitOrder, ...]:
    """The sidecar's order when known; both otherwise (a reader must try both)."""
    return (bit_order,) if bit_order else BIT_ORDERS
