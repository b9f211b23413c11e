"""The feature cache: served by content hash and extractor version, safe under concurrent runs."""

import multiprocessing
import sqlite3

import numpy as np
import pytest

from stegwatch.features import table
from stegwatch.features.cache import FeatureCache, FeatureCacheWarning
from stegwatch.features.table import features_for_paths

from .conftest import png_bytes, random_rgb


def _images(folder, seeds, size=32):
    paths = []
    for seed in seeds:
        path = folder / f"img{seed}.png"
        path.write_bytes(png_bytes(random_rgb(seed, size, size)))
        paths.append(str(path))
    return paths


@pytest.fixture
def counted(monkeypatch):
    """The paths whose features were computed (not served from the cache), in order."""
    computed = []
    real = table.extract_streams
    monkeypatch.setattr(table, "extract_streams", lambda carrier: computed.append(carrier.path) or real(carrier))
    return computed


def test_changed_file_is_recomputed_unchanged_one_is_served_from_cache(tmp_path, counted):
    a, b = _images(tmp_path, (1, 2))
    cache = tmp_path / ".stegwatch" / "features.sqlite"
    first = features_for_paths([a, b], cache=cache)
    assert counted == [a, b] and cache.is_file()
    counted.clear()
    (tmp_path / "img2.png").write_bytes(png_bytes(random_rgb(3, 32, 32)))
    second = features_for_paths([a, b], cache=cache)
    assert counted == [b]
    assert np.array_equal(first[0].vector, second[0].vector)
    assert not np.array_equal(first[1].vector, second[1].vector)
    counted.clear()
    third = features_for_paths([a, b], cache=cache)
    assert counted == [] and np.array_equal(third[1].vector, second[1].vector)
    (tmp_path / "img2.png").write_bytes(b"")
    fourth = features_for_paths([a, b], cache=cache)
    assert fourth[1].error == "empty file (0 bytes)" and fourth[1].vector is None


def test_a_new_extractor_version_invalidates_every_row(tmp_path, counted):
    paths = _images(tmp_path, (4, 5))
    cache = tmp_path / "features.sqlite"
    features_for_paths(paths, cache=FeatureCache(cache, version=3))
    counted.clear()
    features_for_paths(paths, cache=FeatureCache(cache, version=3))
    assert counted == []
    newer = FeatureCache(cache, version=4)
    features_for_paths(paths, cache=newer)
    assert counted == paths
    assert len(newer) == 2 and len(FeatureCache(cache, version=3)) == 0  # old rows dropped on the first write


def _fill(cache_path, paths, queue):
    rows = features_for_paths(paths, workers=1, cache=cache_path)
    queue.put(sum(r.vector is not None for r in rows))


def test_concurrent_runs_share_one_cache_without_losing_rows(tmp_path):
    paths = _images(tmp_path, range(10, 50), size=48)
    cache = tmp_path / "features.sqlite"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    # Four runs at once, overlapping: each writes its rows in batches while the others read and write.
    runs = [context.Process(target=_fill, args=(str(cache), paths[k * 10: k * 10 + 20], queue)) for k in range(4)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
        assert run.exitcode == 0
    assert sorted(queue.get(timeout=5) for _ in runs) == [10, 20, 20, 20]
    with FeatureCache(cache) as store:
        assert len(store) == 40
    assert sqlite3.connect(cache).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_corrupt_cache_file_is_a_warning_and_the_run_goes_on(tmp_path):
    paths = _images(tmp_path, (6,))
    cache = tmp_path / "features.sqlite"
    cache.write_bytes(b"this is not a database" * 100)
    with pytest.warns(FeatureCacheWarning, match="feature cache"):
        rows = features_for_paths(paths, cache=cache)
    assert rows[0].vector is not None


def test_a_wide_row_comes_back_bit_for_bit_at_a_fraction_of_its_size(tmp_path):
    # Rows carry the rich streams (thousands of float32 values): stored compressed, float32 where the values are.
    import shutil
    from pathlib import Path

    from stegwatch.features.streams import feature_names

    fixtures = Path(__file__).parent / "data" / "sealwatch"
    paths = [str(shutil.copy(fixtures / name, tmp_path / name)) for name in ("jpeg_astronaut_q75.jpg", "spatial_moon.png")]
    cache = tmp_path / "features.sqlite"
    fresh = features_for_paths(paths)
    features_for_paths(paths, cache=cache)
    with FeatureCache(cache) as store:
        served = store.get_many([row.sha256 for row in fresh])
    for row in fresh:
        assert row.vector.shape == (len(feature_names()),)
        assert served[row.sha256].dtype == np.float64
        np.testing.assert_array_equal(served[row.sha256], row.vector)
    sizes = dict(sqlite3.connect(cache).execute("SELECT sha256, length(vector) FROM features").fetchall())
    jpeg, png = (sizes[row.sha256] for row in fresh)
    width = len(feature_names())
    assert jpeg < 8 * width / 2 and png < 8 * width / 10  # float64 would be 8 bytes a value
