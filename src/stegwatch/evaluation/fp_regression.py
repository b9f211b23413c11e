"""False-positive regression: every false positive on clean files, compared with a stored baseline.

A false positive is identified by the file's SHA-256 (so a renamed file is
the same file). The verdict fails on any new false positive, or when the
one-sided upper bound of the false-positive rate over cover groups exceeds
the limit. Files from covers the model was fitted on are left out (counted).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from stegwatch.detectors import load_detector
from stegwatch.features.corpus import load_corpus_features
from stegwatch.stats import DEFAULT_TARGET_FPR, group_rate_record
from stegwatch.format.files import write_text_atomic

DEFAULT_LIMIT = DEFAULT_TARGET_FPR


def false_positives(model: str | Path, corpus: str | Path, *, threshold: float | None = None, workers: int = 1,
                    allow_in_sample: bool = False) -> tuple[list[dict], dict, object, dict]:
    """(false positives sorted by category and score, FPR record, detector, in-sample record) on the corpus's clean files.

    Files from covers the model was trained or calibrated on are left out and
    counted, unless ``allow_in_sample``.
    """
    from stegwatch.evaluation.evaluate import exclude_in_sample

    detector = load_detector(model, threshold)
    data, in_sample = exclude_in_sample(detector, load_corpus_features(corpus, workers=workers), allow_in_sample)
    clean = [i for i, e in enumerate(data.entries) if e.label == "clean"]
    if not clean:
        return [], group_rate_record(np.zeros(0, dtype=bool), []), detector, in_sample
    scores, _, _ = detector.score_features(data.features[clean])
    flagged = scores >= detector.threshold
    fps = [
        {"file_path": data.entries[i].file_path, "sha256": data.entries[i].sha256, "category": data.entries[i].category,
         "score": round(float(scores[k]), 6)}
        for k, i in enumerate(clean) if flagged[k]
    ]
    fps.sort(key=lambda r: (r["category"], -r["score"], r["file_path"]))
    return fps, group_rate_record(flagged, data.groups[clean]), detector, in_sample


def read_baseline(path: Path) -> list[dict]:
    """The false positives of a baseline written by ``--update-baseline``; ValueError naming what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"baseline {path}: cannot be read as JSON: {exc}") from None
    rows = data.get("false_positives") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("sha256", "file_path", "category"))
            and isinstance(r.get("score", 0), int | float) for r in rows):
        raise ValueError(f"baseline {path} is not a false-positive baseline: expected an object whose false_positives "
                         "is a list of records with sha256, file_path, category and score (write one with --update-baseline)")
    return rows


def compare(current: list[dict], baseline: list[dict]) -> dict[str, list[dict]]:
    """New, fixed and unchanged false positives, matched by file hash."""
    now = {r["sha256"]: r for r in current}
    before = {r["sha256"]: r for r in baseline}
    return {
        "new": [now[k] for k in now.keys() - before.keys()],
        "fixed": [before[k] for k in before.keys() - now.keys()],
        "unchanged": [now[k] for k in now.keys() & before.keys()],
    }


def fp_regression(
    model: str | Path,
    corpus: str | Path,
    *,
    baseline: Path | None = None,
    update_baseline: bool = False,
    limit: float = DEFAULT_LIMIT,
    threshold: float | None = None,
    workers: int = 1,
    command: str = "",
    allow_in_sample: bool = False,
) -> dict:
    """Run the regression; returns the report (``failed`` says whether CI should fail).

    Raises ValueError for a baseline that is not one (before any feature is computed).
    """
    previous: list[dict] = read_baseline(baseline) if baseline is not None and baseline.exists() else []
    current, fpr, detector, in_sample = false_positives(model, corpus, threshold=threshold, workers=workers,
                                                       allow_in_sample=allow_in_sample)
    changes = compare(current, previous)
    for key in changes:
        changes[key].sort(key=lambda r: (r["category"], -r.get("score", 0), r["file_path"]))
    by_category: dict[str, int] = {}
    for row in current:
        by_category[row["category"]] = by_category.get(row["category"], 0) + 1
    reasons = []
    if previous or (baseline is not None and baseline.exists()):
        if changes["new"]:
            reasons.append(f"{len(changes['new'])} new false positive(s)")
    if fpr["group_upper_bound"] > limit:
        reasons.append(f"FPR upper bound {fpr['group_upper_bound']:.4%} (over {fpr['n_groups']} cover groups) exceeds the limit {limit:.4%}")
    report = {
        "model": {"name": detector.name, "version": detector.version, "threshold": detector.threshold},
        "corpus": str(corpus),
        "command": command,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "false_positive_rate": fpr,
        "in_sample": bool(in_sample["files"] and in_sample["kept"]),
        "excluded_in_sample": in_sample,
        "limit": limit,
        "false_positives": current,
        "by_category": dict(sorted(by_category.items())),
        "baseline": str(baseline) if baseline else None,
        "changes": changes,
        "failed": bool(reasons),
        "reasons": reasons,
    }
    if update_baseline and baseline is not None:
        stored = {k: report[k] for k in ("model", "corpus", "command", "timestamp", "false_positive_rate", "false_positives")}
        write_text_atomic(baseline, json.dumps(stored, indent=2, sort_keys=True) + "\n")
    return report


__all__ = ["compare", "false_positives", "fp_regression", "read_baseline"]
