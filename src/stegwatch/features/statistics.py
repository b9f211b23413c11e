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
from scipy import special


def chi_square_from_histogram(hist: np.ndarray, *, min_expected: float = 5.0) -> float:
    """The chi-square attack's probability from a histogram whose index 0 is an even value.

    Pairs (2k, 2k+1); pairs whose expected count is below ``min_expected`` are
    dropped, so leading or trailing empty bins change nothing.
    """
    hist = np.asarray(hist)
    if hist.size % 2:
        hist = np.append(hist, 0)
    even, odd = hist[0::2].astype(float), hist[1::2].astype(float)
    expected = (even + odd) / 2
    keep = expected >= min_expected
    kept = int(np.count_nonzero(keep))
    if kept < 2:
        return 0.0
    statistic = float(np.sum((even[keep] - expected[keep]) ** 2 / expected[keep]))
    return float(special.chdtrc(kept - 1, statistic))  # the chi-square survival function


def chi_square_attack(values: np.ndarray, *, min_expected: float = 5.0, exclude: tuple[int, ...] = ()) -> float:
    """P-value-like probability that ``values`` carry LSB-replaced data.

    Histogram of non-negative integers (or offset signed DCT values), pairs
    (2k, 2k+1); pairs whose expected count is below ``min_expected`` are
    dropped. ``exclude`` removes values (e.g. DCT 0 and 1, which JSteg skips).
    """
    values = np.asarray(values).reshape(-1)
    if exclude:
        keep = np.ones(values.shape, dtype=bool)
        for value in exclude:
            keep &= values != value
        values = values[keep]
    if values.size == 0:
        return 0.0
    if values.dtype == np.uint8:
        return chi_square_from_histogram(np.bincount(values, minlength=256), min_expected=min_expected)
    offset = int(values.min())
    offset -= offset % 2  # keep pairs aligned on even values
    shifted = values.astype(np.int64)  # widened once, then shifted in place: one full-size copy, not three
    shifted -= offset
    return chi_square_from_histogram(np.bincount(shifted), min_expected=min_expected)


def prefix_bounds(size: int, steps: int) -> list[int]:
    """Ends of the prefixes 1/steps, 2/steps, ... of a sequence of ``size`` values."""
    return [max(2, int(size * (i + 1) / steps)) for i in range(steps)]


def sequential_chi_square(values: np.ndarray, *, steps: int = 20) -> tuple[np.ndarray, float]:
    """Chi-square p over prefixes of 1/steps, 2/steps, ... of ``values`` (scan order).

    Returns the p-values and the estimated embedded fraction: the longest
    prefix whose p stays above 0.5 (sequential embedding from the start).
    Each value is counted once: the prefixes' histograms are running sums of
    the histograms of the slices between their ends.
    """
    values = np.asarray(values).reshape(-1)
    if values.dtype == np.uint8:
        ps = np.asarray([chi_square_from_histogram(hist) for hist in prefix_histograms(values, prefix_bounds(values.size, steps))])
    else:
        ps = np.array([chi_square_attack(values[:end]) for end in prefix_bounds(values.size, steps)])
    return ps, embedded_fraction(ps)


def prefix_histograms(values: np.ndarray, ends: list[int]) -> np.ndarray:
    """256-bin histograms of ``values[:end]`` for each (non-decreasing) end, as rows."""
    hists = np.zeros((len(ends), 256), dtype=np.int64)
    start, running = 0, np.zeros(256, dtype=np.int64)
    for row, end in enumerate(ends):
        if end > start:
            running = running + np.bincount(values[start:end], minlength=256)
            start = end
        hists[row] = running
    return hists


def embedded_fraction(ps: np.ndarray) -> float:
    """The fraction of prefixes, from the first, whose chi-square p stays above 0.5 (0 if the first does not)."""
    steps = len(ps)
    if not steps or ps[0] <= 0.5:
        return 0.0
    run = 1
    while run < steps and ps[run] > 0.5:
        run += 1
    return run / steps


def sample_pair_analysis(channel: np.ndarray) -> float:
    """SPA estimate of the LSB replacement rate in one 2-D channel (horizontal pairs).

    Dumitrescu, Wu and Wang (2003): over adjacent pairs (u, v), X counts pairs
    with v even and u < v or v odd and u > v, Y the mirror case, K the pairs
    whose values share all bits but the LSB. LSB replacement moves pairs
    between X and Y at a rate that makes ``a*beta^2 + b*beta + c = 0`` with
    ``a = 2K``, ``b = 2(2X - n)``, ``c = Y - X``; the smaller root ``beta``
    is half the replacement rate. Returned clipped to [0, 1].
    """
    x = np.asarray(channel)
    x = x.astype(np.int16 if x.dtype == np.uint8 else np.int64)
    u, v = x[:, :-1], x[:, 1:]
    n = u.size
    if n == 0:
        return 0.0
    difference = u - v
    # X: v even and u < v, or v odd and u > v: the difference signed by v's parity is negative.
    # Y is the mirror, so X + Y counts the pairs with u != v. K: u and v differ only in the LSB.
    big_x = np.count_nonzero(difference * (1 - 2 * (v & 1)) < 0)
    big_y = np.count_nonzero(difference) - big_x
    big_k = np.count_nonzero(((u ^ v) >> 1) == 0)
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

    Computed in integers where it can be: with neighbour sum ``s`` and sum of
    squares ``q``, the prediction error is ``(4 * centre - s) / 4`` and the
    variance ``(4 * q - s * s) / 16``, both exact in floating point, so the
    result equals the textbook float computation bit for bit.
    """
    x = np.asarray(channel)
    height, width = x.shape
    if height < 3 or width < 3:
        return 0.0
    weights, signed_error = np.empty((height - 2, width - 2)), np.empty((height - 2, width - 2))
    for row in range(0, height - 2, _WS_BLOCK_ROWS):  # blocks of rows keep the temporaries in cache
        block = x[row: row + _WS_BLOCK_ROWS + 2].astype(np.int32)
        up, down, left, right = block[:-2, 1:-1], block[2:, 1:-1], block[1:-1, :-2], block[1:-1, 2:]
        centre = block[1:-1, 1:-1]
        total = up + down + left + right
        squares = up * up + down * down + left * left + right * right
        np.divide(1.0, 5.0 + (4 * squares - total * total) / 16.0, out=weights[row: row + _WS_BLOCK_ROWS])
        # (centre - flipped LSB) is +1 for odd centres and -1 for even ones.
        np.divide((2 * (centre & 1) - 1) * (4 * centre - total), 4.0, out=signed_error[row: row + _WS_BLOCK_ROWS])
    weights /= weights.sum()
    # The product in place: the same values summed the same way, without a third full-size array.
    estimate = 2.0 * np.sum(np.multiply(weights, signed_error, out=signed_error))
    return float(np.clip(estimate, 0.0, 1.0))


_WS_BLOCK_ROWS = 32


def lsb_flat_inconsistency(plane: np.ndarray) -> float:
    """Where the upper 7 bits of a value equal its right neighbour's, how often do the LSBs differ?

    Near 0 for flat alpha masks and flat palette regions, near 0.5 where bits were written in.
    """
    x = np.asarray(plane)
    if x.dtype != np.uint8:  # 8-bit planes need no widening: the comparisons are exact in uint8
        x = x.astype(np.int64)
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
