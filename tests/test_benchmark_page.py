"""docs/benchmarks.md is rendered from its JSON twin, and says where a missed scan target's time went."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture
def bench(monkeypatch):
    """benchmarks/run.py as a module, with its folder importable as when it runs as a script."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_benchmark_page_is_its_json_rendered(bench, tmp_path, monkeypatch):
    out = tmp_path / "benchmarks.md"
    monkeypatch.setattr(sys, "argv", ["run.py", "--render", str(ROOT / "docs" / "benchmarks.json"), "--out", str(out)])
    bench.main()
    assert out.read_text() == (ROOT / "docs" / "benchmarks.md").read_text()  # nobody edited a number by hand


def test_a_missed_scan_ratio_names_the_time_over_budget(bench):
    results = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
    workers = results["run"]["workers"]
    decode = results["decode_only_images_per_s"]
    budget_ms = workers * 1000 / (bench.TARGET_SCAN_RATIO * decode)
    # A scan slower than the budget while the features alone fit it: the page says how much the whole scan took over.
    features = {"all": budget_ms - 1000 / decode - 1.0}
    scan = workers * 1000 / (budget_ms + 0.5)
    missed = dict(results, stream_ms_per_file=features, v4_cold_images_per_s=scan,
                  v4_scan_vs_decode_ratio=scan / decode)
    page = bench.render(missed)
    assert f"{budget_ms + 0.5:.2f} ms (wall time x workers), 0.50 ms over" in page
    assert f"missed by {bench.TARGET_SCAN_RATIO - scan / decode:.3f}x" in page
    # Features that alone exceed the budget: the page says by how much they would have to fall.
    page = bench.render(dict(missed, stream_ms_per_file={"all": budget_ms}))
    assert f"the features alone would have to fall by {1000 / decode:.2f} ms per file" in page
    met = dict(results, v4_cold_images_per_s=2 * decode * bench.TARGET_SCAN_RATIO, v4_scan_vs_decode_ratio=0.2)
    assert "(target >= 0.1x: met)" in bench.render(met)


def test_the_jpeg_calibrations_benchmark_compares_equal_values(bench):
    """Its textbook form (each statistic on whole decoded pixels, OutGuess's flips gathered and scattered) and the
    shipped one give the same values bit for bit on real JPEGs, and the page renders the run's comparison."""
    import jpeg_calibrations

    jpegs = sorted(str(p) for p in (ROOT / "tests" / "data" / "sealwatch").glob("jpeg_*.jpg"))[:3]
    result = jpeg_calibrations.measure(jpegs, repeats=1)
    assert result["files"] == 3 and result["max_abs_difference"] == 0.0
    results = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
    page = bench.render(dict(results, jpeg_calibrations=result))
    assert "## JPEG calibrations of the `dct` stream" in page
    assert f"Textbook / shipped: **{result['textbook_over_shipped']:.2f}x**" in page
    assert "JPEG calibrations" not in bench.render({k: v for k, v in results.items() if k != "jpeg_calibrations"})


def test_the_jpeg_read_benchmark_reads_the_same_coefficients_both_ways(bench):
    import jpeg_read

    paths = sorted(str(p) for p in jpeg_read.DEFAULT_IMAGES.glob("*.jpg"))[:3]
    result = jpeg_read.measure(paths, repeats=1)
    section = "\n".join(jpeg_read.render(result))
    assert section.startswith("## Reading JPEG coefficients")
    if result["in_memory_available"]:  # Linux: both scratch files timed, and they read the same
        assert result["same_coefficients"] and set(result["ms_per_file"]) == set(jpeg_read.WAYS)
        assert "either way: yes" in section
    page = bench.render(dict(json.loads((ROOT / "docs" / "benchmarks.json").read_text()), jpeg_read=result))
    assert section in page


def test_the_blas_threads_benchmark_compares_the_same_files_both_ways(bench, smoke_corpus):
    import blas_threads

    from stegwatch.format.manifest import read_manifest

    paths = [str(smoke_corpus / e.file_path) for e in read_manifest(smoke_corpus).entries[:6]]
    result = blas_threads.measure(paths, workers=2, repeats=1)
    assert result["files"] == 6 and set(result["files_per_s"]) == set(blas_threads.WAYS)
    assert result["max_abs_difference"] < 1e-9  # only the last bits of a split dot product may differ
    section = "\n".join(blas_threads.render(result))
    page = bench.render(dict(json.loads((ROOT / "docs" / "benchmarks.json").read_text()), blas_threads=result))
    assert section in page and "One thread / own threads" in section
