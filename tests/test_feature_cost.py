"""Feature cost per file by format family: the same files timed for stegwatch and the anchor, bad files recorded."""

import io

import numpy as np
from PIL import Image

from stegwatch.evaluation.cost import (TIMED_PER_FAMILY, file_family, path_family, stegwatch_feature_cost, timed_files,
                                      warm_up)
from stegwatch.reports.baseline import feature_cost_cells


def test_the_timed_files_are_one_draw_per_family_capped_and_repeatable():
    families = np.asarray(["jpeg"] * 100 + ["spatial"] * 7, dtype=object)
    timed = timed_files(families)
    assert timed == timed_files(families) and timed == sorted(set(timed))
    assert sum(families[i] == "jpeg" for i in timed) == TIMED_PER_FAMILY
    assert sum(families[i] == "spatial" for i in timed) == 7  # a family with fewer files is timed whole
    assert timed_files(families, seed=1) != timed
    assert timed_files(np.asarray([], dtype=object)) == []


def test_cost_per_family_is_measured_and_an_unreadable_file_is_an_error_record(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=85)
    (tmp_path / "b.jpg").write_bytes(buffer.getvalue())
    (tmp_path / "broken.jpg").write_bytes(buffer.getvalue()[:40])
    paths = [tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "broken.jpg"]
    families = np.asarray([path_family(p) for p in paths], dtype=object)
    assert list(families) == ["spatial", "jpeg", "jpeg"] and file_family(b"GIF89a") == "spatial"
    for workers in (1, 2):
        cost = stegwatch_feature_cost([str(p) for p in paths], families, [0, 1, 2], workers=workers)
        assert cost["files_timed"] == {"jpeg": 1, "spatial": 1}
        assert cost["ms_by_family"]["jpeg"] > 0 and cost["ms_by_family"]["spatial"] > 0
        assert len(cost["errors"]) == 1 and cost["errors"][0]["path"].endswith("broken.jpg") and cost["errors"][0]["reason"]


def test_report_cells_put_each_columns_own_cost_and_stegwatchs_fraction_of_the_anchors():
    measured = {"ms_by_family": {"jpeg": 20.0, "spatial": 10.0}, "files_timed": {"jpeg": 40, "spatial": 40}, "errors": []}
    report = {"results": {"stegwatch-v3 3": {"anchor": None}, "stegwatch-v4 4": {"anchor": None},
                          "sealwatch-anchor 1": {"anchor": {"cost_ms_by_family": {"jpeg": 400.0, "spatial": 30.0}}}},
              "feature_cost": {"stegwatch": measured, "workers": 2}}
    cells = feature_cost_cells(report)
    assert cells["cells"]["stegwatch-v4 4"] == measured["ms_by_family"] and cells["cells"]["sealwatch-anchor 1"]["jpeg"] == 400.0
    assert cells["fraction_of_anchor"] == {"jpeg": 0.05, "spatial": 10.0 / 30.0} and cells["workers"] == 2
    assert feature_cost_cells({"results": report["results"]}) == {}  # a report stored before costs were timed
    del report["results"]["sealwatch-anchor 1"]
    assert feature_cost_cells(report)["fraction_of_anchor"] == {}


def test_the_warm_up_runs_once_per_process_and_pipeline_on_both_families_and_survives_a_failure():
    seen = []

    def extract(path):
        seen.append(path_family(path))
        if len(seen) == 1:
            raise ValueError("cannot read this one")

    warm_up("test-pipeline", extract)
    warm_up("test-pipeline", extract)
    assert sorted(seen) == ["jpeg", "spatial"]
