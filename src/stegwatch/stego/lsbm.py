"""``lsbm``: LSB matching (+-1 embedding) at pseudo-random positions chosen by a key.

Framing ``payload + b"\\x00"``, MSB-first, written into R,G,B samples visited
in a key-driven permutation. Where a sample's LSB differs from the message
bit, the sample moves by +1 or -1 at random (never past 0 or 255), so the
LSB plane changes exactly as in LSB replacement but the histogram keeps no
pairs-of-values artefact. Carrier: PNG, mode RGB. The key is recorded in
the sidecar; without it the message cannot be located.
"""

from __future__ import annotations

import functools
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


def _key_rng(key: str, purpose: str, namespace: str = KEY) -> np.random.Generator:
    digest = hashlib.sha256(f"stegwatch-{namespace}:{purpose}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def visiting_order(key: str, n_samples: int, namespace: str = KEY) -> np.ndarray:
    """The sample positions, in the order the key visits them (``namespace``: the method's own key schedule)."""
    return _key_rng(key, "positions", namespace).permutation(n_samples)


def embed_along_key(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions(), *, method: str,
                    matching: bool) -> StegoFile:
    """``payload + NUL`` (MSB-first) into the R,G,B samples that ``method``'s key schedule visits: each sample whose
    LSB differs from its bit moves by +-1 at random (``matching``: LSB matching, never past 0 or 255) or has its LSB
    set (LSB replacement)."""
    from stegwatch.stego import get_method

    cover = cover_image(cover)
    if not options.key:
        raise EmbedError(f"{method}: a key is required")
    check_payload(payload, capacity(cover), method)
    pixels = np.array(cover.convert("RGB"))
    samples = pixels.reshape(-1).astype(np.int16)
    bits = to_bits(payload + TERMINATOR, BIT_ORDER)
    positions = visiting_order(options.key, samples.size, method)[: bits.size]
    current = samples[positions]
    if matching:
        differs = (current & 1) != bits
        step = np.where(_key_rng(options.key, "signs", method).random(bits.size) < 0.5, -1, 1)
        step = np.where(current == 0, 1, np.where(current == 255, -1, step))
        samples[positions] = np.where(differs, current + step, current)
    else:
        samples[positions] = (current & ~1) | bits
    stego = Image.fromarray(samples.astype(np.uint8).reshape(pixels.shape), "RGB")
    return StegoFile(data=encode_image(stego, "PNG"), format="PNG", embedding=get_method(method).embedding(), key=options.key)


def extract_along_key(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None, method: str,
                      stream: str) -> list[Extraction]:
    """The NUL-terminated message at the positions ``method``'s key schedule visits; nothing without a key."""
    samples = rgb_samples(carrier.image)
    if samples is None or not key:
        return []
    flat = samples.reshape(-1)
    bits = (flat[visiting_order(key, flat.size, method)] & 1).astype(np.uint8)
    payload, terminated = read_terminated(from_bits(bits, BIT_ORDER))
    if not terminated or not payload:
        return []
    return [Extraction(method=method, stream=stream, payload=payload, bit_order=BIT_ORDER)]


def keyed_lsb_method(key: str, *, matching: bool, stream: str, description: str) -> StegoMethod:
    """A keyed LSB method on RGB PNGs (``lsbm``, :mod:`stegwatch.stego.lsbr`): its own key schedule, ``matching`` or
    replacement (:func:`embed_along_key`)."""
    return StegoMethod(
        key=key,
        category="pixel",
        technique=key,
        ai42=False,
        carriers=("PNG",),
        modes=("RGB",),
        embed=functools.partial(embed_along_key, method=key, matching=matching),
        extract=functools.partial(extract_along_key, method=key, stream=stream),
        capacity=capacity,
        keyed=True,
        description=description,
    )


METHOD = keyed_lsb_method(KEY, matching=True, stream="keyed RGB LSB (matching)",
                          description="LSB matching (+-1) at key-driven pseudo-random positions")
