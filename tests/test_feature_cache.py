import numpy as np

from stegwatch.features import table
from stegwatch.features.table import features_for_paths

from .conftest import png_bytes, random_rgb


def test_changed_file_is_recomputed_unchanged_one_is_served_from_cache(tmp_path, monkeypatch):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(png_bytes(random_rgb(1, 32, 32)))
    b.write_bytes(png_bytes(random_rgb(2, 32, 32)))
    cache = tmp_path / "cache.npz"
    first = features_for_paths([str(a), str(b)], cache_file=cache)
    computed = []
    real = table.extract_streams
    monkeypatch.setattr(table, "extract_streams", lambda carrier: computed.append(carrier.path) or real(carrier))
    b.write_bytes(png_bytes(random_rgb(3, 32, 32)))
    second = features_for_paths([str(a), str(b)], cache_file=cache)
    assert computed == [str(b)]
    assert np.array_equal(first[0].vector, second[0].vector)
    assert not np.array_equal(first[1].vector, second[1].vector)
    b.write_bytes(b"")
    third = features_for_paths([str(a), str(b)], cache_file=cache)
    assert third[1].error == "empty file (0 bytes)" and third[1].vector is None
