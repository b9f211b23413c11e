"""``palette``: payload in the LSB of each pixel's palette index (Starlight).

Framing ``payload + b"\\x00"``, row-major, in the bit order the sidecar
names. Carrier: PNG or GIF, mode P. A true-colour cover is first quantized to
a full 256-entry palette (so flipping an index's LSB always lands on a
valid entry).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.errors import EmbedError
from stegwatch.stego.base import (
    Cover,
    cover_image,
    TERMINATOR,
    EmbedOptions,
    Extraction,
    StegoFile,
    StegoMethod,
    check_payload,
    encode_image,
    lsb_candidates,
    orders_to_try,
    set_lsbs,
    to_bits,
    to_palette,
)

KEY = "palette"


def capacity(cover: Cover) -> int:
    cover = cover_image(cover)
    return max(0, cover.width * cover.height // 8 - len(TERMINATOR))


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    cover = cover_image(cover)
    check_payload(payload, capacity(cover), KEY, framed=options.framed)
    carrier = options.carrier or "PNG"
    indexed = cover if cover.mode == "P" else to_palette(cover)
    palette = indexed.getpalette() or []
    # An index's LSB twin must be a palette entry. The palette is kept as it is (the stego file keeps
    # its cover's container), so a palette with an odd number of entries cannot carry a payload.
    entries = len(palette) // 3
    if entries % 2:
        raise EmbedError(f"{KEY}: a palette of {entries} entries (odd) has an index without an LSB twin")
    palette = palette[: 3 * entries]
    indices = np.array(indexed).reshape(-1)
    set_lsbs(indices, to_bits(payload + TERMINATOR if options.framed else payload, options.bit_order))
    stego = Image.fromarray(indices.reshape(indexed.height, indexed.width), "P")
    stego.putpalette(palette)
    data = encode_image(stego, carrier)
    return StegoFile(data=data, format=carrier, embedding=METHOD.embedding(options.bit_order))


def index_plane(image: Image.Image) -> np.ndarray | None:
    """The palette indices, row-major, or None for an image without a palette."""
    return np.asarray(image) if image.mode == "P" else None


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    indices = index_plane(carrier.image)
    if indices is None:
        return []
    return lsb_candidates(indices, method=KEY, stream="palette index LSB", bit_orders=orders_to_try(bit_order))


METHOD = StegoMethod(
    key=KEY,
    category="pixel",
    technique="palette",
    ai42=False,
    carriers=("PNG", "GIF"),
    modes=("P",),
    raw_stream=index_plane,
    embed=embed,
    extract=extract,
    capacity=capacity,
    ordered=True,
    description="payload in the LSB of palette indices, row-major",
)
