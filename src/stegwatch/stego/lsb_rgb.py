"""``lsb.rgb``: payload in the LSB of R,G,B,R,G,B,... from the top-left pixel (Starlight).

Framing ``payload + b"\\x00"`` in the bit order the sidecar names. Carrier:
PNG or BMP, mode RGB. Reading also accepts RGBA files (the alpha is skipped).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
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
)

KEY = "lsb.rgb"


def capacity(cover: Cover) -> int:
    cover = cover_image(cover)
    return max(0, cover.width * cover.height * 3 // 8 - len(TERMINATOR))


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    cover = cover_image(cover)
    check_payload(payload, capacity(cover), KEY, framed=options.framed)
    carrier = options.carrier or "PNG"
    pixels = np.array(cover.convert("RGB"))
    samples = pixels.reshape(-1)
    set_lsbs(samples, to_bits(payload + TERMINATOR if options.framed else payload, options.bit_order))
    data = encode_image(Image.fromarray(samples.reshape(pixels.shape), "RGB"), carrier)
    return StegoFile(data=data, format=carrier, embedding=METHOD.embedding(options.bit_order))


def rgb_samples(image: Image.Image) -> np.ndarray | None:
    """R,G,B samples in scan order, or None for images without three colour channels."""
    if image.mode == "RGB":
        return np.asarray(image)
    if image.mode == "RGBA":
        return np.ascontiguousarray(np.asarray(image)[..., :3])
    return None


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    samples = rgb_samples(carrier.image)
    if samples is None:
        return []
    return lsb_candidates(samples, method=KEY, stream="RGB LSB", bit_orders=orders_to_try(bit_order))


METHOD = StegoMethod(
    key=KEY,
    category="pixel",
    technique="lsb.rgb",
    ai42=False,
    carriers=("PNG", "BMP"),
    modes=("RGB",),
    raw_stream=rgb_samples,
    embed=embed,
    extract=extract,
    capacity=capacity,
    ordered=True,
    description="payload in the LSBs of R,G,B samples in scan order",
)
