"""stegwatch.features.rich equals sealwatch, the field's reference, on recorded fixtures (no sealwatch needed).

tests/data/sealwatch/ holds the input images and sealwatch's outputs on them,
recorded by scripts/sealwatch_fixtures.py (which documents how to re-record).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stegwatch.features import rich

FIXTURES = Path(__file__).parent / "data" / "sealwatch"
TOLERANCE = 1e-6
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
SPATIAL = sorted(name for name, entry in MANIFEST["inputs"].items() if entry["kind"] == "spatial")
JPEGS = sorted(name for name, entry in MANIFEST["inputs"].items() if entry["kind"] == "jpeg")


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "features.npz") as arrays:
        return {key: arrays[key] for key in arrays.files}


def _gray(name: str) -> np.ndarray:
    with Image.open(FIXTURES / name) as image:
        return np.asarray(image)


def test_fixture_set_is_what_the_script_recorded():
    import hashlib

    assert len(SPATIAL) >= 8 and len(JPEGS) >= 9
    assert {e["quality"] for e in MANIFEST["inputs"].values() if e["kind"] == "jpeg"} >= {30, 50, 75, 90}
    for name, entry in MANIFEST["inputs"].items():
        assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() == entry["sha256"], name


@pytest.mark.parametrize("name", JPEGS)
def test_quality_read_from_the_file_is_the_recorded_one(name):
    # So a caller that does not know a file's quality gets DCTR's q right from its table.
    from stegwatch.stego.dct import ijg_quality, read_dct

    table = read_dct((FIXTURES / name).read_bytes()).jpeg.qt[0].reshape(-1)
    assert ijg_quality(table) == MANIFEST["inputs"][name]["quality"]


@pytest.mark.parametrize("name", SPATIAL)
def test_spam_equals_sealwatch(name, recorded):
    gray = _gray(name)
    expected = recorded[f"spam/{name.removeprefix('spatial_').removesuffix('.png')}"]
    values = rich.spam(gray)
    assert values.shape == expected.shape == (686,)
    assert np.max(np.abs(values - expected)) <= TOLERANCE


@pytest.mark.parametrize("name", SPATIAL)
def test_srmq1_first_and_second_order_equal_sealwatch(name, recorded):
    gray = _gray(name)
    expected = recorded[f"srmq1/{name.removeprefix('spatial_').removesuffix('.png')}"]
    submodels = rich.srmq1_submodels(gray)
    assert [[k, v.size] for k, v in submodels.items()] == MANIFEST["srmq1_submodels"]
    values = rich.srmq1(gray)
    assert values.shape == expected.shape == (5551,) and values.dtype == np.float32
    assert np.max(np.abs(values.astype(float) - expected)) <= TOLERANCE


@pytest.mark.parametrize("name", JPEGS)
def test_dctr_equals_sealwatch(name, recorded):
    entry = MANIFEST["inputs"][name]
    luminance = rich.decompressed_luminance(FIXTURES / name)
    assert luminance.shape == tuple(entry["shape"])
    values = rich.dctr(luminance, entry["quality"])
    expected = recorded[f"dctr/{name.removeprefix('jpeg_').removesuffix('.jpg')}"]
    assert values.shape == expected.shape == (8000,)
    assert np.max(np.abs(values - expected)) <= TOLERANCE


def test_luminance_from_bytes_path_and_coefficients_agree():
    from stegwatch.stego.dct import read_dct

    path = FIXTURES / JPEGS[0]
    from_path = rich.decompressed_luminance(path)
    np.testing.assert_array_equal(rich.decompressed_luminance(path.read_bytes()), from_path)
    np.testing.assert_array_equal(rich.decompressed_luminance(read_dct(path.read_bytes())), from_path)
    np.testing.assert_array_equal(rich.decompressed_luminance(str(path)), from_path)


def test_dctr_does_not_depend_on_the_chunk_size():
    # chunk_rows: image rows transformed at once (block rows of every phase of the grid)
    luminance = rich.decompressed_luminance(FIXTURES / JPEGS[0])
    quality = MANIFEST["inputs"][JPEGS[0]]["quality"]
    reference = rich.dctr(luminance, quality, chunk_rows=1024)
    for chunk_rows in (8, 24, 40):
        np.testing.assert_array_equal(rich.dctr(luminance, quality, chunk_rows=chunk_rows), reference)


def test_names_match_the_vectors():
    gray = _gray(SPATIAL[0])
    assert len(rich.spam_names()) == len(set(rich.spam_names())) == rich.spam(gray).size
    assert rich.spam_names()[0] == "spam.straight_-3_-3_-3" and rich.spam_names()[1] == "spam.straight_-2_-3_-3"
    assert len(rich.dctr_names()) == len(set(rich.dctr_names())) == 8000
    assert rich.dctr_names()[:6] == ["dctr.0_0_0", "dctr.0_0_1", "dctr.0_0_2", "dctr.0_0_3", "dctr.0_0_4", "dctr.0_1_0"]
    names = rich.srmq1_names()
    assert len(names) == len(set(names)) == rich.srmq1(gray).size == 5551
    assert names[0] == "srmq1.s1_minmax22h_q1_0" and names[-1] == "srmq1.s2_spam12hv_q1_337"


def test_features_are_distributions():
    spam = rich.spam(_gray(SPATIAL[0]))
    assert np.allclose(spam.reshape(2, -1).sum(axis=1), 1.0)
    dctr = rich.dctr(rich.decompressed_luminance(FIXTURES / JPEGS[0]), 75)
    assert np.allclose(dctr.reshape(64 * 25, 5).sum(axis=1), 1.0)


def test_spam_is_the_published_second_order_model():
    # A horizontal ramp: every horizontal difference is -1 (x[p] - x[p+1]), every vertical one 0.
    ramp = np.tile(np.arange(32, dtype=np.uint8), (32, 1))
    values = rich.spam(ramp).reshape(2, 7, 7, 7, order="C")  # [group, last, middle, first]
    straight, diagonal = values
    # Left-right: (-1,-1,-1); right-left: (1,1,1); vertical both ways: (0,0,0); averaged over four.
    assert straight[3 - 1, 3 - 1, 3 - 1] == straight[3 + 1, 3 + 1, 3 + 1] == 0.25
    assert straight[3, 3, 3] == 0.5
    # Diagonal differences are -1 along the main diagonal and +1 along the minor one.
    assert diagonal[2, 2, 2] + diagonal[4, 4, 4] == pytest.approx(1.0)


def test_dctr_quantization_step_follows_the_paper():
    assert rich.dctr_quantization_step(50) == 8.0
    assert rich.dctr_quantization_step(75) == 4.0
    assert rich.dctr_quantization_step(25) == 16.0
    assert rich.dctr_quantization_step(100) == 0.2
    assert rich.dctr_quantization_step(1) == 100


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 4), (7, 9), (8, 8), (9, 15), (13, 250), (31, 17)])
def test_edge_sizes_do_not_crash(shape):
    rng = np.random.default_rng(sum(shape))
    gray = rng.integers(0, 256, size=shape, dtype=np.uint8)
    spam = rich.spam(gray)
    dctr = rich.dctr(gray.astype(float), 75)
    srm = rich.srmq1(gray)
    assert spam.shape == (686,) and dctr.shape == (8000,) and srm.shape == (5551,)
    assert np.all(np.isfinite(spam)) and np.all(np.isfinite(dctr)) and np.all(np.isfinite(srm))
    if min(shape) < 4:  # no triple of differences, no four residuals in a row
        assert not spam.any() and not srm.any()
    if min(shape) < 8:  # no full 8x8 window
        assert not dctr.any()


def test_constant_image():
    gray = np.full((40, 56), 117, dtype=np.uint8)
    spam = rich.spam(gray).reshape(2, 7, 7, 7)
    assert spam[0, 3, 3, 3] == spam[1, 3, 3, 3] == 1.0 and spam.sum() == 2.0
    dctr = rich.dctr(gray.astype(float), 90).reshape(64, 25, 5)
    # Every AC response is zero; the DC response is 8 * (117 - 128) = -88, far above T * q.
    assert np.all(dctr[1:, :, 0] == 1.0)
    assert np.all(dctr[0, :, 4] == 1.0)
    # Every residual is zero: each co-occurrence (horizontal plus vertical: 2 in all) sits in its origin bin, which
    # symmetrization keeps as one value: min plus flipped max (4), or the h and v halves of a spam model (2 each).
    for name, values in rich.srmq1_submodels(gray).items():
        assert values.sum() == 4.0 and np.count_nonzero(values) == (2 if "spam" in name else 1), name


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        rich.spam(np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        rich.dctr(np.zeros(64), 75)
    with pytest.raises(ValueError):
        rich.srmq1(np.zeros((4, 4, 3), dtype=np.uint8))


# ------------------------------------------------------------------- the rich streams of every file's feature row


def _streams(path: Path) -> dict[str, np.ndarray]:
    from stegwatch.features.streams import extract_streams
    from stegwatch.format.files import carrier_from_bytes

    return extract_streams(carrier_from_bytes(path.read_bytes(), str(path)))


@pytest.mark.parametrize("name", [SPATIAL[0], JPEGS[0], "jpeg_astronaut_rgb_q80.jpg"])
def test_rich_streams_are_in_every_row_with_their_shapes(name):
    from stegwatch.features.streams import FEATURE_NAMES, RICH_STREAMS, STREAMS, feature_names

    assert set(RICH_STREAMS) <= set(STREAMS)
    assert len(FEATURE_NAMES["spam"]) == 686 and len(FEATURE_NAMES["dctr"]) == 8000
    assert feature_names(("spam",))[0] == "spam.straight_-3_-3_-3" and feature_names(("dctr",))[-1] == "dctr.63_24_4"
    streams = _streams(FIXTURES / name)
    assert streams["spam"].shape == (686,) and streams["dctr"].shape == (8000,)
    for stream in RICH_STREAMS:  # float32 values (carried in float64 rows), so the cache stores them exactly
        np.testing.assert_array_equal(streams[stream].astype(np.float32).astype(np.float64), streams[stream])
    assert np.isclose(streams["spam"].sum(), 2.0)  # two normalized co-occurrences
    if MANIFEST["inputs"][name]["kind"] == "jpeg":
        assert np.allclose(streams["dctr"].reshape(64 * 25, 5).sum(axis=1), 1.0)
    else:
        assert not streams["dctr"].any()  # DCTR is of JPEG files only


@pytest.mark.parametrize("name", [JPEGS[0], "jpeg_astronaut_rgb_q80.jpg"])
def test_a_jpeg_rows_dctr_is_sealwatchs_with_the_quality_read_from_its_table(name, recorded):
    expected = recorded[f"dctr/{name.removeprefix('jpeg_').removesuffix('.jpg')}"]
    assert np.max(np.abs(_streams(FIXTURES / name)["dctr"] - expected)) <= TOLERANCE


def test_a_jpeg_rows_spam_is_of_its_decompressed_luminance():
    # The luminance DCTR reads, rounded to the 8-bit pixels a decoder gives, not the RGB -> L round trip.
    path = FIXTURES / "jpeg_astronaut_rgb_q80.jpg"
    pixels = np.clip(np.round(rich.decompressed_luminance(path)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(_streams(path)["spam"], rich.spam(pixels).astype(np.float32))


def test_a_spatial_rows_spam_is_sealwatchs(recorded):
    name = SPATIAL[0]
    expected = recorded[f"spam/{name.removeprefix('spatial_').removesuffix('.png')}"]
    assert np.max(np.abs(_streams(FIXTURES / name)["spam"] - expected)) <= TOLERANCE


def _textbook_dctr(luminance: np.ndarray, quality: int, truncation: int = 4) -> np.ndarray:
    """DCTR as the paper states it: each 8x8 DCT basis pattern correlated over the whole image (scipy), |response| / q
    rounded as the reference rounds, clipped to T, a histogram per phase of the 8x8 grid, merged by symmetry."""
    from scipy.signal import correlate2d

    q = rich.dctr_quantization_step(quality)
    basis = rich._dct_matrix()
    x = np.asarray(luminance, dtype=np.float64) - 128
    rows, columns = np.indices((x.shape[0] - 7, x.shape[1] - 7))
    phase = (rows % 8) * 8 + columns % 8
    features = []
    for u in range(8):
        for v in range(8):
            scaled = np.abs(correlate2d(x, np.outer(basis[u], basis[v]), mode="valid")) / q
            fraction = scaled - np.floor(scaled)
            binned = np.minimum(np.floor(scaled) + ((fraction >= 0.5) | np.isclose(fraction, 0.5)), truncation)
            for group in rich._dctr_groups():
                in_group = np.isin(phase, [r * 8 + c for r, c in group])
                hist = np.bincount(binned[in_group].astype(int), minlength=truncation + 1)
                features.extend(hist / max(1, hist.sum()))
    return np.asarray(features)


def test_dctr_equals_the_textbook_computation_also_more_than_255_blocks_wide():
    # Counts of 0/1 bytes are summed 255 blocks at a time; 2,100 columns make 261 or 262 blocks per phase.
    rng = np.random.default_rng(4)
    for shape, quality in (((24, 2100), 90), ((37, 45), 75), ((8, 8), 50), ((7, 30), 95)):
        luminance = np.clip(rng.normal(128, 30, shape), 0, 255)
        values = rich.dctr(luminance, quality)
        if min(shape) < 8:
            assert not values.any()  # no 8x8 window fits
            continue
        assert np.array_equal(values, _textbook_dctr(luminance, quality))
