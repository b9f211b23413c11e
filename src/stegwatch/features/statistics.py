"""Classical steganalysis statistics, each a pure function of sample values.

Units and answers (each function's docstring names its paper):

- :func:`chi_square_attack` - Westfeld-Pfitzmann: the probability (0..1) that
  the pairs of values (2k, 2k+1) were equalized by LSB replacement; near 1 for
  a fully embedded sequence, near 0 for a clean one.
- :func:`sequential_chi_square` - the same over growing prefixes, and the
  estimated embedded fraction for sequential embedding.
- :func:`sample_pair_analysis` - Dumitrescu-Wu-Wang SPA: estimated LSB
  replacement rate (fraction of samples carrying a message bit, 0..1).
- :func:`weighted_stego` - Fridrich-Goljan WS: the same estimate from a local
  predictor, weighted by local flatness.

Sequential attacks along an embedding path (a payload written from the first
sample on, of any length, with or without framing). Each returns a
:class:`SequentialEvidence` whose ``evidence`` has no upper bound: a longer
or cleaner embedded prefix always gives a larger value.

- :func:`sequential_chi_square_evidence` - Westfeld-Pfitzmann on growing
  prefixes, as ``-log10`` of the probability that a clean prefix's pairs would
  look at least as equalized.
- :func:`ws_estimate` - WS over a whole path (Ker-Böhme's predictor), from :func:`ws_terms`.
- :func:`sequential_ws_evidence` - WS residual terms (:func:`ws_terms`,
  :func:`palette_ws_terms`) on growing prefixes against the rest of the path.

LSB matching (+-1 embedding): :func:`hcf_com`, :func:`calibrated_hcf_com`,
:func:`adjacency_hcf_com` (Harmsen-Pearlman, Ker). JPEG: :func:`f5_calibrated_beta`
(Fridrich-Goljan-Hogea, F5) and :func:`outguess_blockiness_slopes` (the same
authors' blockiness attack on OutGuess). Bytes: :func:`byte_entropy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, special

from stegwatch.parallel import one_blas_thread


def chi_square_from_histogram(hist: np.ndarray, *, min_expected: float = 5.0) -> float:
    """The chi-square attack's probability from a histogram whose index 0 is an even value.

    Westfeld and Pfitzmann, "Attacks on steganographic systems" (Information
    Hiding 1999, LNCS 1768): LSB replacement equalizes the counts of each pair
    of values (2k, 2k+1), so the statistic ``sum (n_2k - e_k)^2 / e_k`` with
    ``e_k = (n_2k + n_2k+1) / 2`` is small; the returned probability is its
    chi-square survival function with (pairs - 1) degrees of freedom. Pairs
    whose expected count is below ``min_expected`` are dropped, so leading or
    trailing empty bins change nothing.
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


def pair_aligned(values: np.ndarray) -> tuple[np.ndarray, int]:
    """``values`` as non-negative bin indices with pairs (2k, 2k+1) intact, and the (even) number of bins.

    uint8 values are used as they are (256 bins); other integers (signed DCT
    coefficients) are shifted by an even offset, so pairs stay pairs in two's
    complement (-2 and -1 are a pair, as JSteg's LSB replacement makes them).
    """
    values = np.asarray(values).reshape(-1)
    if values.dtype == np.uint8:
        return values, 256
    offset = int(values.min()) if values.size else 0
    offset -= offset % 2
    shifted = values.astype(np.int64)  # widened once, then shifted in place: one full-size copy, not three
    shifted -= offset
    bins = int(shifted.max()) + 1 if shifted.size else 2
    return shifted, bins + bins % 2


