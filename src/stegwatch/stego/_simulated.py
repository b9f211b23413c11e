"""Embedding by simulation (conseal): coefficients change as the algorithm would change them.

A simulator does not write a message that can be read back, so these methods
record in the sidecar what they did (``simulation``: simulator, rate, seed,
changed coefficients, the cover's non-zero AC count), and a validator proves
the label by counting the coefficients that differ from the cover.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable

import numpy as np

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego.base import Cover, EmbedError, EmbedOptions, Extraction, StegoFile, StegoMethod
from stegwatch.stego.dct import DctImage, jpeg_bytes_of, nonzero_ac, read_dct, write_dct

#: (cover coefficients, cover JPEG bytes, rate in bpnzac, seed) -> stego luminance coefficients.
Simulator = Callable[[DctImage, bytes, float, int], np.ndarray]


def simulation_seed(options: EmbedOptions, payload: bytes) -> int:
    """The simulator's seed: the key when one is given, else derived from the payload."""
    text = options.key if options.key else hashlib.sha256(payload).hexdigest()
    return int.from_bytes(hashlib.sha256(f"stegwatch-sim:{text}".encode()).digest()[:4], "big")


def simulate(method: StegoMethod, simulator: Simulator, name: str, cover: Cover, payload: bytes, options: EmbedOptions) -> StegoFile:
    """Change the cover's luminance coefficients as ``simulator`` would for ``len(payload)`` bytes."""
    data = jpeg_bytes_of(cover, options.jpeg_quality)
    image = read_dct(data)
    nzac = nonzero_ac(image.Y)
    if nzac == 0 or not payload:
        raise EmbedError(f"{method.key}: the cover has no non-zero AC coefficients")
    rate = 8 * len(payload) / nzac
    if rate > 1.0:
        raise EmbedError(f"{method.key}: {rate:.3f} bits per non-zero AC coefficient is more than 1")
    seed = simulation_seed(options, payload)
    cover_luma = image.Y.copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stego_luma = np.asarray(simulator(image, data, rate, seed)).astype(image.Y.dtype)
    unconverged = [w for w in caught if "converge" in str(w.message)]
    if unconverged:
        # The simulator could not find the costs' multiplier for this rate, so the
        # change rate would not match the label: refuse rather than mislabel.
        raise EmbedError(f"{method.key}: simulation did not converge at {rate:.3f} bpnzac ({unconverged[0].message})")
    image.jpeg.Y = stego_luma
    changes = int(np.count_nonzero(stego_luma != cover_luma))
    simulation = {
        "simulator": name,
        "payload_bpnzac": round(rate, 6),
        "seed": seed,
        "changed_coefficients": changes,
        "cover_nzac": nzac,
        "change_rate": round(changes / nzac, 6),
    }
    return StegoFile(
        data=write_dct(image), format="JPEG", embedding=method.embedding(), sidecar_extra={"simulation": simulation}
    )


def no_message(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    """A simulator writes no message, so there is nothing to extract."""
    return []


def simulated_method(key: str, simulator: Simulator, simulator_name: str, description: str) -> StegoMethod:
    """The :class:`StegoMethod` of a simulator-only DCT method (proof by change rate)."""
    from stegwatch.stego.f5 import capacity

    def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
        return simulate(method, simulator, simulator_name, cover, payload, options)

    method = StegoMethod(
        key=key,
        category="dct",
        technique=key,
        ai42=False,
        carriers=("JPEG",),
        embed=embed,
        extract=no_message,
        capacity=capacity,
        simulated=True,
        framing="none",
        description=description,
        payload_unit="bpnzac",
    )
    return method
