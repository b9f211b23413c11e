"""The field's rich steganalysis features, vectorized: SPAM, DCTR and an SRM subset.

Each family is the published feature set, computed so that it equals the
reference implementation in ``sealwatch`` (uibk-uncover; the same
definitions, the same value order) within 1e-6 and is much faster:
``tests/test_rich_features.py`` checks every family against outputs that
``scripts/sealwatch_fixtures.py`` recorded from sealwatch itself, and
``benchmarks/rich_features.py`` measures both side by side.

- :func:`spam`: second-order SPAM, 686 values from a uint8 grayscale image
  (Pevny, Bas and Fridrich, "Steganalysis by Subtractive Pixel Adjacency
  Matrix", IEEE TIFS 5(2), 2010, doi:10.1109/TIFS.2010.2045842).
- :func:`dctr`: DCTR, 8,000 values from a JPEG's decompressed luminance and
  its quality factor (Holub and Fridrich, "Low-Complexity Features for JPEG
  Steganalysis Using Undecimated DCT", IEEE TIFS 10(2), 2015,
  doi:10.1109/TIFS.2014.2364918). :func:`decompressed_luminance` gives the
  luminance the way the reference reads it (dequantized, inverse DCT, no
  rounding or clipping).

Where the reference divides by zero (an image too small to hold one
co-occurrence), these functions return zeros for the affected values instead
of NaN.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

#: SPAM's truncation threshold: differences are clipped to [-T, T].
SPAM_T = 3
#: DCTR's truncation threshold: quantized magnitudes are clipped to [0, T].
DCTR_T = 4


def _normalized(counts: np.ndarray) -> np.ndarray:
    """``counts / counts.sum()``, or zeros where there is nothing to count."""
    total = counts.sum()
    return counts / total if total else np.zeros(counts.shape)


# --------------------------------------------------------------------------------------------- SPAM


def _spam_cooccurrence(first: np.ndarray, middle: np.ndarray, last: np.ndarray, t: int) -> np.ndarray:
    """Counts of (first, middle, last) difference triples, each clipped to [-t, t]: a (2t+1)^3 array."""
    side = 2 * t + 1
    index = (first + t) + side * (middle + t) + side * side * (last + t)
    return np.bincount(index.reshape(-1), minlength=side ** 3).reshape(side, side, side, order="F").astype(float)


def _reversed_negated(counts: np.ndarray) -> np.ndarray:
    """The co-occurrence of the same differences read the other way: (l, c, r) -> (-r, -c, -l)."""
    return counts[::-1, ::-1, ::-1].transpose(2, 1, 0)


def spam(gray: np.ndarray, *, truncation: int = SPAM_T) -> np.ndarray:
    """Second-order SPAM features of a grayscale image.

    Pixel differences along eight directions (horizontal, vertical and both
    diagonals, each way), clipped to [-T, T]; the normalized co-occurrence
    of three successive differences (a second-order Markov model), averaged
    over the four straight and over the four diagonal directions.

    Parameters
    ----------
    gray : (H, W) uint8 array
    truncation : T (3 in the published 686-feature set)

    Returns
    -------
    float64 array of 2 (2T+1)^3 values (686 for T=3): ``straight`` then
    ``diagonal``, each a (2T+1)^3 co-occurrence flattened first index
    fastest, as ``sealwatch.spam.extract``.
    """
    x = np.asarray(gray)
    if x.ndim != 2:
        raise ValueError(f"spam needs a 2-D grayscale image, got shape {x.shape}")
    t = int(truncation)
    x = x.astype(np.int16)  # differences of 8-bit values fit
    clip = functools.partial(np.clip, a_min=-t, a_max=t)
    # D[p] = x[p] - x[p + step]; the reference's "L, C, R" read D at p + 2 step, p + step, p.
    horizontal = clip(x[:, :-1] - x[:, 1:]).astype(np.intp)
    vertical = clip(x[:-1, :] - x[1:, :]).astype(np.intp)
    diagonal = clip(x[:-1, :-1] - x[1:, 1:]).astype(np.intp)
    minor = clip(x[1:, :-1] - x[:-1, 1:]).astype(np.intp)
    mh = _spam_cooccurrence(horizontal[:, 2:], horizontal[:, 1:-1], horizontal[:, :-2], t)
    mv = _spam_cooccurrence(vertical[2:, :], vertical[1:-1, :], vertical[:-2, :], t)
    md = _spam_cooccurrence(diagonal[2:, 2:], diagonal[1:-1, 1:-1], diagonal[:-2, :-2], t)
    mm = _spam_cooccurrence(minor[:-2, 2:], minor[1:-1, 1:-1], minor[2:, :-2], t)
    # The opposite direction of each is the same triples read backwards with negated differences;
    # the sum order is the reference's, so the values agree to the last bit.
    straight = (_normalized(mh) + _normalized(_reversed_negated(mh)) + _normalized(mv)
                + _normalized(_reversed_negated(mv))) / 4
    diagonals = (_normalized(md) + _normalized(_reversed_negated(md)) + _normalized(mm)
                 + _normalized(_reversed_negated(mm))) / 4
    return np.concatenate([straight.reshape(-1, order="F"), diagonals.reshape(-1, order="F")])


def spam_names(*, truncation: int = SPAM_T) -> list[str]:
    """``spam.<straight|diagonal>_<l>_<c>_<r>`` for every value of :func:`spam`, in order (differences in [-T, T])."""
    t = int(truncation)
    values = range(-t, t + 1)
    return [f"spam.{group}_{first}_{middle}_{last}" for group in ("straight", "diagonal")
            for last in values for middle in values for first in values]


# --------------------------------------------------------------------------------------------- DCTR


@functools.cache
def _dct_matrix() -> np.ndarray:
    """The orthonormal 8x8 DCT-II matrix: row u is the u-th basis vector."""
    column, row = np.meshgrid(range(8), range(8))
    matrix = 0.5 * np.cos(np.pi * (2 * column + 1) * row / (2 * 8))
    matrix[0, :] = matrix[0, :] / np.sqrt(2)
    matrix.setflags(write=False)
    return matrix


def decompressed_luminance(jpeg) -> np.ndarray:
    """A JPEG's luminance as the DCT domain gives it: dequantized, inverse DCT, +128, not rounded or clipped.

    Parameters
    ----------
    jpeg : a path to a JPEG file, or a ``jpeglib.DCTJPEG`` (from ``jpeglib.read_dct``)

    Returns
    -------
    (height, width) float64 array, values about [0, 255] (some outside it).
    """
    if isinstance(jpeg, (str, Path)):
        import jpeglib

        jpeg = jpeglib.read_dct(str(jpeg))
    qt = jpeg.get_component_qt(0)
    coefficients = jpeg.Y * qt[None, None, :, :]
    dct = _dct_matrix()
    blocks = dct.T[None, None, :, :] @ coefficients @ dct[None, None, :, :]
    rows, columns = blocks.shape[:2]
    spatial = blocks.transpose(0, 2, 1, 3).reshape(rows * 8, columns * 8)
    spatial += 128
    return spatial[: jpeg.height, : jpeg.width]


def dctr_quantization_step(quality: int) -> float:
    """DCTR's quantization step q for a JPEG quality factor (the paper's Eq. 10; about 8 at quality 50)."""
    if quality < 50:
        return min(8 * (50 / quality), 100)
    return max(8 * (2 - (quality / 50)), 0.2)


@functools.cache
def _dctr_groups() -> tuple[tuple[tuple[int, int], ...], ...]:
    """The 25 sets of 8x8 phases whose histograms DCTR merges (the paper's Table 1), in the reference's order."""
    groups = []
    for i in range(5):
        for j in range(5):
            phases = ((i, j), (i, 8 - j), (8 - i, j), (8 - i, 8 - j))
            groups.append(tuple(dict.fromkeys(p for p in phases if p[0] < 8 and p[1] < 8)))
    return tuple(groups)


@functools.cache
def _dctr_merge_matrix() -> np.ndarray:
    """(64 phases, 25 groups) 0/1 matrix: which phase's histogram goes into which merged histogram."""
    merge = np.zeros((64, len(_dctr_groups())))
    for group, phases in enumerate(_dctr_groups()):
        for row, column in phases:
            merge[row * 8 + column, group] = 1
    merge.setflags(write=False)
    return merge


def _matlab_rounds_up(a: np.float64) -> bool:
    """Whether the reference's MATLAB-style rounding takes ``a >= 0`` up: fraction >= 0.5, or within np.isclose of it."""
    fraction = a - np.floor(a)
    return bool((fraction >= 0.5) | np.isclose(fraction, 0.5))


def _smallest_float(low: float, high: float, passes) -> float:
    """The smallest non-negative float in (low, high] for which ``passes`` holds (``passes`` monotone, true at high)."""
    as_bits = lambda value: np.array(value, dtype=np.float64).view(np.int64).item()  # noqa: E731
    as_float = lambda bits: np.array(bits, dtype=np.int64).view(np.float64)[()]  # noqa: E731
    low_bits, high_bits = as_bits(low), as_bits(high)  # non-negative floats order like their bit patterns
    while high_bits - low_bits > 1:
        middle = (low_bits + high_bits) // 2
        if passes(as_float(middle)):
            high_bits = middle
        else:
            low_bits = middle
    return as_float(high_bits)


@functools.cache
def _dctr_thresholds(q: float, truncation: int) -> np.ndarray:
    """For k = 1..T the smallest float r >= 0 for which the reference bins ``|r| / q`` at k or above.

    The reference divides by q, rounds half away from zero, and also rounds
    up a fractional part within ``np.isclose`` of 0.5 (about 5e-6 below it).
    Both steps are monotone in r, so comparing the response itself with
    these thresholds gives the same bins without a division.
    """
    thresholds = []
    for k in range(1, truncation + 1):
        quotient = _smallest_float(k - 1, k - 0.5, _matlab_rounds_up)
        thresholds.append(_smallest_float(0.0, (k + 1) * q, lambda r, quotient=quotient: r / q >= quotient))
    return np.asarray(thresholds)


def _undecimated_dct(x: np.ndarray) -> np.ndarray:
    """(8, H-7, W-7, 8): x convolved ('valid') with each 8x8 DCT basis pattern; mode (u, v) is ``[u, :, :, v]``."""
    # Convolution flips the kernel; the 2-D basis is separable, so filter columns, then rows (each a small GEMM).
    flipped = _dct_matrix()[:, ::-1]
    columns = np.lib.stride_tricks.sliding_window_view(x, 8, axis=0)  # (H-7, W, 8)
    stage = np.ascontiguousarray(columns) @ flipped.T  # (H-7, W, u)
    stage = np.ascontiguousarray(stage.transpose(2, 0, 1))  # (u, H-7, W)
    rows = np.lib.stride_tricks.sliding_window_view(stage, 8, axis=2)  # (u, H-7, W-7, 8)
    return np.ascontiguousarray(rows) @ flipped.T  # (u, H-7, W-7, v)


def dctr(luminance: np.ndarray, quality: int, *, truncation: int = DCTR_T, chunk_rows: int = 16) -> np.ndarray:
    """DCTR features of a JPEG's decompressed luminance.

    The luminance (level-shifted by -128) is convolved with each of the 64
    8x8 DCT basis patterns (an undecimated DCT); every response is divided
    by the quantization step q (:func:`dctr_quantization_step`), rounded
    half away from zero, taken in absolute value and clipped to T. For each
    mode, the histograms of the 64 positions relative to the 8x8 grid are
    merged into 25 by the DCT's symmetries and normalized.

    Parameters
    ----------
    luminance : (H, W) array of the decompressed luminance in [0, 255]
        (:func:`decompressed_luminance`; float64, not rounded, to equal the reference)
    quality : the JPEG quality factor (sets q)
    truncation : T (4 in the published 8,000-feature set)
    chunk_rows : rows of responses computed at once (a multiple of 8; small chunks stay in cache and bound memory)

    Returns
    -------
    float64 array of 64 x 25 x (T+1) values (8,000 for T=4): for each mode
    (row-major), for each merged histogram, the fractions of magnitudes
    0..T, as ``sealwatch.dctr.extract_from_file``.
    """
    x = np.asarray(luminance, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"dctr needs a 2-D luminance array, got shape {x.shape}")
    q = dctr_quantization_step(quality)
    t = int(truncation)
    x = x - 128
    bins = t + 1
    thresholds = _dctr_thresholds(q, t)
    counts = np.zeros(64 * 64 * bins)  # (mode, phase, bin)
    out_rows, out_columns = x.shape[0] - 7, x.shape[1] - 7
    if out_rows > 0 and out_columns > 0:
        step = max(8, chunk_rows // 8 * 8)  # chunks start on the 8x8 grid, so every chunk has the same phases
        rows = min(step, out_rows)
        # Where each response's count goes: (mode, phase of its position on the 8x8 grid) -> first bin.
        phase = (np.arange(rows) % 8)[:, None] * 8 + (np.arange(out_columns) % 8)[None, :]
        mode = np.arange(8)[:, None, None, None] * 8 + np.arange(8)[None, None, None, :]  # (u, ., ., v)
        offsets = (mode * 64 + phase[None, :, :, None]) * bins  # in the responses' (u, row, column, v) layout
        binned = np.empty((8, rows, out_columns, 8), dtype=np.uint8)
        above = np.empty_like(binned, dtype=bool)
        for start in range(0, out_rows, step):
            stop = min(out_rows, start + step)
            size = stop - start
            magnitude = _undecimated_dct(x[start:stop + 7])
            np.abs(magnitude, out=magnitude)
            part, part_above = binned[:, :size], above[:, :size]
            np.greater_equal(magnitude, thresholds[0], out=part_above)
            part[...] = part_above
            for threshold in thresholds[1:]:
                np.greater_equal(magnitude, threshold, out=part_above)
                part += part_above
            index = np.add(part, offsets[:, :size], dtype=np.intp)
            counts += np.bincount(index.reshape(-1), minlength=counts.size)
    counts = counts.reshape(64, 64, bins)
    merged = np.einsum("mpb,pg->mgb", counts, _dctr_merge_matrix())  # (mode, group, bin)
    totals = merged.sum(axis=2, keepdims=True)
    features = np.divide(merged, totals, out=np.zeros_like(merged), where=totals > 0)
    return features.reshape(-1)


def dctr_names(*, truncation: int = DCTR_T) -> list[str]:
    """``dctr.<mode>_<group>_<bin>`` for every value of :func:`dctr`, in order (mode 0..63 row-major, group 0..24)."""
    return [f"dctr.{mode}_{group}_{b}" for mode in range(64) for group in range(len(_dctr_groups()))
            for b in range(int(truncation) + 1)]
