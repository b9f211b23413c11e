"""Prometheus exposition (prometheus-client) of the latest monitor metrics and the production aggregates.

Counters and the latency histogram are all-time totals from the store, per
model version (what Prometheus expects: it computes rates itself); the
rolling-window figures are gauges labelled with the window.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from stegwatch.monitoring import history

#: Latency histogram bucket bounds (milliseconds).
LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


def _totals(db: Path) -> list[tuple]:
    buckets = ", ".join(f"SUM(latency_ms <= {bound})" for bound in LATENCY_BUCKETS_MS)
    with history.connect(db) as connection:
        return connection.execute(
            "SELECT e.model_version, COUNT(*), SUM(e.verdict = 'stego'), SUM(e.verdict = 'error'), SUM(e.latency_ms), "
            "SUM(f.label = 'clean'), SUM(f.label = 'clean' AND e.verdict = 'stego'), "
            f"SUM(f.label = 'stego'), SUM(f.label = 'stego' AND e.verdict = 'stego'), {buckets} "
            "FROM production_events e LEFT JOIN production_feedback f USING (request_id) GROUP BY e.model_version"
        ).fetchall()


def _latest_runs(db: Path) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for run in history.latest_runs(db):  # oldest first: of two runs with the same timestamp, the later id wins
        latest[run["model_name"]] = run
    return latest


class _Collector:
    def __init__(self, db: Path, summary: dict) -> None:
        self.db, self.summary = db, summary

    def collect(self):
        labels = ["model_version"]
        events = CounterMetricFamily("stegwatch_production_events", "Scan events ingested", labels=labels)
        flagged = CounterMetricFamily("stegwatch_production_flagged", "Scan events with a stego verdict", labels=labels)
        errors = CounterMetricFamily("stegwatch_production_errors", "Scan events that failed", labels=labels)
        reviewed_clean = CounterMetricFamily("stegwatch_production_reviewed_clean",
                                             "Scanned items confirmed clean by review", labels=labels)
        false_positives = CounterMetricFamily("stegwatch_production_confirmed_false_positives",
                                              "Items flagged stego that review confirmed clean", labels=labels)
        reviewed_stego = CounterMetricFamily("stegwatch_production_reviewed_stego", "Scanned items confirmed stego by review",
                                             labels=labels)
        detected = CounterMetricFamily("stegwatch_production_confirmed_detections", "Confirmed stego items that were flagged",
                                       labels=labels)
        latency = HistogramMetricFamily("stegwatch_production_latency_ms", "Scan latency reported by the scanner (ms)",
                                        labels=labels)
        for row in _totals(self.db):
            version, n, n_flag, n_err, latency_sum, n_clean, n_fp, n_stego, n_det, *cumulative = row
            for family, value in ((events, n), (flagged, n_flag), (errors, n_err), (reviewed_clean, n_clean),
                                  (false_positives, n_fp), (reviewed_stego, n_stego), (detected, n_det)):
                family.add_metric([version], float(value or 0))
            buckets = [(floatToGoString(bound), float(count or 0)) for bound, count in zip(LATENCY_BUCKETS_MS, cumulative, strict=True)]
            latency.add_metric([version], buckets + [("+Inf", float(n))], sum_value=float(latency_sum or 0.0))
        yield from (events, flagged, errors, reviewed_clean, false_positives, reviewed_stego, detected, latency)

        window_labels = ["model_version", "window"]
        gauges = {
            "requests_per_s": GaugeMetricFamily("stegwatch_production_requests_per_second", "Scan events per second in the window",
                                                labels=window_labels),
            "flag_rate": GaugeMetricFamily("stegwatch_production_flag_rate", "Share of scanned items flagged stego in the window",
                                           labels=window_labels),
            "error_rate": GaugeMetricFamily("stegwatch_production_error_rate", "Share of scans that failed in the window",
                                            labels=window_labels),
            "p95": GaugeMetricFamily("stegwatch_production_latency_p95_ms", "95th percentile scan latency in the window (ms)",
                                     labels=window_labels),
            "fpr": GaugeMetricFamily("stegwatch_production_confirmed_fpr",
                                     "Confirmed false-positive rate among reviewed clean items in the window", labels=window_labels),
            "fpr_upper": GaugeMetricFamily("stegwatch_production_confirmed_fpr_upper_bound",
                                           "Exact 95% upper bound of the confirmed false-positive rate", labels=window_labels),
        }
        for version, record in self.summary.get("by_model_version", {}).items():
            for window, values in record["windows"].items():
                key = [version, window]
                for name, value in (("requests_per_s", values["requests_per_s"]), ("flag_rate", values["flag_rate"]),
                                    ("error_rate", values["error_rate"]), ("p95", values["latency_ms"]["p95"]),
                                    ("fpr", values["confirmed_false_positive_rate"]["rate"])):
                    if value is not None:
                        gauges[name].add_metric(key, float(value))
                if values["confirmed_false_positive_rate"]["n"]:
                    gauges["fpr_upper"].add_metric(key, float(values["confirmed_false_positive_rate"]["upper_bound"]))
        yield from gauges.values()

        run_labels = ["model", "version", "run_id"]
        monitor = {
            "fpr": GaugeMetricFamily("stegwatch_monitor_false_positive_rate", "False-positive rate on clean files, latest monitor run",
                                     labels=run_labels),
            "fpr_upper": GaugeMetricFamily("stegwatch_monitor_false_positive_rate_upper_bound",
                                           "Exact 95% upper bound of that rate", labels=run_labels),
            "detection": GaugeMetricFamily("stegwatch_monitor_detection_rate", "Detection rate on stego files, latest monitor run",
                                           labels=run_labels),
            "auc": GaugeMetricFamily("stegwatch_monitor_roc_auc", "ROC AUC, latest monitor run", labels=run_labels),
            "method": GaugeMetricFamily("stegwatch_monitor_detection_rate_by_method", "Detection rate per method, latest monitor run",
                                        labels=[*run_labels, "method"]),
            "healthy": GaugeMetricFamily("stegwatch_monitor_status", "Latest monitor run status (0 ok, 1 warning, 2 critical)",
                                         labels=run_labels),
        }
        for name, run in _latest_runs(self.db).items():
            metrics = run["metrics"]
            key = [name, run["model_version"], run["run_id"]]
            fpr = metrics.get("false_positive_rate") or {}
            detection = metrics.get("detection_rate") or {}
            for family, value in ((monitor["fpr"], fpr.get("rate")), (monitor["fpr_upper"], fpr.get("upper_bound")),
                                  (monitor["detection"], detection.get("rate")), (monitor["auc"], metrics.get("roc_auc"))):
                if value is not None:
                    family.add_metric(key, float(value))
            for method, record in (metrics.get("detection_rate_by_method") or {}).items():
                if record.get("rate") is not None:
                    monitor["method"].add_metric([*key, method], float(record["rate"]))
            monitor["healthy"].add_metric(key, float({"ok": 0, "warning": 1, "critical": 2}.get(run["status"], 2)))
        yield from monitor.values()


def metrics_text(db: Path, summary: dict) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(Path(db), summary))
    return generate_latest(registry), CONTENT_TYPE_LATEST


__all__ = ["LATENCY_BUCKETS_MS", "metrics_text"]
