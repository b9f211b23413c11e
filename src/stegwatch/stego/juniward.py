"""``juniward``: J-UNIWARD, simulated by conseal (changes only; no extractable message).

The hard, modern case: content-adaptive costs from a wavelet decomposition of
the decompressed luminance, changes simulated at the requested rate. Image
sides must be multiples of 8 (the cost is computed on the pixel grid of the
coefficient blocks). Proven by change rate, like ``nsf5``.
"""

from __future__ import annotations

import numpy as np

from stegwatch.stego.base import EmbedError
from stegwatch.stego.dct import DctImage, read_luma_spatial
from stegwatch.stego._simulated import simulated_method

KEY = "juniward"


def _juniward(image: DctImage, data: bytes, rate: float, seed: int) -> np.ndarray:
    import conseal  # imported here: it compiles numba kernels on first use

    spatial = read_luma_spatial(data)
    rows, cols = image.Y.shape[0] * 8, image.Y.shape[1] * 8
    if spatial.shape != (rows, cols):
        raise EmbedError(f"juniward: image sides must be multiples of 8 (got {spatial.shape[1]}x{spatial.shape[0]})")
    return conseal.juniward.simulate_single_channel(x0=spatial, y0=image.Y, qt=image.luma_qt, alpha=rate, seed=seed)


METHOD = simulated_method(
    KEY, _juniward, "conseal.juniward.simulate_single_channel", "J-UNIWARD on luminance, simulated by conseal"
)
embed, extract, capacity = METHOD.embed, METHOD.extract, METHOD.capacity
