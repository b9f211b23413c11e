"""``jsteg``: sequential LSB replacement in quantized DCT coefficients (JSteg).

Written by stegwatch through jpeglib. The message ``payload + b"\\x00"``
(MSB-first) replaces the LSB (two's complement) of the luminance AC
coefficients in order (blocks row-major, each block's 64 coefficients
row-major, DC skipped), skipping coefficients equal to 0 or 1. LSB replacement
never turns a usable coefficient into 0 or 1, so the extractor sees the same
sequence.
"""

from __future__ import annotations

import numpy as np

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego.base import (
    TERMINATOR,
    Cover,
    EmbedOptions,
    Extraction,
    StegoFile,
    StegoMethod,
    check_payload,
    from_bits,
    read_terminated,
    to_bits,
)
from stegwatch.stego.dct import ac_mask, jpeg_bytes_of, read_dct, write_dct

KEY = "jsteg"
BIT_ORDER: BitOrder = "msb-first"


def usable_positions(luma: np.ndarray) -> np.ndarray:
    """Flat indices (in embedding order) of AC coefficients that are neither 0 nor 1."""
    flat = luma.reshape(-1)
    mask = ac_mask(luma.shape).reshape(-1) & (flat != 0) & (flat != 1)
    return np.flatnonzero(mask)


def capacity(cover: Cover) -> int:
    try:
        luma = read_dct(jpeg_bytes_of(cover, 90)).Y
    except ValueError:
        return 0
    return max(0, usable_positions(luma).size // 8 - len(TERMINATOR))


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    image = read_dct(jpeg_bytes_of(cover, options.jpeg_quality))
    positions = usable_positions(image.Y)
    check_payload(payload, max(0, positions.size // 8 - 1), KEY)
    bits = to_bits(payload + TERMINATOR, BIT_ORDER).astype(image.Y.dtype)
    flat = image.Y.reshape(-1)  # a view: writes go into the image
    chosen = positions[: bits.size]
    flat[chosen] = (flat[chosen] & ~1) | bits
    return StegoFile(data=write_dct(image), format="JPEG", embedding=METHOD.embedding())


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    try:
        luma = read_dct(carrier.data).Y
    except ValueError:
        return []
    bits = (luma.reshape(-1)[usable_positions(luma)] & 1).astype(np.uint8)
    payload, terminated = read_terminated(from_bits(bits, BIT_ORDER))
    if not terminated or not payload:
        return []
    return [Extraction(method=KEY, stream="luminance DCT LSB (JSteg order)", payload=payload, bit_order=BIT_ORDER)]


METHOD = StegoMethod(
    key=KEY,
    category="dct",
    technique="jsteg",
    ai42=False,
    carriers=("JPEG",),
    embed=embed,
    extract=extract,
    capacity=capacity,
    description="sequential LSB replacement in luminance DCT coefficients, skipping 0 and 1",
    payload_unit="bpnzac",
)
