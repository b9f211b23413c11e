"""Production aggregates over rolling windows: pure functions of event columns.

Per window (and per model version): request rate, latency p50/p95/p99, flag
rate overall, per method and per image format, error rate, the confirmed
false-positive rate among reviewed items with its exact (Clopper-Pearson)
interval, and how far the flag rate of the shortest window sits above the
trailing baseline of the longest one (with a one-sided exact binomial test).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from stegwatch.stats import group_rate_record, rate_record

#: Window name -> seconds. The first is the "current" window, the last the trailing baseline.
DEFAULT_WINDOWS = {"5m": 300, "1h": 3600, "1d": 86400}
#: A flag-rate excess counts as significant below this one-sided p-value.
JUMP_ALPHA = 0.01


def _percentiles(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(values.max())}


def _grouped_flag_rates(keys: np.ndarray, flagged: np.ndarray) -> dict[str, dict]:
    out = {}
    for key in sorted(set(keys.tolist())):
        mask = keys == key
        out[key or "unknown"] = {"events": int(mask.sum()), "flagged": int(flagged[mask].sum()),
                                 "flag_rate": float(flagged[mask].mean())}
    return out


def window_summary(columns: dict[str, np.ndarray], start: float, end: float) -> dict:
    """Aggregates of the events with ``start <= ts < end`` (``columns`` as :meth:`ProductionStore.events_since` gives)."""
    in_window = (columns["ts"] >= start) & (columns["ts"] < end)
    verdict = columns["verdict"][in_window]
    scored = verdict != "error"
    flagged = verdict == "stego"
    n, n_scored = int(in_window.sum()), int(scored.sum())
    label = columns["label"][in_window]
    reviewed_clean = label == "clean"
    reviewed_stego = label == "stego"
    return {
        "events": n,
        "requests_per_s": n / (end - start),
        "latency_ms": _percentiles(columns["latency_ms"][in_window]),
        "errors": int((~scored).sum()),
        "error_rate": float((~scored).mean()) if n else None,
        "flagged": int(flagged.sum()),
        "flag_rate": float(flagged[scored].mean()) if n_scored else None,
        "flag_rate_by_method": {
            (m or "unknown"): {"flagged": int(c), "flag_rate": int(c) / n_scored}
            for m, c in zip(*np.unique(columns["method"][in_window][flagged].astype(str), return_counts=True), strict=True)
        },
        "flag_rate_by_format": _grouped_flag_rates(columns["image_format"][in_window][scored], flagged[scored]),
        "confirmed_false_positive_rate": rate_record(int((flagged & reviewed_clean).sum()), int(reviewed_clean.sum())),
        "confirmed_detection_rate": rate_record(int((flagged & reviewed_stego).sum()), int(reviewed_stego.sum())),
    }


def flag_rate_jump(current: dict, trailing: dict) -> dict:
    """How far the current flag rate sits above the trailing baseline's, with a one-sided exact binomial p-value.

    ``significant_excess`` is the excess when p < :data:`JUMP_ALPHA`, else 0, so
    a rule can put a floor on a jump that is also unlikely to be noise.
    """
    n = current["events"] - current["errors"]
    base_n = trailing["events"] - trailing["errors"]
    if n == 0 or base_n == 0:
        return {"excess": None, "p_value": None, "significant_excess": 0.0, "baseline_rate": None}
    base_rate = trailing["flagged"] / base_n
    excess = current["flag_rate"] - base_rate
    if base_rate >= 1.0:
        p_value = 1.0
    else:
        p_value = float(stats.binomtest(current["flagged"], n, base_rate, alternative="greater").pvalue)
    return {"excess": excess, "p_value": p_value, "baseline_rate": base_rate,
            "significant_excess": excess if p_value < JUMP_ALPHA else 0.0}


def production_summary(columns: dict[str, np.ndarray], now: float, windows: dict[str, float] = DEFAULT_WINDOWS) -> dict:
    """Every window's aggregates over all model versions and per version, plus the flag-rate jump."""
    names = list(windows)
    by_version: dict[str, dict] = {}
    versions = sorted(set(columns["model_version"].tolist()))
    for version in ["all", *versions]:
        mask = np.ones(columns["ts"].shape, dtype=bool) if version == "all" else columns["model_version"] == version
        subset = {k: v[mask] for k, v in columns.items()}
        per_window = {name: window_summary(subset, now - windows[name], now + 1e-9) for name in names}
        current, longest = names[0], names[-1]
        # The trailing baseline: the longest window without the current one.
        trailing = window_summary(subset, now - windows[longest], now - windows[current])
        per_window[current]["flag_rate_jump"] = flag_rate_jump(per_window[current], trailing)
        reviewed_clean = subset["label"] == "clean"
        # Production items are independent images: each reviewed item is its own cover group.
        confirmed = group_rate_record(subset["verdict"][reviewed_clean] == "stego", np.arange(int(reviewed_clean.sum())).astype(str))
        by_version[version] = {"windows": per_window, "confirmed_false_positive_rate_all_time": confirmed,
                               "events_all_time": int(mask.sum())}
    return {"now": now, "windows": dict(windows), "by_model_version": by_version}


def production_metrics_documents(summary: dict) -> list[dict]:
    """One metrics document per model version, in the shape the monitor's rules read.

    ``false_positive_rate`` is the confirmed FPR among reviewed items (all
    time), so the monitor's FPR rules apply to production unchanged; the
    windows are under ``production.windows``.
    """
    documents = []
    for version, record in summary["by_model_version"].items():
        if version == "all":
            continue
        document = {
            "run": {"run_id": f"production@{summary['now']:.0f}", "model": {"name": "production", "version": version}},
            "production": {"windows": record["windows"]},
        }
        if record["confirmed_false_positive_rate_all_time"]["n"]:  # no reviewed items: nothing to judge yet
            document["false_positive_rate"] = record["confirmed_false_positive_rate_all_time"]
        documents.append(document)
    return documents


__all__ = ["DEFAULT_WINDOWS", "flag_rate_jump", "production_metrics_documents", "production_summary", "window_summary"]
