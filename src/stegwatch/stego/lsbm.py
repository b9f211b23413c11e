"""``lsbm``: LSB matching (+-1 embedding) at pseudo-random positions chosen by a key.

Framing ``payload + b"\\x00"``, MSB-first, written into R,G,B samples visited
in a key-driven permutation. Where a sample's LSB differs from the message
bit, the sample moves by +1 or -1 at random (never past 0 or 255), so the
LSB plane changes exactly as in LSB replacement but the histogram keeps no
pairs-of-values artefact. Carrier: PNG, mode RGB. The key is recorded in
the sidecar; without it the message cannot be located.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego.base import (
    Cover,
    cover_image,
    TERMINATOR,
    EmbedError,
    EmbedOptions,
    Extraction,
    StegoFile,
    StegoMethod,
    check_payload,
    encode_image,
    from_bits,
    read_terminated,
    to_bits,
)
from stegwatch.stego.lsb_rgb import rgb_samples

KEY = "lsbm"
BIT_ORDER: BitOrder = "msb-first"


def capacity(cover: Cover) -> int:
    cover = cover_image(cover)
    return max(0, cover.width * cover.height * 3 // 8 - len(TERMINATOR))


def _key_rng(key: str, purpose: str) -> np.random.Generator:
    digest = hashlib.sha256(f"stegwatch-lsbm:{purpose}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def visiting_order(key: str, n_samples: int) -> np.ndarray:
    """The sample positions, in the order the key visits them."""
    return _key_rng(key, "positions").permutation(n_samples)


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    cover = cover_image(cover)
    if not options.key:
        raise EmbedError("lsbm: a key is required")
    check_payload(payload, capacity(cover), KEY)
    pixels = np.array(cover.convert("RGB"))
    samples = pixels.reshape(-1).astype(np.int16)
    bits = to_bits(payload + TERMINATOR, BIT_ORDER)
    positions = visiting_order(options.key, samples.size)[: bits.size]
    current = samples[positions]
    differs = (current & 1) != bits
    step = np.where(_key_rng(options.key, "signs").random(bits.size) < 0.5, -1, 1)
    step = np.where(current == 0, 1, np.where(current == 255, -1, step))
    samples[positions] = np.where(differs, current + step, current)
    stego = Image.fromarray(samples.astype(np.uint8).reshape(pixels.shape), "RGB")
    data = encode_image(stego, "PNG")
    return StegoFile(data=data, format="PNG", embedding=METHOD.embedding(), key=options.key)


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    """The message at the key's positions; nothing without a key."""
    samples = rgb_samples(carrier.image)
    if samples is None or not key:
        return []
    flat = samples.reshape(-1)
    bits = (flat[visiting_order(key, flat.size)] & 1).astype(np.uint8)
    payload, terminated = read_terminated(from_bits(bits, BIT_ORDER))
    if not terminated or not payload:
        return []
    return [Extraction(method=KEY, stream="keyed RGB LSB (matching)", payload=payload, bit_order=BIT_ORDER)]


METHOD = StegoMethod(
    key=KEY,
    category="pixel",
    technique="lsbm",
    ai42=False,
    carriers=("PNG",),
    modes=("RGB",),
    embed=embed,
    extract=extract,
    capacity=capacity,
    keyed=True,
    description="LSB matching (+-1) at key-driven pseudo-random positions",
)
