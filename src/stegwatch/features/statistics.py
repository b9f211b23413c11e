"""Classical steganalysis statistics, each a pure function of sample values.

Units and answers:

- :func:`chi_square_attack` - Westfeld-Pfitzmann: the probability (0..1) that
  the pairs of values (2k, 2k+1) were equalized by LSB replacement; near 1 for
  a fully embedded sequence, near 0 for a clean one.
- :func:`sequential_chi_square` - the same over growing prefixes, and the
  estimated embedded fraction for sequential embedding.
- :func:`sample_pair_analysis` - Dumitrescu-Wu-Wang SPA: estimated LSB
  replacement rate (fraction of samples carrying a message bit, 0..1).
- :func:`weighted_stego` - Fridrich-Goljan WS: the same estimate from a local
  predictor, weighted by local flatness.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def chi_square_attack(values: np.ndarray, *, min_expected: float = 5.0, exclude: tuple[int, ...] = ()) -> float:
    """P-value-like probability that ``values`` carry LSB-replaced data.

    Histogram of non-negative integers (or offset signed DCT values), pairs
    (2k, 2k+1); pairs whose expected count is below ``min_expected`` are
    dropped. ``exclude`` removes values (e.g. DCT 0 and 1, which JSteg skips).
    """
    values = np.asarray(values).reshape(-1)
    if exclude:
        values = values[~np.isin(values, exclude)]
    if values.size == 0:
        return 0.0
    offset = int(values.min())
    offset -= offset % 2  # keep pairs aligned on even values
    hist = np.bincount((values - offset).astype(np.int64))
    if hist.size % 2:
        hist = np.append(hist, 0)
    even, odd = hist[0::2].astype(float), hist[1::2].astype(float)
    expected = (even + odd) / 2
    keep = expected >= min_expected
    if keep.sum() < 2:
        return 0.0
    statistic = float(np.sum((even[keep] - expected[keep]) ** 2 / expected[keep]))
    return float(stats.chi2.sf(statistic, df=int(keep.sum()) - 1))


def sequential_chi_square(values: np.ndarray, *, steps: int = 20) -> tuple[np.ndarray, float]:
    """Chi-square p over prefixes of 1/steps, 2/steps, ... of ``values`` (scan order).

    Returns the p-values and the estimated embedded fraction: the longest
    prefix whose p stays above 0.5 (sequential embedding from the start).
    """
    values = np.asarray(values).reshape(-1)
    ps = np.array([chi_square_attack(values[: max(2, int(values.size * (i + 1) / steps))]) for i in range(steps)])
    above = np.flatnonzero(ps > 0.5)
    fraction = 0.0
    if above.size and above[0] == 0:
        run = 1
        while run < steps and ps[run] > 0.5:
            run += 1
        fraction = run / steps
    return ps, fraction


def sample_pair_analysis(channel: np.ndarray) -> float:
    """SPA estimate of the LSB replacement rate in one 2-D channel (horizontal pairs).

    Dumitrescu, Wu and Wang (2003): over adjacent pairs (u, v), X counts pairs
    with v even and u < v or v odd and u > v, Y the mirror case, K the pairs
    whose values share all bits but the LSB. LSB replacement moves pairs
    between X and Y at a rate that makes ``a*beta^2 + b*beta + c = 0`` with
    ``a = 2K``, ``b = 2(2X - n)``, ``c = Y - X``; the smaller root ``beta``
    is half the replacement rate. Returned clipped to [0, 1].
    """
    x = channel.astype(np.int64)
    u, v = x[:, :-1].reshape(-1), x[:, 1:].reshape(-1)
    n = u.size
    if n == 0:
        return 0.0
    v_even = (v % 2) == 0
    big_x = np.count_nonzero((v_even & (u < v)) | (~v_even & (u > v)))
    big_y = np.count_nonzero((v_even & (u > v)) | (~v_even & (u < v)))
    big_k = np.count_nonzero((u // 2) == (v // 2))
    a = 2.0 * big_k
    if a == 0:
        return 0.0
    b = 2.0 * (2 * big_x - n)
    c = float(big_y - big_x)
    disc = b * b - 4 * a * c
    if disc < 0:
        beta = -b / (2 * a)  # near full embedding the two roots meet; sampling noise can push them apart
    else:
        roots = ((-b + np.sqrt(disc)) / (2 * a), (-b - np.sqrt(disc)) / (2 * a))
        beta = min(roots, key=abs)
    return float(np.clip(2 * beta, 0.0, 1.0))


def weighted_stego(channel: np.ndarray) -> float:
    """WS estimate of the LSB replacement rate in one 2-D channel.

    Predictor: mean of the four neighbours; weights 1 / (5 + local variance),
    normalized. Border pixels are left out.
    """
    x = channel.astype(np.float64)
    if x.shape[0] < 3 or x.shape[1] < 3:
        return 0.0
    centre = x[1:-1, 1:-1]
    neighbours = np.stack([x[:-2, 1:-1], x[2:, 1:-1], x[1:-1, :-2], x[1:-1, 2:]])
    predicted = neighbours.mean(axis=0)
    variance = neighbours.var(axis=0)
    weights = 1.0 / (5.0 + variance)
    weights /= weights.sum()
    flipped = centre + 1 - 2 * (centre % 2)  # LSB flipped
    estimate = 2.0 * np.sum(weights * (centre - flipped) * (centre - predicted))
    return float(np.clip(estimate, 0.0, 1.0))


def lsb_flat_inconsistency(plane: np.ndarray) -> float:
    """Where the upper 7 bits of a value equal its right neighbour's, how often do the LSBs differ?

    Near 0 for flat alpha masks and flat palette regions, near 0.5 where bits were written in.
    """
    x = plane.astype(np.int64)
    left, right = x[:, :-1], x[:, 1:]
    same_upper = (left >> 1) == (right >> 1)
    if not same_upper.any():
        return 0.0
    return float(np.mean((left[same_upper] & 1) != (right[same_upper] & 1)))


def byte_entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte (0..8)."""
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256).astype(float)
    p = counts[counts > 0] / len(data)
    return float(-(p * np.log2(p)).sum())
