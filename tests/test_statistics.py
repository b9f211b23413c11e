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
)


@pytest.fixture(scope="module")
def luma():
    from stegwatch.corpus.sources import builtin_sources, load_source

    source = next(s for s in builtin_sources() if s.name == "skimage:astronaut")
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
    from stegwatch.stego._dct import nonzero_ac, read_dct

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
