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
- :func:`srmq1`: the first- and second-order submodels of SRMQ1, 5,551 of
  its 12,753 values, from a uint8 grayscale image (Fridrich and Kodovsky,
  "Rich Models for Steganalysis of Digital Images", IEEE TIFS 7(3), 2012,
  doi:10.1109/TIFS.2012.2190402); float32 like the reference.

SPAM equals sealwatch's default (Python) backend; its opt-in Rust backend
differs from that one by up to 1e-4 on images that are not square.

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


def _spam_cooccurrence(first: np.ndarray, middle: np.ndarray, last: np.ndarray, side: int) -> np.ndarray:
    """Counts of (first, middle, last) codes, each in [0, side): a side^3 array indexed [first, middle, last]."""
    index = last * (side * side)  # int16 holds the index (side^3 - 1) for T <= 15
    index += middle * side
    index += first
    return np.bincount(index.reshape(-1), minlength=side ** 3).reshape(side, side, side, order="F")


def spam(gray: np.ndarray, *, truncation: int = SPAM_T) -> np.ndarray:
    """Second-order SPAM features of a grayscale image.

    Pixel differences along eight directions (horizontal, vertical and both
    diagonals, each way), clipped to [-T, T]; the normalized co-occurrence
    of three successive differences (a second-order Markov model), averaged
    over the four straight and over the four diagonal directions.

    Parameters
    ----------
    gray : (H, W) uint8 array
    truncation : T (3 in the published 686-feature set; at most 15)

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
    side = 2 * t + 1
    x = x.astype(np.int16)  # differences of 8-bit values, and the co-occurrence index, fit

    def codes(difference: np.ndarray) -> np.ndarray:  # a difference clipped to [-t, t], shifted to [0, 2t]
        np.clip(difference, -t, t, out=difference)
        difference += t
        return difference

    # D[p] = x[p] - x[p + step]; the reference's "L, C, R" read D at p + 2 step, p + step, p.
    horizontal = codes(x[:, :-1] - x[:, 1:])
    vertical = codes(x[:-1, :] - x[1:, :])
    diagonal = codes(x[:-1, :-1] - x[1:, 1:])
    minor = codes(x[1:, :-1] - x[:-1, 1:])
    counts = np.stack([
        _spam_cooccurrence(horizontal[:, 2:], horizontal[:, 1:-1], horizontal[:, :-2], side),
        _spam_cooccurrence(vertical[2:, :], vertical[1:-1, :], vertical[:-2, :], side),
        _spam_cooccurrence(diagonal[2:, 2:], diagonal[1:-1, 1:-1], diagonal[:-2, :-2], side),
        _spam_cooccurrence(minor[:-2, 2:], minor[1:-1, 1:-1], minor[2:, :-2], side),
    ]).astype(float)
    totals = counts.sum(axis=(1, 2, 3), keepdims=True)
    normalized = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    # The opposite direction of each is the same triples read backwards with negated differences:
    # (l, c, r) -> (-r, -c, -l). The sum order is the reference's, so the values agree to the last bit.
    opposite = normalized[:, ::-1, ::-1, ::-1].transpose(0, 3, 2, 1)
    straight = (normalized[0] + opposite[0] + normalized[1] + opposite[1]) / 4
    diagonals = (normalized[2] + opposite[2] + normalized[3] + opposite[3]) / 4
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
    jpeg : a path to a JPEG file, the file's bytes, a :class:`stegwatch.stego.dct.DctImage`, or a
        ``jpeglib.DCTJPEG`` (from ``jpeglib.read_dct``)

    Returns
    -------
    (height, width) float64 array, values about [0, 255] (some outside it).
    """
    if isinstance(jpeg, (bytes, bytearray, memoryview)):
        from stegwatch.stego.dct import read_dct

        jpeg = read_dct(bytes(jpeg))
    elif isinstance(jpeg, (str, Path)):
        import jpeglib

        jpeg = jpeglib.read_dct(str(jpeg))
    jpeg = getattr(jpeg, "jpeg", jpeg)  # a DctImage holds the jpeglib object
    qt = jpeg.get_component_qt(0)
    dct = _dct_matrix()
    rows, columns = jpeg.Y.shape[:2]
    spatial = np.empty((rows * 8, columns * 8))
    # A few block rows at a time: the float64 temporaries stay small on the largest image (each block's product is
    # the same whatever the chunk).
    step = max(1, (1 << 16) // max(1, columns))
    for start in range(0, rows, step):
        coefficients = jpeg.Y[start:start + step] * qt[None, None, :, :]
        blocks = dct.T[None, None, :, :] @ coefficients @ dct[None, None, :, :]
        spatial[start * 8:(start + len(blocks)) * 8] = blocks.transpose(0, 2, 1, 3).reshape(-1, columns * 8)
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
    """Whether the reference's MATLAB-style rounding takes ``a >= 0`` up: fraction >= 0.5, or np.isclose to it."""
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


def dctr(luminance: np.ndarray, quality: int, *, truncation: int = DCTR_T, chunk_rows: int | None = None) -> np.ndarray:
    """DCTR features of a JPEG's decompressed luminance.

    The luminance (level-shifted by -128) is convolved with each of the 64
    8x8 DCT basis patterns (an undecimated DCT); every response is divided
    by the quantization step q (:func:`dctr_quantization_step`), rounded
    half away from zero, taken in absolute value and clipped to T. For each
    mode, the histograms of the 64 positions relative to the 8x8 grid are
    merged into 25 by the DCT's symmetries and normalized.

    How it is computed: the response of every mode at a window is, up to its
    sign, the 8x8 block DCT of that window (convolution flips the basis, which
    changes only the sign). So for each of the 64 phases (a, b) of the grid,
    the windows at that phase are the blocks of the image shifted by (a, b),
    and one block DCT (two small matrix products, reading the image through
    reshaped views) gives every mode's response there. Their histograms are
    counts over blocks: for each threshold, the blocks at or above it,
    summed eight 0/1 bytes at a time in 64-bit words (at most 255 blocks per
    sum, so no byte carries into the next).

    Parameters
    ----------
    luminance : (H, W) array of the decompressed luminance in [0, 255]
        (:func:`decompressed_luminance`; float64, not rounded, to equal the reference)
    quality : the JPEG (IJG) quality factor, which sets q; for a file of unknown quality,
        :func:`stegwatch.stego.dct.ijg_quality` of its luminance table
    truncation : T (4 in the published 8,000-feature set)
    chunk_rows : image rows transformed at once (rounded down to a multiple of 8); by default as many as hold
        :data:`DCTR_CHUNK_PIXELS` pixels, which bounds the temporaries on the largest images (about 8 MiB)

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
    thresholds = _dctr_thresholds(q, t)
    dct = _dct_matrix()
    height, width = x.shape
    # at_least[a, b, k, v, u]: responses of mode (u, v) at grid phase (a, b) whose magnitude reaches bin k + 1.
    at_least = np.zeros((8, 8, t, 8, 8), dtype=np.int64)
    positions = np.zeros((8, 8), dtype=np.int64)
    levels = thresholds[:, None, None, None]
    if chunk_rows is None:
        chunk_rows = DCTR_CHUNK_PIXELS // max(1, width)
    step = max(1, chunk_rows // 8)  # block rows per chunk
    for a in range(8):
        blocks_down = (height - a) // 8
        for first in range(0, blocks_down, step):
            m = min(step, blocks_down - first)
            top = a + 8 * first
            strip = (x[top:top + 8 * m] - 128).reshape(m, 8, width)
            # Column transform of every block row, then laid out (column, block row * u) for the row transform.
            columns = np.ascontiguousarray((dct @ strip).reshape(m * 8, width).T)
            reached = np.zeros((8, t, 8 * m * 8), dtype=np.int64)  # (b, k, v * block row * u)
            for b in range(8):
                blocks_across = (width - b) // 8
                for left in range(0, blocks_across, _MAX_BYTE_SUM):
                    n = min(_MAX_BYTE_SUM, blocks_across - left)
                    start = b + 8 * left
                    magnitude = dct @ columns[start:start + 8 * n].reshape(n, 8, m * 8)  # (block, v, block row * u)
                    np.abs(magnitude, out=magnitude)
                    above = magnitude >= levels  # (k, block, v, row * u)
                    reached[b] += above.reshape(t, n, -1).view(np.uint64).sum(axis=1).view(np.uint8)
                    positions[a, b] += n * m
            at_least[a] += reached.reshape(8, t, 8, m, 8).sum(axis=3)
    # Histogram bins from the cumulative counts: bin 0 is below the first threshold, bin T at or above the last.
    upper = np.concatenate([np.broadcast_to(positions[:, :, None, None, None], (8, 8, 1, 8, 8)), at_least], axis=2)
    lower = np.concatenate([at_least, np.zeros((8, 8, 1, 8, 8), dtype=np.int64)], axis=2)
    counts = (upper - lower).transpose(4, 3, 0, 1, 2).reshape(64, 64, t + 1)  # (mode u*8+v, phase a*8+b, bin)
    merged = np.einsum("mpb,pg->mgb", counts.astype(np.float64), _dctr_merge_matrix())  # (mode, group, bin)
    totals = merged.sum(axis=2, keepdims=True)
    features = np.divide(merged, totals, out=np.zeros_like(merged), where=totals > 0)
    return features.reshape(-1)


#: Blocks whose 0/1 bytes are summed in one pass: a byte holds at most 255.
_MAX_BYTE_SUM = 255
#: Pixels :func:`dctr` transforms at once by default: a whole image up to 512x512, 64 rows of a 4096-wide one.
DCTR_CHUNK_PIXELS = 1 << 18


def dctr_names(*, truncation: int = DCTR_T) -> list[str]:
    """``dctr.<mode>_<group>_<bin>`` for every value of :func:`dctr`, in order (mode 0..63 row-major, group 0..24)."""
    return [f"dctr.{mode}_{group}_{b}" for mode in range(64) for group in range(len(_dctr_groups()))
            for b in range(int(truncation) + 1)]


# ------------------------------------------------------------------------------- SRMQ1 (first and second order)

#: SRM's truncation threshold for residual co-occurrences (quantized residuals are clipped to [-T, T]).
SRM_T = 2
_SRM_SIDE = 2 * SRM_T + 1


def _matlab_round_integer(residual: np.ndarray, q: int) -> np.ndarray:
    """MATLAB's round(residual / q) (half away from zero) for integer residuals and an integer step q."""
    if q == 1:
        return residual
    magnitude = (2 * np.abs(residual) + q) // (2 * q)
    return np.where(residual < 0, -magnitude, magnitude)


def _srm_codes(residual: np.ndarray, q: int) -> np.ndarray:
    """A residual quantized by q, clipped to [-T, T] and shifted to [0, 2T] (int16)."""
    codes = np.clip(_matlab_round_integer(residual, q), -SRM_T, SRM_T).astype(np.int16)  # the index (< 5^4) fits
    codes += SRM_T
    return codes


def _cooccurrence4_counts(codes: np.ndarray, axis: int) -> np.ndarray:
    """Counts of four successive codes along ``axis`` (1: horizontal, 0: vertical), indexed first code fastest."""
    side = _SRM_SIDE
    n = codes.shape[axis]

    def shifted(k: int) -> np.ndarray:  # codes k steps along the axis, for every start of four
        window = slice(k, max(k, n - 3 + k))
        return codes[:, window] if axis == 1 else codes[window, :]

    index = shifted(3) * (side ** 3)  # int16: below 5^4
    index += shifted(2) * (side ** 2)
    index += shifted(1) * side
    index += shifted(0)
    return np.bincount(index.reshape(-1), minlength=side ** 4)


def _srm_submodel(horizontal: list[np.ndarray], vertical: list[np.ndarray]) -> np.ndarray:
    """A (min or max, or spam) co-occurrence: the normalized horizontal one of ``horizontal`` plus the vertical
    one of ``vertical`` (each normalized over its whole stack), as float32 like the reference stores it."""
    terms = []
    for arrays, axis in ((horizontal, 1), (vertical, 0)):
        counts = sum(_cooccurrence4_counts(a, axis) for a in arrays)
        terms.append(_normalized(counts))
    return (terms[0] + terms[1]).astype(np.float32)


@functools.cache
def _symmetrization_indices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index maps into a flattened (first code fastest) 5^4 co-occurrence, with side^4 meaning "nothing" (a zero).

    Returns ``(minmax_first, minmax_second)`` for min/max submodels
    (directional symmetry: a bin merged with its reversed bin) and
    ``spam`` (4, n) for SPAM-like submodels (sign and directional symmetry:
    a bin, its negation, its reversal and the reversal's negation, added in
    that order), both in the reference's bin order.
    """
    t, side = SRM_T, _SRM_SIDE
    nothing = side ** 4

    def flat(i, j, k, n):  # the position of bin [i, j, k, n] (values in [-t, t]) in the flattened array
        return (i + t) + side * (j + t) + side ** 2 * (k + t) + side ** 3 * (n + t)

    values = range(-t, t + 1)
    first, second, done = [], [], set()
    for i in values:
        for j in values:
            for k in values:
                for n in values:
                    if i != n or j != k:
                        if (i, j, k, n) not in done:
                            first.append(flat(i, j, k, n))
                            second.append(flat(n, k, j, i))
                            done |= {(i, j, k, n), (n, k, j, i)}
                    else:
                        first.append(flat(i, j, k, n))
                        second.append(nothing)
                        done.add((i, j, k, n))
    spam, done = [[flat(0, 0, 0, 0), nothing, nothing, nothing]], set()
    for i in values:
        for j in values:
            for k in values:
                for n in values:
                    if (i, j, k, n) in done or (i, j, k, n) == (0, 0, 0, 0):
                        continue
                    terms = [flat(i, j, k, n), flat(-i, -j, -k, -n), nothing, nothing]
                    done |= {(i, j, k, n), (-i, -j, -k, -n)}
                    if (i != n or j != k) and (n, k, j, i) not in done:
                        terms[2:] = [flat(n, k, j, i), flat(-n, -k, -j, -i)]
                        done |= {(n, k, j, i), (-n, -k, -j, -i)}
                    spam.append(terms)
    return np.asarray(first), np.asarray(second), np.asarray(spam).T


def _with_nothing(values: np.ndarray) -> np.ndarray:
    """``values`` (float32) with one zero appended: the "nothing" slot of the index maps."""
    return np.append(values, np.float32(0))


def _symmetrized_minmax(minimum: np.ndarray, maximum: np.ndarray) -> np.ndarray:
    """Sign symmetry (min with the flipped max) then directional symmetry, in float32 as the reference."""
    side = _SRM_SIDE
    cube_min = minimum.reshape((side,) * 4, order="F")
    cube_max = maximum.reshape((side,) * 4, order="F")
    merged = _with_nothing((cube_min + np.flip(cube_max)).reshape(-1, order="F"))
    first, second, _ = _symmetrization_indices()
    return merged[first] + merged[second]


def _symmetrized_spam(values: np.ndarray) -> np.ndarray:
    spam = _symmetrization_indices()[2]
    padded = _with_nothing(values)
    return ((padded[spam[0]] + padded[spam[1]]) + padded[spam[2]]) + padded[spam[3]]


def _first_order_submodels(x: np.ndarray) -> dict[str, tuple[np.ndarray, ...]]:
    """SRM's first-order submodels of an int32 image, as (min, max) pairs or (spam_h, spam_v), in reference order."""
    centre = x[1:-1, 1:-1]
    r, l = _srm_codes(x[1:-1, 2:] - centre, 1), _srm_codes(x[1:-1, :-2] - centre, 1)
    u, d = _srm_codes(x[:-2, 1:-1] - centre, 1), _srm_codes(x[2:, 1:-1] - centre, 1)
    ru, lu = _srm_codes(x[:-2, 2:] - centre, 1), _srm_codes(x[:-2, :-2] - centre, 1)
    rd, ld = _srm_codes(x[2:, 2:] - centre, 1), _srm_codes(x[2:, :-2] - centre, 1)
    out: dict[str, tuple[np.ndarray, ...]] = {}
    both = {}
    for name, pick in (("min", np.minimum), ("max", np.maximum)):
        rl, ud = pick(r, l), pick(u, d)
        # min/max of two neighbours, of three (the 34 models) and of the four straight ones (41)
        ru2, rd2, lu2, ld2 = pick(r, u), pick(r, d), pick(l, u), pick(l, d)
        up3, right3 = pick(pick(l, u), r), pick(pick(u, r), d)
        down3, left3 = pick(pick(r, d), l), pick(pick(d, l), u)
        all4 = pick(rl, ud)
        # with the diagonal neighbour between (34), then more diagonals (48, 54)
        ru34, rd34, lu34, ld34 = pick(ru2, ru), pick(rd2, rd), pick(lu2, lu), pick(ld2, ld)
        ru48, rd48, ld48, lu48 = pick(ru34, lu), pick(rd34, ru), pick(ld34, rd), pick(lu34, ld)
        ru48b, rd48b, ld48b, lu48b = pick(ru34, rd), pick(rd34, ld), pick(ld34, lu), pick(lu34, ru)
        ru54, rd54, ld54, lu54 = pick(ru48, rd), pick(rd48, ld), pick(ld48, lu), pick(lu48, ru)
        ru54b, rd54b, ld54b, lu54b = pick(ru48b, lu), pick(rd48b, ru), pick(ld48b, rd), pick(lu48b, ld)
        both[name] = {
            "22h": _srm_submodel([rl], [ud]),
            "22v": _srm_submodel([ud], [rl]),
            "24": _srm_submodel([ru2, rd2, lu2, ld2], [ru2, rd2, lu2, ld2]),
            "34h": _srm_submodel([up3, down3], [left3, right3]),
            "34v": _srm_submodel([right3, left3], [up3, down3]),
            "41": _srm_submodel([all4], [all4]),
            "34": _srm_submodel([ru34, rd34, lu34, ld34], [ru34, rd34, lu34, ld34]),
            "48h": _srm_submodel([ru48, ld48, rd48b, lu48b], [rd48, lu48, ru48b, ld48b]),
            "48v": _srm_submodel([rd48, lu48, ru48b, ld48b], [ru48, ld48, rd48b, lu48b]),
            "54": _srm_submodel([ru54, ld54, rd54b, lu54b], [rd54, lu54, ru54b, ld54b]),
        }
    for key in both["min"]:
        out[f"s1_minmax{key}_q1"] = (both["min"][key], both["max"][key])
    out["s1_spam14hv_q1"] = (_srm_submodel([r], [u]), _srm_submodel([u], [r]))
    return out


def _second_order_submodels(x: np.ndarray) -> dict[str, tuple[np.ndarray, ...]]:
    """SRM's second-order submodels (quantization step 2 at SRMQ1's q = 1), in reference order."""
    centre2 = 2 * x[1:-1, 1:-1]
    yh = _srm_codes(x[1:-1, :-2] - centre2 + x[1:-1, 2:], 2)
    yv = _srm_codes(x[:-2, 1:-1] - centre2 + x[2:, 1:-1], 2)
    yd = _srm_codes(x[:-2, :-2] - centre2 + x[2:, 2:], 2)
    ym = _srm_codes(x[:-2, 2:] - centre2 + x[2:, :-2], 2)
    both = {}
    for name, pick in (("min", np.minimum), ("max", np.maximum)):
        hv = pick(yh, yv)
        all4 = pick(pick(hv, yd), ym)
        ru, rd = pick(hv, ym), pick(hv, yd)
        ru2, rd2, ru3, lu3 = pick(ym, yh), pick(yd, yh), pick(ym, yv), pick(yd, yv)
        both[name] = {
            "21": _srm_submodel([hv], [hv]),
            "41": _srm_submodel([all4], [all4]),
            "32": _srm_submodel([ru, rd], [ru, rd]),
            "24h": _srm_submodel([ru2, rd2], [ru3, lu3]),
            "24v": _srm_submodel([ru3, lu3], [ru2, rd2]),
        }
    out = {f"s2_minmax{key}_q1": (both["min"][key], both["max"][key]) for key in both["min"]}
    out["s2_spam12hv_q1"] = (_srm_submodel([yh], [yv]), _srm_submodel([yv], [yh]))
    return out


def _symmetrized(submodels: dict[str, tuple[np.ndarray, ...]]) -> dict[str, np.ndarray]:
    out = {}
    for name, (first, second) in submodels.items():
        if "_spam" in name:
            out[name] = np.concatenate([_symmetrized_spam(first), _symmetrized_spam(second)])
        else:
            out[name] = _symmetrized_minmax(first, second)
    return out


def srmq1_submodels(gray: np.ndarray) -> dict[str, np.ndarray]:
    """SRMQ1's first- and second-order submodels of a grayscale image, by the reference's names.

    The spatial rich model (Fridrich and Kodovsky, "Rich Models for
    Steganalysis of Digital Images", IEEE TIFS 7(3), 2012,
    doi:10.1109/TIFS.2012.2190402) with one quantization step per residual
    (SRMQ1): co-occurrences of four successive quantized residuals (T = 2),
    symmetrized. This covers its 17 first- and second-order submodels
    (5,551 of SRMQ1's 12,753 values): ``s1_minmax22h_q1`` ... ``s1_spam14hv_q1``
    (11) and ``s2_minmax21_q1`` ... ``s2_spam12hv_q1`` (6), each as
    ``sealwatch.srmq1.extract`` gives it (float32, 325 or 338 values).
    """
    x = np.asarray(gray)
    if x.ndim != 2:
        raise ValueError(f"srmq1 needs a 2-D grayscale image, got shape {x.shape}")
    x = x.astype(np.int32)
    return {**_symmetrized(_first_order_submodels(x)), **_symmetrized(_second_order_submodels(x))}


def srmq1(gray: np.ndarray) -> np.ndarray:
    """The values of :func:`srmq1_submodels` concatenated in order (5,551 float32 values)."""
    return np.concatenate(list(srmq1_submodels(gray).values()))


def srmq1_names() -> list[str]:
    """``srmq1.<submodel>_<index>`` for every value of :func:`srmq1`, in order."""
    sizes = {name: values.size for name, values in srmq1_submodels(np.zeros((8, 8), dtype=np.uint8)).items()}
    return [f"srmq1.{name}_{i}" for name, size in sizes.items() for i in range(size)]
