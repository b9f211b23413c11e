"""docs/detectors.md and the README's quality block are the shipped model cards rendered, with honest verdicts."""

from __future__ import annotations

import shutil
from pathlib import Path

from stegwatch.detectors import MODELS_DIR
from stegwatch.reports.model_quality import fpr_verdict, render_documents

ROOT = Path(__file__).parents[1]


def test_the_committed_quality_documents_are_the_shipped_cards_rendered(tmp_path):
    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    render_documents(MODELS_DIR / "v3", MODELS_DIR / "v4", tmp_path / "detectors.md", readme)
    assert (tmp_path / "detectors.md").read_text() == (ROOT / "docs" / "detectors.md").read_text()
    assert readme.read_text() == (ROOT / "README.md").read_text()  # nobody edited a number by hand


def test_a_false_positive_rate_is_met_only_when_its_upper_bound_is_below_the_target():
    row = {"rate": 0.0, "count": 0, "n": 1774, "n_groups": 122, "group_upper_bound": 0.0472}
    assert fpr_verdict(row, 0.0005).startswith("not proven: the point estimate is below it, the upper bound is 4.72%")
    assert fpr_verdict(dict(row, group_upper_bound=0.0004, n_groups=9000), 0.0005).startswith("met (upper bound 0.040%")
    assert fpr_verdict(dict(row, rate=0.002, count=4), 0.0005) == "missed"
    assert fpr_verdict({"rate": None}, 0.0005) == "not measured"


def test_the_quality_page_lists_v4s_metadata_evidence_cuts_from_its_card():
    import json

    card = json.loads((MODELS_DIR / "v4" / "model_card.json").read_text())
    page = (ROOT / "docs" / "detectors.md").read_text()
    record = card["metadata_evidence"]
    assert record and "V4's metadata evidence" in page
    for key, cut in record["statistics"].items():
        assert f"| `{key}` | `{cut['method']}` | {cut['beyond']:.4f} |" in page
