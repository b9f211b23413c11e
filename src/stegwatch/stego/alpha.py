"""``alpha``: the AI42 protocol in the LSB of the alpha channel (Starlight).

One bit per pixel, row-major; framing ``b"AI42" + payload + b"\\x00"``; each
byte LSB-first. Carrier: PNG, mode RGBA.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

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
    lsb_candidates,
    set_lsbs,
    to_bits,
)

KEY = "alpha"
BIT_ORDER: BitOrder = "lsb-first"


def capacity(cover: Cover) -> int:
    """Largest payload in bytes: one bit per pixel, less the framing."""
    cover = cover_image(cover)
    return max(0, cover.width * cover.height // 8 - len(AI42) - len(TERMINATOR))


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    cover = cover_image(cover)
    check_payload(payload, capacity(cover), KEY, framed=options.framed)
    pixels = np.array(cover.convert("RGBA"))
    alpha = pixels[..., 3].copy().reshape(-1)
    set_lsbs(alpha, to_bits(AI42 + payload + TERMINATOR if options.framed else payload, BIT_ORDER))
    pixels[..., 3] = alpha.reshape(pixels.shape[:2])
    data = encode_image(Image.fromarray(pixels, "RGBA"), "PNG")
    return StegoFile(data=data, format="PNG", embedding=METHOD.embedding())


def alpha_plane(image: Image.Image) -> np.ndarray | None:
    """The alpha channel as uint8, or None when the image has none."""
    if image.mode in ("RGBA", "LA"):
        return np.asarray(image.getchannel("A"))
    if image.mode == "PA":
        return np.asarray(image.getchannel("A"))
    return None


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    """AI42-framed payloads in the alpha LSB plane (LSB-first, then MSB-first leniently)."""
    plane = alpha_plane(carrier.image)
    if plane is None:
        return []
    orders: tuple[BitOrder, ...] = (bit_order,) if bit_order else (BIT_ORDER, "msb-first")
    return lsb_candidates(plane, method=KEY, stream="alpha LSB", bit_orders=orders, magic=AI42)


METHOD = StegoMethod(
    key=KEY,
    category="pixel",
    technique="alpha",
    ai42=True,
    carriers=("PNG",),
    modes=("RGBA",),
    raw_stream=alpha_plane,
    embed=embed,
    extract=extract,
    capacity=capacity,
    description="AI42 marker + payload in the alpha-channel LSBs, LSB-first",
)
