"""Each V3 statistic on constructed cases with known answers."""

import numpy as np
import pytest

from stegwatch.features.statistics import (
    byte_entropy,
    chi_square_attack,
    lsb_flat_inconsistency,
    sample_pair_analysis,
    sequential_chi_square,
    weighted_stego,
    ws_estimate,
)


@pytest.fixture(scope="module")
def luma():
    from stegwatch.corpus.sources import builtin_sources, load_source

    source = next(s for s in builtin_sources() if s.name == "ski-astronaut-collins")
    return np.asarray(load_source(source.path).convert("L").resize((256, 256)))


def _replace(image, rate, seed=0, sequential=False):
    rng = np.random.default_rng(seed)
    flat = image.copy().reshape(-1)
    n = int(rate * flat.size)
    positions = np.arange(n) if sequential else rng.permutation(flat.size)[:n]
    flat[positions] = (flat[positions] & 0xFE) | rng.integers(0, 2, n)
    return flat.reshape(image.shape)


def test_chi_square_fully_embedded_is_near_one_clean_near_zero(luma):
    assert chi_square_attack(luma) < 0.01
    assert chi_square_attack(_replace(luma, 1.0)) > 0.9


def test_sequential_chi_square_finds_the_embedded_prefix(luma):
    _, clean_fraction = sequential_chi_square(luma)
    _, half = sequential_chi_square(_replace(luma, 0.5, sequential=True))
    _, full = sequential_chi_square(_replace(luma, 1.0, sequential=True))
    assert clean_fraction < 0.3
    assert 0.35 <= half <= 0.65
    assert full == 1.0


@pytest.mark.parametrize("estimator", [sample_pair_analysis, weighted_stego])
def test_payload_estimators_track_the_embedded_rate(luma, estimator):
    rates = [0.0, 0.25, 0.5, 0.75, 1.0]
    estimates = [estimator(_replace(luma, r, seed=3)) for r in rates]
    assert all(b > a for a, b in zip(estimates, estimates[1:], strict=False))
    for rate, estimate in zip(rates, estimates, strict=True):
        assert abs(estimate - rate) < 0.15, (rate, estimate)


def test_lsb_flat_inconsistency():
    flat = np.full((32, 32), 255, dtype=np.uint8)
    assert lsb_flat_inconsistency(flat) == 0.0
    rng = np.random.default_rng(0)
    written = (flat & 0xFE) | rng.integers(0, 2, flat.shape).astype(np.uint8)
    assert 0.4 < lsb_flat_inconsistency(written) < 0.6


def test_byte_entropy_bounds():
    assert byte_entropy(b"") == 0.0
    assert byte_entropy(b"a" * 100) == 0.0
    assert byte_entropy(bytes(range(256)) * 4) == pytest.approx(8.0)


def test_dct_chi_square_and_calibration_separate_jsteg_and_f5_from_clean():
    from stegwatch.features.streams import FEATURE_NAMES, extract_streams
    from stegwatch.format.files import carrier_from_bytes
    from stegwatch.stego import EmbedOptions, get_method
    from stegwatch.stego.dct import nonzero_ac, read_dct

    from .conftest import astronaut_jpeg

    cover = astronaut_jpeg()
    names = FEATURE_NAMES["dct"]
    nzac = nonzero_ac(read_dct(cover).Y)

    def dct_features(data):
        return dict(zip(names, extract_streams(carrier_from_bytes(data))["dct"], strict=True))

    clean = dct_features(cover)
    jsteg_capacity = get_method("jsteg").capacity(carrier_from_bytes(cover))
    jsteg = dct_features(get_method("jsteg").embed(carrier_from_bytes(cover), b"j" * jsteg_capacity, EmbedOptions()).data)
    f5 = dct_features(get_method("f5").embed(carrier_from_bytes(cover), b"f" * int(0.4 * nzac / 8), EmbedOptions(key="1")).data)
    assert clean["jsteg_chi2"] < 0.05 < 0.5 < jsteg["jsteg_chi2"]
    assert f5["f5_calibration_beta"] > clean["f5_calibration_beta"] + 0.02


