"""``nsf5``: no-shrinkage F5, simulated by conseal (changes only; no extractable message).

The luminance coefficients change as nsF5 with wet-paper codes would change
them at the requested rate (bits per non-zero AC coefficient). The label is
proven by change rate: the sidecar's ``simulation`` records the changed
coefficients, which a validator recounts against the cover.
"""

from __future__ import annotations

import numpy as np

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego._base import Cover, EmbedOptions, Extraction, StegoFile, StegoMethod
from stegwatch.stego._dct import DctImage
from stegwatch.stego._simulated import simulate
from stegwatch.stego.f5 import capacity

KEY = "nsf5"


def _nsf5(image: DctImage, data: bytes, rate: float, seed: int) -> np.ndarray:
    import conseal  # imported here: it compiles numba kernels on first use

    return conseal.nsF5.simulate_single_channel(y0=image.Y, alpha=rate, seed=seed)


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    return simulate(METHOD, _nsf5, "conseal.nsF5.simulate_single_channel", cover, payload, options)


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    return []  # a simulator writes no message


METHOD = StegoMethod(
    key=KEY,
    category="dct",
    technique="nsf5",
    ai42=False,
    carriers=("JPEG",),
    embed=embed,
    extract=extract,
    capacity=capacity,
    simulated=True,
    description="nsF5 (no-shrinkage F5) on luminance, simulated by conseal",
    payload_unit="bpnzac",
    framing="none",
)