def chi_square_attack(values: np.ndarray, *, min_expected: float = 5.0, exclude: tuple[int, ...] = ()) -> float:
    """P-value-like probability that ``values`` carry LSB-replaced data.

    Westfeld and Pfitzmann's chi-square attack (Information Hiding 1999,
    LNCS 1768; :func:`chi_square_from_histogram`) on the histogram of
    non-negative integers (or offset signed DCT values, :func:`pair_aligned`),
    pairs (2k, 2k+1); pairs whose expected count is below ``min_expected`` are
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
    shifted, bins = pair_aligned(values)
    return chi_square_from_histogram(np.bincount(shifted, minlength=bins), min_expected=min_expected)


def prefix_bounds(size: int, steps: int) -> list[int]:
    """Ends of the prefixes 1/steps, 2/steps, ... of a sequence of ``size`` values."""
    return [max(2, int(size * (i + 1) / steps)) for i in range(steps)]


def sequential_chi_square(values: np.ndarray, *, steps: int = 20) -> tuple[np.ndarray, float]:
    """Chi-square p over prefixes of 1/steps, 2/steps, ... of ``values`` (scan order).

    Westfeld and Pfitzmann (Information Hiding 1999) apply their attack to a
    growing sample from the start of the embedding path: a message embedded
    sequentially keeps p near 1 while the sample lies inside it, and p falls
    once the sample reaches past its end. Returns the p-values and the estimated embedded fraction: the longest
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

    Fridrich and Goljan, "On estimation of secret message length in LSB
    steganography in spatial domain" (Security, Steganography, and
    Watermarking of Multimedia Contents VI, SPIE 5306, 2004): with ``x'`` the
    LSB-flipped sample and ``p`` its prediction from the neighbours, the
    weighted mean of ``(x - x')(x - p)`` is half the replacement rate.
    Predictor: mean of the four neighbours; weights 1 / (5 + local variance),
    normalized, as in the paper. Border pixels are left out.

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
        centre = block[1:-1, 1:-1]
        total = _edge_sum(block)
        squares = _edge_sum(block * block)  # each sample squared once (integers: the same sums)
        # 1 / (5 + variance) as 16 / (80 + 16 variance): the same real number from exact operands, so the same double.
        np.divide(16.0, 80 + 4 * squares - total * total, out=weights[row: row + _WS_BLOCK_ROWS])
        # (centre - flipped LSB) is +1 for odd centres and -1 for even ones.
        np.divide((2 * (centre & 1) - 1) * (4 * centre - total), 4.0, out=signed_error[row: row + _WS_BLOCK_ROWS])
    weights /= weights.sum()
    # The product in place: the same values summed the same way, without a third full-size array.
    estimate = 2.0 * np.sum(np.multiply(weights, signed_error, out=signed_error))
    return float(np.clip(estimate, 0.0, 1.0))


_WS_BLOCK_ROWS = 128


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


# --- Sequential attacks along an embedding path --------------------------------------------------

#: The shortest prefix the sequential attacks test, in samples, and how finely the prefixes grow.
FIRST_PREFIX = 256
PREFIX_STEPS_PER_DOUBLING = 4
#: WS residual terms are truncated to +-this many grey levels, so that edges of synthetic
#: images (two-colour patterns, premultiplied cut-outs) cannot outweigh the smooth areas.
WS_TRUNCATION = 3.0
#: The chi-square evidence's cap: -log10 of the smallest probability it reports.
MAX_EVIDENCE = 300.0


def prefix_ends(size: int, *, first: int = FIRST_PREFIX, per_doubling: int = PREFIX_STEPS_PER_DOUBLING) -> np.ndarray:
    """Ends of the growing prefixes of a path of ``size`` samples.

    ``first``, then ``2 ** (1 / per_doubling)`` times longer at each step, and
    last ``size`` itself (the whole path): about 40 prefixes for the 196,608
    samples of a 256x256 RGB image, so a payload of any length from a few
    hundred samples on has a prefix within 19% of its own length.
    """
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    steps = int(np.floor(per_doubling * np.log2(size / first))) + 1 if size > first else 0
    ends = np.rint(first * 2.0 ** (np.arange(steps) / per_doubling)).astype(np.int64)
    return np.append(np.unique(ends[ends < size]), size)


@dataclass(frozen=True)
class SequentialEvidence:
    """What a sequential attack found along one embedding path.

    ``evidence`` is the attack's statistic: 0 for nothing, no upper bound,
    larger for a longer or cleaner embedded prefix. ``fraction`` is the prefix
    (as a fraction of the path's samples) where it peaked: an estimate of
    the payload's length.
    """

    evidence: float = 0.0
    fraction: float = 0.0


@dataclass(frozen=True)
class PrefixCounts:
    """Histograms of the growing prefixes of one embedding path, counted once for every pairs-of-values attack.

    ``counts[i]`` is the histogram of the first ``ends[i]`` values (pairs kept
    intact by :func:`pair_aligned`), ``total`` that of the whole path, ``size``
    the path's length. :func:`sequential_chi_square_evidence` and
    :func:`sequential_pairs_likelihood_ratio` take one in place of the values.
    """

    ends: np.ndarray
    counts: np.ndarray
    total: np.ndarray
    size: int


def prefix_counts(values: np.ndarray, ends: np.ndarray | None = None) -> PrefixCounts:
    """:class:`PrefixCounts` of ``values`` (embedding order) at ``ends`` (default :func:`prefix_ends`); each value is
    counted once, the prefixes' histograms being running sums of the slices between their ends."""
    values = np.asarray(values).reshape(-1)
    shifted, bins = pair_aligned(values)
    ends = prefix_ends(values.size) if ends is None else np.asarray(ends, dtype=np.int64)
    counts = np.zeros((ends.size, bins), dtype=np.int64)
    running = np.zeros(bins, dtype=np.int64)
    start = 0
    for row, end in enumerate(ends):
        running += np.bincount(shifted[start:end], minlength=bins)
        start = max(start, int(end))
        counts[row] = running
    total = running + np.bincount(shifted[start:], minlength=bins) if start < values.size else running.copy()
    return PrefixCounts(ends, counts, total, int(values.size))


def _as_prefix_counts(path: np.ndarray | PrefixCounts, ends: np.ndarray | None) -> PrefixCounts:
    if isinstance(path, PrefixCounts):
        if ends is not None:
            raise ValueError("ends are fixed by the PrefixCounts given")
        return path
    return prefix_counts(path, ends)


def chi_square_equalization_evidence(hist: np.ndarray, *, min_expected: float = 5.0) -> float:
    """Westfeld-Pfitzmann's test on one histogram, as evidence of equalized pairs: ``-log10(1 - p)``.

    Westfeld and Pfitzmann, "Attacks on steganographic systems" (Information
    Hiding 1999, LNCS 1768): with ``n_2k``, ``n_2k+1`` the counts of a pair of
    values and ``m_k`` their mean, ``S = sum (n_2k - m_k)^2 / m_k`` over the
    pairs with ``m_k >= min_expected``; their probability of embedding is
    ``p = P(chi2(k - 1) > S)``, near 1 where LSB replacement equalized the
    pairs. ``1 - p = P(chi2(k - 1) <= S)`` is how often a sum this small
    arises by chance, so ``-log10(1 - p)`` orders the files the same way as
    ``p`` without the ceiling at 1: more pairs, all equalized, give more
    evidence. Counts are integers, so each pair's squared difference counts as
    at least 1 (equal counts are not infinitely improbable); capped at
    :data:`MAX_EVIDENCE`. Index 0 of ``hist`` is an even value.
    """
    hist = np.asarray(hist)
    if hist.size % 2:
        hist = np.append(hist, 0)
    even, odd = hist[0::2].astype(float), hist[1::2].astype(float)
    total = even + odd
    keep = total >= 2 * min_expected
    kept = int(np.count_nonzero(keep))
    if kept < 2:
        return 0.0
    statistic = float(np.sum(np.maximum((even[keep] - odd[keep]) ** 2, 1.0) / (2 * total[keep])))
    lower_tail = float(special.chdtr(kept - 1, statistic))
    return float(min(-np.log10(max(lower_tail, 10.0 ** -MAX_EVIDENCE)), MAX_EVIDENCE))


def sequential_chi_square_evidence(values: np.ndarray | PrefixCounts, *, ends: np.ndarray | None = None,
                                   min_expected: float = 5.0) -> SequentialEvidence:
    """Westfeld-Pfitzmann's sequential attack: the chi-square test on growing prefixes of ``values`` (embedding order).

    Westfeld and Pfitzmann (1999) plot ``p`` on growing samples from the
    start of the image: it stays near 1 while the samples carry the message
    and drops where the message ends. Here each prefix of :func:`prefix_ends`
    gets :func:`chi_square_equalization_evidence`; the result is the largest,
    and the prefix where it peaked. No framing is needed: a random payload of
    any length is found where its prefix is long enough to populate the pairs.
    Signed values (DCT coefficients) are aligned by :func:`pair_aligned`.
    ``values`` may be the path's :func:`prefix_counts`, shared with other attacks.
    """
    counted = _as_prefix_counts(values, ends)
    if counted.size == 0:
        return SequentialEvidence()
    best, at = 0.0, 0
    for end, running in zip(counted.ends, counted.counts, strict=True):
        evidence = chi_square_equalization_evidence(running, min_expected=min_expected)
        if evidence > best:
            best, at = evidence, int(end)
    return SequentialEvidence(best, at / counted.size)


def ws_terms(planes: np.ndarray, *, mask: np.ndarray | None = None,
             truncate: float = WS_TRUNCATION) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample weights and WS residual terms of LSB replacement, in embedding-path order.

    ``planes`` is (H, W) or (H, W, C) integer samples; the path visits pixels
    row-major and, within a pixel, its channels in order (R, G, B interleaved
    from the top-left, as ``lsb.rgb`` embeds; one channel: row-major, as
    ``alpha`` embeds). For each interior sample ``x``: the prediction ``p`` by
    the KB kernel on its 3x3 neighbourhood (Ker and Böhme, "Revisiting
    weighted stego-image steganalysis", Information Hiding 2008), the weight
    ``1 / (5 + variance of its 4 neighbours)`` and the term ``(x - x')(x - p)``
    with ``x'`` the LSB-flipped ``x`` (Fridrich and Goljan, "On estimation of
    secret message length in LSB steganography in spatial domain", SPIE 5306,
    2004), truncated to ``+-truncate``. Where a fraction ``r`` of the samples
    carries LSB-replaced bits, the weighted mean of their terms is about
    ``r / 2`` (WS's estimate is twice it). Border samples, and samples where
    ``mask`` (H, W) is False, weigh 0.
    """
    x = np.asarray(planes)
    if x.ndim == 2:
        x = x[..., None]
    height, width, channels = x.shape
    weights = np.zeros((height, width, channels))
    terms = np.zeros((height, width, channels))
    if height >= 3 and width >= 3:
        # Integer arithmetic on 4x the prediction and 16x the variance: exact, and faster than floats.
        x = x.astype(np.int32)
        edges = _edge_sum(x)
        centre = x[1:-1, 1:-1]
        residual4 = 4 * centre - 2 * edges + _corner_sum(x)  # 4 (x - p)
        variance16 = 4 * _edge_sum(x * x) - edges * edges
        np.divide(16.0, 80.0 + variance16, out=weights[1:-1, 1:-1])
        limit = int(round(4 * truncate))
        np.multiply(2 * (centre & 1) - 1, np.clip(residual4, -limit, limit), out=terms[1:-1, 1:-1], casting="unsafe")
        terms *= 0.25
        if mask is not None:
            weights *= np.asarray(mask, dtype=bool)[..., None]
    return weights.reshape(-1), terms.reshape(-1)


def ws_estimate(weights: np.ndarray, terms: np.ndarray) -> float:
    """WS's estimate of the fraction of samples carrying LSB-replaced bits, over the whole path: twice the weighted
    mean of the terms of :func:`ws_terms` (0 when nothing weighs).

    With ``ws_terms``' KB predictor and truncation this is the whole-image
    estimate of Ker and Böhme's revised WS ("Revisiting weighted stego-image
    steganalysis", Information Hiding 2008: their predictor, Fridrich and
    Goljan's weights; not their bias correction), not clipped to [0, 1]. It
    sees changes wherever they are, scattered by a key (``lsbr``) or written
    from the start. On the RGB PNG photo crops of the default corpus its 99th
    percentile is about 0.4 of the textbook form's (:func:`weighted_stego`),
    whose 4-neighbour predictor leaves more of the picture in the residual.
    """
    total = float(np.sum(weights))
    with one_blas_thread():  # a multithreaded dot product splits the sum: its last bits would depend on the cores
        weighted = float(np.dot(weights, terms))
    return 2.0 * weighted / total if total > 0 else 0.0


def palette_ws_terms(indices: np.ndarray, palette: np.ndarray, *,
                     truncate: float = WS_TRUNCATION) -> tuple[np.ndarray, np.ndarray]:
    """WS residual terms of index-LSB replacement in a palette image, in colour space (path: row-major).

    An index ``i`` shows the colour ``c = palette[i]``; flipping its LSB shows
    the twin ``c' = palette[i ^ 1]``. With ``p`` the KB prediction of the
    colour from the neighbours' colours, the term is the residual projected on
    the twin direction, ``(c - c').(c - p) / |c - c'|^2`` (truncated): for a
    grey palette with ``c' = c +- 1`` it is exactly :func:`ws_terms`' term, and
    where a fraction ``r`` of the indices carries replaced bits its weighted
    mean grows by ``r / 2`` over the clean image's. The weight is
    ``1 / (5 + variance)`` with the variance taken over the 4 neighbours'
    twin-pair mean colours ``(c + c') / 2``, which replacing index LSBs cannot
    change: a twin can be any colour, so the neighbours' own colours would make
    an embedded area look busy and weigh nothing (grey-level flips move a
    value by 1, too little to matter). A twin of the same colour weighs 0.
    ``palette`` is (N, 3) with N even.
    """
    idx = np.asarray(indices)
    height, width = idx.shape
    weights = np.zeros((height, width))
    terms = np.zeros((height, width))
    if height >= 3 and width >= 3:
        colours = np.asarray(palette)
        if colours.size and (np.any(colours != np.rint(colours)) or colours.min() < 0 or colours.max() > 255):
            raise ValueError("palette colours must be integers 0-255")
        colours = colours.astype(np.int32)
        twins = idx ^ 1
        # Integer sums per channel, scaled so that every value is exact: 4 (c - c').(c - p), |c - c'|^2 and 64 times
        # the sum over channels of the pair means' neighbour variance. Divided by powers of two, they are the
        # floating-point values of the textbook form bit for bit (tests/test_classical_attacks.py checks it).
        projection4 = np.zeros((height - 2, width - 2), dtype=np.int32)
        distance = np.zeros_like(projection4)
        spread64 = np.zeros_like(projection4)
        for channel in range(colours.shape[1]):
            colour = colours[:, channel]
            c = colour[idx]
            pair = c + colour[twins]  # twice the twin pair's mean colour
            centre = c[1:-1, 1:-1]
            direction = 2 * centre - pair[1:-1, 1:-1]  # c - c'
            # 4 (c - p), with the KB prediction p = edges / 2 - corners / 4
            projection4 += direction * (4 * centre - 2 * _edge_sum(c) + _corner_sum(c))
            distance += direction * direction
            pair_edges = _edge_sum(pair)
            spread64 += 4 * _edge_sum(pair * pair) - pair_edges * pair_edges
        projection = projection4 / 4.0
        ratio = np.divide(projection, distance, out=np.zeros_like(projection), where=distance > 0)
        weights[1:-1, 1:-1] = (distance > 0) / (5.0 + spread64 / 64.0 / colours.shape[1])
        terms[1:-1, 1:-1] = np.clip(ratio, -truncate, truncate)
    return weights.reshape(-1), terms.reshape(-1)


def _edge_sum(x: np.ndarray) -> np.ndarray:
    """For every interior sample of ``x`` (2-D, or more with the image axes first): the sum of its 4 edge neighbours."""
    return x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:]


def _corner_sum(x: np.ndarray) -> np.ndarray:
    """For every interior sample of ``x``: the sum of its 4 corner (diagonal) neighbours."""
    return x[:-2, :-2] + x[:-2, 2:] + x[2:, :-2] + x[2:, 2:]


#: Fewest samples (effective count of the weights, (sum w)^2 / sum w^2) a part of the path needs for its
#: mean and standard error to count: a prefix holding a handful of weighted samples proves nothing.
MIN_EFFECTIVE_SAMPLES = 100


def _prefix_contrast(sums: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """z of (weighted mean on each prefix - on the rest), from prefix sums of w, wt, w^2, w^2 t, w^2 t^2 (rows)."""
    rest = totals[:, None] - sums

    def mean_and_variance(part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w, wt, w2, w2t, w2t2 = part
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = wt / w
            variance = (w2t2 - 2 * mean * w2t + mean * mean * w2) / (w * w)
        return mean, variance

    prefix_mean, prefix_variance = mean_and_variance(sums)
    rest_mean, rest_variance = mean_and_variance(rest)
    spread = prefix_variance + rest_variance
    with np.errstate(divide="ignore", invalid="ignore"):
        enough = (sums[0] ** 2 >= MIN_EFFECTIVE_SAMPLES * sums[2]) & (rest[0] ** 2 >= MIN_EFFECTIVE_SAMPLES * rest[2])
    ok = (sums[0] > 0) & (rest[0] > 0) & enough & (spread > 1e-12 * (prefix_mean ** 2 + rest_mean ** 2 + 1e-12))
    z = np.zeros(sums.shape[1])
    z[ok] = (prefix_mean[ok] - rest_mean[ok]) / np.sqrt(spread[ok])
    return z


#: Samples per block when :func:`dependence_inflation` measures how far block means spread.
DEPENDENCE_BLOCK = 512


def dependence_inflation(weights: np.ndarray, terms: np.ndarray, *, block: int = DEPENDENCE_BLOCK,
                         parts: tuple[np.ndarray, ...] | None = None) -> float:
    """How much more the weighted means of blocks of the path spread than independent terms would (at least 1).

    Synthetic pictures (two-colour patterns, fine periodic textures) make
    neighbouring WS terms move together, so a standard error computed as if
    they were independent is too small. Each block of ``block`` samples has a
    mean and an independence standard error; the median of the squared
    standardized deviations from the median block mean, over that of a
    chi-square with one degree of freedom (0.455), is the variance inflation.
    Medians, so that the few blocks a short payload shifts do not count.
    ``parts`` is :func:`_ws_parts` of the same weights and terms, when the
    caller has it.
    """
    n = weights.size
    starts = np.arange(0, n, block)
    if starts.size < 8:
        return 1.0
    w, s1, w2, w2t, w2t2 = (np.add.reduceat(p, starts) for p in (parts or _ws_parts(weights, terms)))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / w
        variance = (w2t2 - 2 * mean * w2t + mean * mean * w2) / (w * w)
        ok = (w * w >= MIN_EFFECTIVE_SAMPLES * w2) & (variance > 0)
    if np.count_nonzero(ok) < 8:
        return 1.0
    deviations = (mean[ok] - np.median(mean[ok])) ** 2 / variance[ok]
    return max(1.0, float(np.median(deviations)) / 0.4549)


def _ws_parts(weights: np.ndarray, terms: np.ndarray) -> tuple[np.ndarray, ...]:
    """The per-sample quantities whose sums give a weighted mean and its standard error: w, wt, w^2, w^2 t, w^2 t^2."""
    wt = weights * terms
    return weights, wt, weights * weights, weights * wt, wt * wt


def sequential_ws_evidence(weights: np.ndarray, terms: np.ndarray, *, ends: np.ndarray | None = None) -> SequentialEvidence:
    """Do the WS terms (:func:`ws_terms`, :func:`palette_ws_terms`) rise on a prefix of the embedding path?

    For each prefix of :func:`prefix_ends`, the z-score of (the weighted mean
    of the terms on the prefix - on the rest of the path), each part's
    standard error from its own terms, widened by the picture's
    :func:`dependence_inflation`; the largest over the prefixes, less the
    largest z of the same test along the reversed path (when positive), so
    that a picture whose two ends differ by content alone does not count.
    A payload of ``n`` samples written from the start raises its prefix's
    mean by half the replaced fraction, so the evidence grows like ``sqrt(n)``.
    Locating a payload by its WS residuals follows Ker, "Locating
    steganographic payload via WS residuals" (ACM MM&Sec 2008).
    """
    weights = np.asarray(weights, dtype=np.float64)
    terms = np.asarray(terms, dtype=np.float64)
    n = weights.size
    ends = prefix_ends(n) if ends is None else np.asarray(ends)
    ends = ends[(ends > 0) & (ends < n)]
    if ends.size == 0:
        return SequentialEvidence()
    parts = _ws_parts(weights, terms)  # computed once, for the prefix sums and the dependence inflation
    totals = np.asarray([p.sum() for p in parts])
    # Sums up to every cut (prefixes forward, and the prefixes of the reversed path), in one pass per quantity.
    cuts = np.unique(np.concatenate([ends, n - ends]))
    at_cut = np.stack([np.cumsum(np.add.reduceat(p, np.concatenate([[0], cuts]))[:-1]) for p in parts])
    position = {int(c): i for i, c in enumerate(cuts)}
    forward = at_cut[:, [position[int(e)] for e in ends]]
    backward = totals[:, None] - at_cut[:, [position[int(n - e)] for e in ends]]
    scale = np.sqrt(dependence_inflation(weights, terms, parts=parts))
    z_forward = _prefix_contrast(forward, totals) / scale
    z_backward = _prefix_contrast(backward, totals) / scale
    best = int(np.argmax(z_forward))
    evidence = float(z_forward[best] - max(0.0, float(z_backward.max())))
    return SequentialEvidence(max(evidence, 0.0), float(ends[best]) / n)


# --- LSB matching -----------------------------------------------------------------------------------


def _com(magnitude: np.ndarray, frequency: np.ndarray) -> float:
    total = float(magnitude.sum())
    return float(np.sum(frequency * magnitude) / total) if total > 0 else 0.0


def hcf_com(channel: np.ndarray) -> float:
    """Centre of mass of the histogram characteristic function of one 8-bit channel.

    Harmsen and Pearlman, "Steganalysis of additive noise modelable
    information hiding" (SPIE 5020, 2003), in Ker's notation ("Steganalysis
    of LSB matching in grayscale images", IEEE Signal Processing Letters
    12(6), 2005): ``C = sum_k k |H[k]| / sum_k |H[k]|`` over ``k = 0..128``,
    ``H`` the DFT of the 256-bin histogram. Adding +-1 noise (LSB matching)
    convolves the histogram with a low-pass kernel, so ``C`` falls.
    ``sealwatch.hcfcom.extract`` takes the same magnitudes (equal to 2e-16)
    but weighs frequencies 1..128 by ``(k - 1) / 256`` and leaves ``H[0]`` out
    of the denominator, so its values differ by an image-dependent factor.
    """
    values = np.asarray(channel).reshape(-1)
    if values.size == 0:
        return 0.0
    hist = np.bincount(values, minlength=256)[:256] / values.size
    magnitude = np.abs(fft.rfft(hist))  # k = 0..128
    return _com(magnitude, np.arange(magnitude.size, dtype=float))


def downsample_2x2(channel: np.ndarray) -> np.ndarray:
    """Ker's calibration image: each 2x2 block's mean, rounded down (uint8); odd edges dropped."""
    x = np.asarray(channel)
    height, width = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:height, :width].astype(np.uint16)
    return ((x[0::2, 0::2] + x[0::2, 1::2] + x[1::2, 0::2] + x[1::2, 1::2]) // 4).astype(np.uint8)


def calibrated_hcf_com(channel: np.ndarray, *, downsampled: np.ndarray | None = None, com: float | None = None) -> float:
    """Ker's calibrated HCF-COM: ``C(image) / C(image downsampled 2x2)`` for one 8-bit channel.

    Ker, "Steganalysis of LSB matching in grayscale images" (IEEE Signal
    Processing Letters 12(6), 2005): averaging 2x2 blocks mostly removes the
    +-1 noise, so the downsampled image's COM stands for the cover's and the
    ratio falls with the payload (near 1 for clean images, below for stego).
    Returns 1.0 for images too small to downsample. A caller that has
    ``downsample_2x2(channel)`` or ``hcf_com(channel)`` already passes them
    (:func:`adjacency_hcf_com` takes the same downsampled image).
    """
    x = np.asarray(channel)
    if x.shape[0] < 2 or x.shape[1] < 2:
        return 1.0
    reference = hcf_com(downsample_2x2(x) if downsampled is None else downsampled)
    return (hcf_com(x) if com is None else com) / reference if reference > 0 else 1.0


def adjacency_hcf_com(channel: np.ndarray, *, downsampled: np.ndarray | None = None) -> float:
    """Ker's adjacency HCF-COM of one 8-bit channel, calibrated by 2x2 downsampling (a ratio, as above).

    Ker (2005): the 2-D histogram of horizontally adjacent pairs is
    concentrated on its diagonal in natural images, and +-1 noise spreads it;
    ``C2 = sum (k + l) |H[k, l]| / sum |H[k, l]|`` over ``k, l = 0..128`` of its
    2-D DFT, divided by the same for the downsampled image (``downsampled``:
    ``downsample_2x2(channel)``, when the caller has it).
    """
    x = np.asarray(channel)
    if x.shape[0] < 2 or x.shape[1] < 4:
        return 1.0

    def c2(image: np.ndarray) -> float:
        pairs = image[:, :-1].astype(np.int64) * 256 + image[:, 1:]
        hist = np.bincount(pairs.reshape(-1), minlength=65536).reshape(256, 256) / max(1, pairs.size)
        magnitude = np.abs(fft.rfft2(hist))[:129]  # k = 0..128 (rows), l = 0..128 (rfft)
        k = np.arange(129, dtype=float)
        return _com(magnitude, k[:, None] + k[None, :])

    reference = c2(downsample_2x2(x) if downsampled is None else downsampled)
    return c2(x) / reference if reference > 0 else 1.0


# --- F5 family: calibration -----------------------------------------------------------------------

#: The low-pass kernel's weight ``e`` in Fridrich, Goljan and Hogea's calibration:
#: ``[[0, e, 0], [e, 1 - 4e, e], [0, e, 0]]``, applied after cropping to remove blockiness.
F5_BLUR = 0.05
#: The low-frequency DCT modes whose histograms the F5 estimate pools.
F5_MODES = ((0, 1), (1, 0), (1, 1))


def _inverse_dct(coefficients: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """Dequantized coefficients through the inverse DCT, per 8x8 block, in block layout (before +128 and rounding)."""
    blocks = np.asarray(coefficients, dtype=np.float64) * np.asarray(qt, dtype=np.float64)
    return fft.idctn(blocks, axes=(-2, -1), norm="ortho")


def _as_decoded(values: np.ndarray) -> np.ndarray:
    """What a decoder makes of inverse-DCT values: +128, rounded and clipped to 0..255 (float64)."""
    return np.clip(np.rint(values + 128.0), 0, 255)


def decompress_blocks(coefficients: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """Pixels of one JPEG channel from its quantized coefficients (blocks, as jpeglib lays them out), as a decoder
    gives them: dequantized, inverse DCT per 8x8 block, +128, rounded and clipped to 0..255 (float64)."""
    rows, cols = np.shape(coefficients)[:2]
    return _as_decoded(_inverse_dct(coefficients, qt)).transpose(0, 2, 1, 3).reshape(rows * 8, cols * 8)


def compress_blocks(pixels: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """Quantized coefficients (block rows, block columns, 8, 8) of a channel whose sides are multiples of 8."""
    height, width = pixels.shape
    blocks = (np.asarray(pixels, dtype=np.float64) - 128.0).reshape(height // 8, 8, width // 8, 8).transpose(0, 2, 1, 3)
    return np.rint(fft.dctn(blocks, axes=(-2, -1), norm="ortho") / np.asarray(qt, dtype=np.float64))


def f5_calibrated_beta(coefficients: np.ndarray, qt: np.ndarray, *, crop: int = 4, blur: float = F5_BLUR,
                       modes: tuple[tuple[int, int], ...] = F5_MODES, decompressed: np.ndarray | None = None) -> float:
    """The F5 change rate estimated by calibration (fraction of non-zero AC coefficients changed; not clipped).

    Fridrich, Goljan and Hogea, "Steganalysis of JPEG images: breaking the F5
    algorithm" (Information Hiding 2002, LNCS 2578): decompress the channel,
    crop ``crop`` rows and columns (the 8x8 grid moves, so the embedding's
    changes no longer line up with it), low-pass with
    ``[[0, e, 0], [e, 1 - 4e, e], [0, e, 0]]`` (``e = blur``), recompress with
    the same quantization table: the result's histograms estimate the cover's.
    F5 lowers absolute values, so for each mode ``(k, l)`` of ``modes``, with
    ``H(i)`` the stego counts of ``|d| = i`` and ``h(i)`` the calibrated ones
    (per block), ``beta`` minimizes ``[H(0) - h(0) - beta h(1)]^2 +
    [H(1) - (1 - beta) h(1) - beta h(2)]^2``:
    ``beta = (h1 (H0 - h0) + (H1 - h1)(h2 - h1)) / (h1^2 + (h2 - h1)^2)``.
    Returns the mean over the modes; 0.0 for a channel under 3x3 blocks.
    ``coefficients`` is (block rows, block columns, 8, 8) as jpeglib reads it;
    ``decompressed``, if given, is its :func:`decompress_blocks` (shared with
    :func:`outguess_blockiness_slopes`, which starts from the same pixels).
    """
    stego = np.asarray(coefficients)
    if stego.shape[0] < 3 or stego.shape[1] < 3:
        return 0.0
    pixels = (decompress_blocks(stego, qt) if decompressed is None else decompressed)[crop:, crop:]
    if blur:
        padded = np.pad(pixels, 1, mode="edge")
        pixels = (1 - 4 * blur) * pixels + blur * (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:])
    height, width = (pixels.shape[0] // 8) * 8, (pixels.shape[1] // 8) * 8
    calibrated = compress_blocks(pixels[:height, :width], qt)
    betas = []
    for (k, l) in modes:
        observed = np.bincount(np.minimum(np.abs(stego[..., k, l]).reshape(-1), 3).astype(np.int64), minlength=4)[:3] / stego[..., k, l].size
        expected = np.bincount(np.minimum(np.abs(calibrated[..., k, l]).reshape(-1), 3).astype(np.int64), minlength=4)[:3] / calibrated[..., k, l].size
        denominator = expected[1] ** 2 + (expected[2] - expected[1]) ** 2
        if denominator > 0:
            betas.append((expected[1] * (observed[0] - expected[0]) + (observed[1] - expected[1]) * (expected[2] - expected[1])) / denominator)
    return float(np.mean(betas)) if betas else 0.0


def blockiness(pixels: np.ndarray) -> float:
    """The summed absolute differences across the 8x8 grid's boundaries, per pixel of ``pixels`` (one channel).

    Fridrich, Goljan and Hogea, "Attacking the OutGuess" (ACM Multimedia and
    Security Workshop 2002), their blockiness: ``sum |g(8i, j) - g(8i + 1, j)|`` over
    the block rows' boundaries plus the same over the block columns', here
    divided by the number of pixels so that images of every size compare.
    """
    x = np.asarray(pixels, dtype=np.float64)
    if x.shape[0] < 9 or x.shape[1] < 9:
        return 0.0
    above, below = x[7:-1:8], x[8::8]
    left, right = x[:, 7:-1:8], x[:, 8::8]
    total = np.abs(above - below[: len(above)]).sum() + np.abs(left - right[:, : left.shape[1]]).sum()
    return float(total / x.size)


def _blockiness_of_blocks(values: np.ndarray) -> float:
    """:func:`blockiness` of the channel whose inverse-DCT values (block layout, :func:`_inverse_dct`) are ``values``.

    The same number as ``blockiness(decompress_blocks(...))``, bit for bit: only
    the pixels on the blocks' edges are rounded and compared (each sum adds
    whole numbers, exact in float64 in any order), and the channel is never
    laid out row by row.
    """
    rows, cols = values.shape[:2]
    if rows < 2 or cols < 2:
        return 0.0
    above, below = _as_decoded(values[:-1, :, 7, :]), _as_decoded(values[1:, :, 0, :])
    left, right = _as_decoded(values[:, :-1, :, 7]), _as_decoded(values[:, 1:, :, 0])
    total = np.abs(above - below).sum() + np.abs(left - right).sum()
    return float(total / (64 * rows * cols))


def _flip_outguess_lsbs(coefficients: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A maximal OutGuess message: the LSB of every AC coefficient that is not 0 or 1 flipped with probability 1/2."""
    changed = np.array(coefficients, dtype=np.int16)
    flip = (changed != 0) & (changed != 1)
    flip[..., 0, 0] = False
    flip &= rng.random(changed.shape) < 0.5
    changed ^= flip  # XOR with 1 where chosen, 0 elsewhere: no gather and scatter of the chosen coefficients
    return changed


def outguess_blockiness_slopes(coefficients: np.ndarray, qt: np.ndarray, *, crop: int = 4,
                               seed: int = 0, decompressed: np.ndarray | None = None) -> tuple[float, float]:
    """How much a maximal OutGuess message raises the blockiness of this channel, and of its calibrated cover.

    Fridrich, Goljan and Hogea, "Attacking the OutGuess" (ACM MM&Sec 2002):
    OutGuess keeps the DCT histogram (its statistical correction), but every
    change adds discontinuities at the 8x8 boundaries. The blockiness
    (:func:`blockiness` of the decompressed channel) grows with the number of
    changes, and its growth when a maximal message is embedded again (its
    slope) is smaller the more of the image already carries a message. Returns
    ``(S1, S0)``: the slope of the channel itself and that of its cover's
    estimate (decompress, crop ``crop`` rows and columns, recompress with the
    same quantization table, as :func:`f5_calibrated_beta` without the
    low-pass). The maximal message is simulated by :func:`_flip_outguess_lsbs`
    (OutGuess's usable coefficients, each changed with probability 1/2;
    random from ``seed``). ``(0.0, 0.0)`` for a channel under 3x3 blocks.
    ``decompressed``, if given, is the channel's :func:`decompress_blocks`
    (shared with :func:`f5_calibrated_beta`). The blockiness of the channels
    the function makes itself is taken from their edges alone
    (:func:`_blockiness_of_blocks`: the same values).
    """
    stego = np.asarray(coefficients)
    if stego.shape[0] < 3 or stego.shape[1] < 3:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    pixels = decompress_blocks(stego, qt) if decompressed is None else decompressed
    height, width = ((pixels.shape[0] - crop) // 8) * 8, ((pixels.shape[1] - crop) // 8) * 8
    calibrated = compress_blocks(pixels[crop:crop + height, crop:crop + width], qt)
    before = (blockiness(pixels), _blockiness_of_blocks(_inverse_dct(calibrated, qt)))
    # The stego channel's flips are drawn first, then the calibrated one's, from the same generator.
    stego_slope, cover_slope = (_blockiness_of_blocks(_inverse_dct(_flip_outguess_lsbs(channel, rng), qt)) - b
                                for channel, b in zip((stego, calibrated), before, strict=True))
    return stego_slope, cover_slope


def jpeg_calibrations(coefficients: np.ndarray, qt: np.ndarray) -> tuple[float, tuple[float, float]]:
    """:func:`f5_calibrated_beta` and :func:`outguess_blockiness_slopes` of one channel, decompressing it once
    (both calibrations start from the same decoded pixels); the same values as the two called apart."""
    stego = np.asarray(coefficients)
    decompressed = decompress_blocks(stego, qt) if min(stego.shape[:2]) >= 3 else None
    return (f5_calibrated_beta(stego, qt, decompressed=decompressed),
            outguess_blockiness_slopes(stego, qt, decompressed=decompressed))


def outguess_slope_drop(slopes: tuple[float, float]) -> float:
    """``1 - S1 / S0`` of :func:`outguess_blockiness_slopes`: near 0 for a cover, rising with OutGuess's message
    length (a normalized form of the paper's comparison of the two slopes); 0.0 where the cover's slope is not positive."""
    stego_slope, cover_slope = slopes
    return float(1.0 - stego_slope / cover_slope) if cover_slope > 0 else 0.0


def sequential_pairs_likelihood_ratio(values: np.ndarray | PrefixCounts, *, ends: np.ndarray | None = None,
                                      min_rest: int = 100, max_fraction: float = 0.75) -> SequentialEvidence:
    """Are the pairs of values (2k, 2k+1) equalized on a prefix of the path, but not on the rest?

    Westfeld and Pfitzmann's pairs of values, tested as a likelihood ratio for
    each prefix of :func:`prefix_ends`: under embedding, a pair's ``n`` values
    on the prefix split evenly (binomial, 1/2); under the clean hypothesis they
    split as the same pair does on the rest of the path (``q_k``, estimated
    there with add-half smoothing). The log-likelihood ratio in nats,
    ``sum_k e_k log(1/2 / q_k) + o_k log(1/2 / (1 - q_k))`` over the pairs with
    at least ``min_rest`` values on the rest, grows with the length of an
    embedded prefix (by the prefix's count times the Kullback-Leibler
    divergence between the halves and the natural split) and is negative for a
    clean one. Returns the largest over the prefixes up to ``max_fraction`` of
    the path (the rest must be large enough to stand for the clean image; a
    payload filling more is left to :func:`sequential_chi_square_evidence`),
    0 if none is positive. Strongest where the natural split is uneven
    everywhere, as in quantized DCT coefficients (JSteg). ``values`` may be
    the path's :func:`prefix_counts`, shared with other attacks.
    """
    counted = _as_prefix_counts(values, ends)
    n = counted.size
    tested = (counted.ends > 0) & (counted.ends <= max_fraction * n)
    if not tested.any():
        return SequentialEvidence()
    total = counted.total
    best, at = 0.0, 0
    for end, prefix in zip(counted.ends[tested], counted.counts[tested], strict=True):
        rest = total - prefix
        even, odd = prefix[0::2], prefix[1::2]
        rest_even, rest_odd = rest[0::2], rest[1::2]
        keep = (rest_even + rest_odd >= min_rest) & (even + odd > 0)
        if not keep.any():
            continue
        q = (rest_even[keep] + 0.5) / (rest_even[keep] + rest_odd[keep] + 1.0)
        ratio = float(np.sum(even[keep] * np.log(0.5 / q) + odd[keep] * np.log(0.5 / (1.0 - q))))
        if ratio > best:
            best, at = ratio, int(end)
    return SequentialEvidence(best, at / n)