# Textbook forms of the vectorized statistics: the fast versions must give the same numbers bit for bit,
# so the shipped models (trained on FEATURE_VERSION 3 values) stay valid.
def _textbook_chi_square(values):
    from scipy import stats

    values = np.asarray(values).reshape(-1)
    if values.size == 0:
        return 0.0
    offset = int(values.min())
    offset -= offset % 2
    hist = np.bincount((values - offset).astype(np.int64))
    if hist.size % 2:
        hist = np.append(hist, 0)
    even, odd = hist[0::2].astype(float), hist[1::2].astype(float)
    expected = (even + odd) / 2
    keep = expected >= 5.0
    if keep.sum() < 2:
        return 0.0
    statistic = float(np.sum((even[keep] - expected[keep]) ** 2 / expected[keep]))
    return float(stats.chi2.sf(statistic, df=int(keep.sum()) - 1))


def _textbook_spa(channel):
    x = channel.astype(np.int64)
    u, v = x[:, :-1].reshape(-1), x[:, 1:].reshape(-1)
    n = u.size
    v_even = (v % 2) == 0
    big_x = np.count_nonzero((v_even & (u < v)) | (~v_even & (u > v)))
    big_y = np.count_nonzero((v_even & (u > v)) | (~v_even & (u < v)))
    big_k = np.count_nonzero((u // 2) == (v // 2))
    a, b, c = 2.0 * big_k, 2.0 * (2 * big_x - n), float(big_y - big_x)
    if a == 0:
        return 0.0
    disc = b * b - 4 * a * c
    beta = -b / (2 * a) if disc < 0 else min(((-b + np.sqrt(disc)) / (2 * a), (-b - np.sqrt(disc)) / (2 * a)), key=abs)
    return float(np.clip(2 * beta, 0.0, 1.0))


def _textbook_ws(channel):
    x = channel.astype(np.float64)
    if x.shape[0] < 3 or x.shape[1] < 3:
        return 0.0
    centre = x[1:-1, 1:-1]
    neighbours = np.stack([x[:-2, 1:-1], x[2:, 1:-1], x[1:-1, :-2], x[1:-1, 2:]])
    weights = 1.0 / (5.0 + neighbours.var(axis=0))
    weights /= weights.sum()
    flipped = centre + 1 - 2 * (centre % 2)
    return float(np.clip(2.0 * np.sum(weights * (centre - flipped) * (centre - neighbours.mean(axis=0))), 0.0, 1.0))


def _channels(luma):
    rng = np.random.default_rng(7)
    yield luma
    yield _replace(luma, 0.4, seed=3)
    yield _replace(luma, 1.0, seed=4)
    yield rng.integers(0, 256, (37, 91), dtype=np.uint8)
    yield np.full((20, 20), 128, dtype=np.uint8)
    yield np.zeros((2, 2), dtype=np.uint8)
    yield np.tile(np.arange(256, dtype=np.uint8), (3, 1))


def test_vectorized_statistics_equal_their_textbook_forms_exactly(luma):
    for channel in _channels(luma):
        assert sample_pair_analysis(channel) == _textbook_spa(channel)
        assert weighted_stego(channel) == _textbook_ws(channel)
        assert chi_square_attack(channel) == _textbook_chi_square(channel)
        flat = channel.reshape(-1)
        ps, fraction = sequential_chi_square(flat, steps=10)
        ends = [max(2, int(flat.size * (i + 1) / 10)) for i in range(10)]
        assert ps.tolist() == [_textbook_chi_square(flat[:end]) for end in ends]
        expected_run = next((i for i, p in enumerate(ps) if p <= 0.5), 10)
        assert fraction == expected_run / 10
    signed = np.random.default_rng(1).integers(-40, 40, 5000)
    assert chi_square_attack(signed) == _textbook_chi_square(signed)


def _textbook_palette_ws_terms(indices, palette, truncate=3.0):
    """palette_ws_terms in floating point as its docstring states it: KB prediction of the colours, the residual
    projected on the twin direction, weights from the variance of the neighbours' twin-pair mean colours."""
    def kb(x):
        up, down, left, right = x[:-2, 1:-1], x[2:, 1:-1], x[1:-1, :-2], x[1:-1, 2:]
        edges = up + down + left + right
        corners = x[:-2, :-2] + x[:-2, 2:] + x[2:, :-2] + x[2:, 2:]
        variance = (up * up + down * down + left * left + right * right) / 4.0 - (edges / 4.0) ** 2
        return 0.5 * edges - 0.25 * corners, variance

    height, width = indices.shape
    weights, terms = np.zeros((height, width)), np.zeros((height, width))
    if height >= 3 and width >= 3:
        colours = np.asarray(palette, dtype=np.float64)
        x = colours[indices]
        prediction, _ = kb(x)
        _, variance = kb((x + colours[indices ^ 1]) / 2)
        direction = x[1:-1, 1:-1] - colours[indices[1:-1, 1:-1] ^ 1]
        distance = np.einsum("ijk,ijk->ij", direction, direction)
        projection = np.einsum("ijk,ijk->ij", direction, x[1:-1, 1:-1] - prediction)
        ratio = np.divide(projection, distance, out=np.zeros_like(projection), where=distance > 0)
        weights[1:-1, 1:-1] = (distance > 0) / (5.0 + variance.mean(axis=2))
        terms[1:-1, 1:-1] = np.clip(ratio, -truncate, truncate)
    return weights.reshape(-1), terms.reshape(-1)


def test_palette_ws_terms_in_integers_equal_the_floating_point_form_bit_for_bit(luma):
    from stegwatch.features.statistics import palette_ws_terms

    rng = np.random.default_rng(11)
    cases = [(luma, np.repeat(np.arange(256.0)[:, None], 3, axis=1))]  # a grey palette over a photograph
    for shape, entries in (((64, 48), 256), ((9, 130), 16), ((3, 3), 2), ((2, 40), 4), ((40, 7), 64)):
        palette = rng.integers(0, 256, (entries, 3)).astype(float)
        palette[2::4] = palette[3::4]  # some twins of the same colour (weigh 0)
        cases.append((rng.integers(0, entries, shape).astype(np.uint8), palette))
    for indices, palette in cases:
        for truncate in (3.0, 1e9):
            fast, textbook = palette_ws_terms(indices, palette, truncate=truncate), _textbook_palette_ws_terms(
                indices, palette, truncate)
            assert all(np.array_equal(a, b) for a, b in zip(fast, textbook, strict=True))
    with pytest.raises(ValueError, match="integers 0-255"):
        palette_ws_terms(cases[1][0], cases[1][1] + 0.5)


def test_attacks_on_shared_prefix_counts_equal_the_attacks_on_the_values(luma):
    from stegwatch.features.statistics import (
        prefix_counts,
        prefix_ends,
        sequential_chi_square_evidence,
        sequential_pairs_likelihood_ratio,
    )

    rng = np.random.default_rng(5)
    paths = [_replace(luma, 0.3, sequential=True).reshape(-1), rng.integers(-60, 60, 20000).astype(np.int16),
             np.zeros(0, dtype=np.uint8), luma[:2, :100].reshape(-1)]
    for path in paths:
        counted = prefix_counts(path)
        assert sequential_chi_square_evidence(counted) == sequential_chi_square_evidence(path)
        assert sequential_pairs_likelihood_ratio(counted) == sequential_pairs_likelihood_ratio(path)
        ends = prefix_ends(path.size)[::3]  # ends that stop short of the whole path: the total still counts it all
        assert sequential_pairs_likelihood_ratio(prefix_counts(path, ends)) == sequential_pairs_likelihood_ratio(path, ends=ends)
        assert prefix_counts(path, ends).total.sum() == path.size
    with pytest.raises(ValueError, match="fixed"):
        sequential_chi_square_evidence(prefix_counts(paths[0]), ends=np.asarray([10]))


def test_matching_statistics_given_their_shared_parts_are_unchanged(luma):
    from stegwatch.features.statistics import adjacency_hcf_com, calibrated_hcf_com, downsample_2x2, hcf_com

    for channel in _channels(luma):
        down = downsample_2x2(channel)
        assert calibrated_hcf_com(channel, downsampled=down, com=hcf_com(channel)) == calibrated_hcf_com(channel)
        assert adjacency_hcf_com(channel, downsampled=down) == adjacency_hcf_com(channel)


def test_blas_runs_on_one_thread_inside_and_as_before_outside():
    from threadpoolctl import threadpool_info

    from stegwatch.parallel import one_blas_thread

    def threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = threads()
    with one_blas_thread():
        assert set(threads()) <= {1}
    assert threads() == before


def test_the_ws_estimate_is_the_same_whatever_the_blas_threads():
    """A multithreaded BLAS dot product splits the sum among its threads, which changes its last bits: the estimate must
    not depend on the machine's cores."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    weights, terms = rng.random(300_000), rng.random(300_000) - 0.5
    found = set()
    for threads in (1, 2, 4):
        with threadpool_limits(limits=threads, user_api="blas"):
            found.add(ws_estimate(weights, terms))
    assert len(found) == 1
