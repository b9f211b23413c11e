"""``nsf5``: no-shrinkage F5, simulated by conseal (changes only; no extractable message).

The luminance coefficients change as nsF5 with wet-paper codes would change
them at the requested rate (bits per non-zero AC coefficient). The label is
proven by change rate: the sidecar's ``simulation`` records the changed
coefficients, which a validator recounts against the cover.
"""

from __future__ import annotations

import numpy as np

from stegwatch.stego.dct import DctImage
from stegwatch.stego._simulated import simulated_method

KEY = "nsf5"


def _nsf5(image: DctImage, data: bytes, rate: float, seed: int) -> np.ndarray:
    import conseal  # imported here: it compiles numba kernels on first use

    return conseal.nsF5.simulate_single_channel(y0=image.Y, alpha=rate, seed=seed)


METHOD = simulated_method(
    KEY, _nsf5, "conseal.nsF5.simulate_single_channel", "nsF5 (no-shrinkage F5) on luminance, simulated by conseal"
)
embed, extract, capacity = METHOD.embed, METHOD.extract, METHOD.capacity
