"""``f5``: F5 with matrix embedding, implemented by stegwatch (extractable).

conseal's F5 only simulates the changes, so stegwatch embeds for real, after
Westfeld (2001): the luminance AC coefficients are visited in a key-driven
permutation, zeros are skipped, and a coefficient's bit is ``v & 1`` for
``v > 0`` and ``1 - (|v| & 1)`` for ``v < 0``. A change always decrements the
absolute value; when that makes a coefficient 0 (shrinkage) the same bits are
embedded again further on. A 32-bit header (8 bits ``k``, 24 bits payload
length in bytes) is embedded first with ``k = 1``; the payload follows with
matrix encoding (1, 2**k - 1, k), ``k`` chosen as large as the payload allows.
Bits are MSB-first; the key is recorded in the sidecar.
"""

from __future__ import annotations

import hashlib

import numpy as np

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego.base import (
    Cover,
    EmbedError,
    EmbedOptions,
    Extraction,
    StegoFile,
    StegoMethod,
    from_bits,
    to_bits,
)
from stegwatch.stego.dct import ac_mask, jpeg_bytes_of, nonzero_ac, read_dct, write_dct

KEY = "f5"
HEADER_BITS = 32
MAX_K = 7


def _visiting_order(key: str, luma: np.ndarray) -> np.ndarray:
    digest = hashlib.sha256(f"stegwatch-f5:{key}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:16], "big"))
    return rng.permutation(np.flatnonzero(ac_mask(luma.shape).reshape(-1)))


def _bit(value: int) -> int:
    return value & 1 if value > 0 else 1 - ((-value) & 1)


class _Coefficients:
    """The permuted coefficient values, with a cursor that skips zeros."""

    def __init__(self, values: list[int]) -> None:
        self.values = values
        self.cursor = 0

    def take(self, count: int) -> tuple[list[int], int]:
        """Indices of the next ``count`` non-zero values from the cursor, and the index after them."""
        found: list[int] = []
        i, values, n = self.cursor, self.values, len(self.values)
        while len(found) < count:
            if i >= n:
                raise EmbedError("f5: ran out of non-zero coefficients")
            if values[i]:
                found.append(i)
            i += 1
        return found, i

    def embed_group(self, bits: int, n: int) -> None:
        """Make the group's syndrome equal ``bits`` with at most one change (repeating on shrinkage)."""
        while True:
            group, after = self.take(n)
            syndrome = 0
            for position, index in enumerate(group, start=1):
                if _bit(self.values[index]):
                    syndrome ^= position
            target = syndrome ^ bits
            if target == 0:
                self.cursor = after
                return
            index = group[target - 1]
            value = self.values[index]
            self.values[index] = value - 1 if value > 0 else value + 1
            if self.values[index] != 0:
                self.cursor = after
                return
            # Shrinkage: the coefficient became 0 and no longer counts; embed the same bits again.

    def read_group(self, n: int) -> int:
        group, self.cursor = self.take(n)
        syndrome = 0
        for position, index in enumerate(group, start=1):
            if _bit(self.values[index]):
                syndrome ^= position
        return syndrome


def _groups(bits: np.ndarray, k: int) -> list[int]:
    padded = np.concatenate([bits, np.zeros((-bits.size) % k, dtype=np.uint8)])
    weights = 1 << np.arange(k - 1, -1, -1)
    return (padded.reshape(-1, k) * weights).sum(axis=1).tolist()


def capacity(cover: Cover) -> int:
    """A conservative payload size in bytes: with k = 1, about half the non-zero AC coefficients survive shrinkage."""
    try:
        nzac = nonzero_ac(read_dct(jpeg_bytes_of(cover, 90)).Y)
    except ValueError:
        return 0
    return max(0, (nzac // 2 - HEADER_BITS) // 8)


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    if not options.key:
        raise EmbedError("f5: a key is required")
    if not payload or len(payload) >= 1 << 24:
        raise EmbedError("f5: payload must be 1 byte to 16 MiB")
    image = read_dct(jpeg_bytes_of(cover, options.jpeg_quality))
    flat = image.Y.reshape(-1)
    order = _visiting_order(options.key, image.Y)
    message = to_bits(payload, "msb-first")
    nzac = int(np.count_nonzero(flat[order]))
    # Largest k whose groups fit in the coefficients left after the header, with room for shrinkage.
    k = MAX_K
    while k > 1 and -(-message.size // k) * (2**k - 1) > 0.8 * (nzac - 2 * HEADER_BITS):
        k -= 1
    last_error: EmbedError | None = None
    for k_try in range(k, 0, -1):
        coefficients = _Coefficients(flat[order].astype(np.int64).tolist())
        header = to_bits(bytes([k_try]) + len(payload).to_bytes(3, "big"), "msb-first")
        try:
            for bit in header.tolist():
                coefficients.embed_group(bit, 1)
            for bits in _groups(message, k_try):
                coefficients.embed_group(bits, 2**k_try - 1)
        except EmbedError as exc:
            last_error = exc
            continue
        flat[order] = np.asarray(coefficients.values, dtype=flat.dtype)
        return StegoFile(data=write_dct(image), format="JPEG", embedding=METHOD.embedding(), key=options.key)
    raise EmbedError(f"f5: payload of {len(payload)} bytes does not fit ({last_error})")


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    if not key:
        return []
    try:
        luma = read_dct(carrier.data).Y
    except ValueError:
        return []
    order = _visiting_order(key, luma)
    coefficients = _Coefficients(luma.reshape(-1)[order].astype(np.int64).tolist())
    try:
        header = [coefficients.read_group(1) for _ in range(HEADER_BITS)]
        k = int("".join(map(str, header[:8])), 2)
        length = int("".join(map(str, header[8:])), 2)
        if not 1 <= k <= MAX_K or length == 0 or length * 8 > len(coefficients.values):
            return []
        n = 2**k - 1
        groups = -(-length * 8 // k)
        bits = []
        for _ in range(groups):
            syndrome = coefficients.read_group(n)
            bits.extend((syndrome >> shift) & 1 for shift in range(k - 1, -1, -1))
    except EmbedError:
        return []
    payload = from_bits(np.asarray(bits[: length * 8], dtype=np.uint8), "msb-first")
    return [Extraction(method=KEY, stream=f"luminance DCT, F5 matrix encoding k={k}", payload=payload, bit_order="msb-first")]


METHOD = StegoMethod(
    key=KEY,
    category="dct",
    technique="f5",
    ai42=False,
    carriers=("JPEG",),
    embed=embed,
    extract=extract,
    capacity=capacity,
    keyed=True,
    description="F5: matrix encoding, decrementing |coefficient|, key-permuted luminance AC",
    payload_unit="bpnzac",
    framing="length",
)
