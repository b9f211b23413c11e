"""One monitor run: evaluate, record in the history, check rules, alert, regenerate the dashboard.

The history row is written before any alert is sent, so a failing sink never
loses the run; the dashboard is written after the console and the alerts log
and before email and webhooks, so a slow or hanging server never keeps it
from being written. Each network sink has its own total deadline.
"""

from __future__ import annotations

import logging
import json
from dataclasses import dataclass, field
from pathlib import Path

from stegwatch.evaluation.dataset import dataset_metrics
from stegwatch.format.files import write_text_atomic
from stegwatch.detectors import load_detector, model_path
from stegwatch.errors import BaselineNotFound, ConfigError
from stegwatch.evaluation.evaluate import evaluate, unread_covers
from stegwatch.evaluation.logs import NoTrainingLog, convergence, parse_logs
from stegwatch.features.labels import load_rows
from stegwatch.monitoring import history
from stegwatch.monitoring.dashboard import DEFAULT_DASHBOARD, render_dashboard
from stegwatch.monitoring.rules import Alert, Rule, check, load_rules, read_toml, rules_from_tables, status_of
from stegwatch.monitoring.sinks import AlertConfig, SinkResult, delivered, dispatch_local, dispatch_remote

log = logging.getLogger(__name__)


@dataclass
class MonitorConfig:
    """Rules, alert sinks, the dashboard path and the generalization check, from one TOML file (defaults when absent)."""

    rules: list[Rule]
    alerts: AlertConfig = field(default_factory=AlertConfig)
    dashboard: Path = DEFAULT_DASHBOARD
    #: Leave-one-cover-source-out refits in every run (``[generalization] by_source``).
    by_source: bool = True
    #: A folder to keep those refits in and take them back from (``[generalization] checkpoints``;
    #: :mod:`~stegwatch.evaluation.checkpoints`): a run on an unchanged corpus and model refits nothing. None: none.
    checkpoints: Path | None = None

    @classmethod
    def load(cls, path: str | Path | None = None) -> MonitorConfig:
        """The configuration in ``path`` (read once), or the defaults."""
        return cls.from_toml(read_toml(path) if path is not None else {})

    @classmethod
    def from_toml(cls, data: dict) -> MonitorConfig:
        """From a parsed configuration file: ``[[rule]]`` (default rules when none), ``[alerts]``, ``[dashboard]``,
        ``[generalization]``."""
        rules = rules_from_tables(data["rule"]) if data.get("rule") else load_rules()
        dashboard = data.get("dashboard", {})
        if not isinstance(dashboard, dict) or set(dashboard) - {"path"}:
            raise ConfigError("[dashboard]: the only setting is path")
        general = data.get("generalization", {})
        if (not isinstance(general, dict) or set(general) - {"by_source", "checkpoints"}
                or not isinstance(general.get("by_source", True), bool)
                or not isinstance(general.get("checkpoints", ""), str)):
            raise ConfigError("[generalization]: the settings are by_source (true or false) and checkpoints (a folder)")
        checkpoints = general.get("checkpoints")
        return cls(rules=rules, alerts=AlertConfig.from_dict(data.get("alerts", {})),
                   dashboard=Path(dashboard.get("path", DEFAULT_DASHBOARD)), by_source=general.get("by_source", True),
                   checkpoints=Path(checkpoints) if checkpoints else None)


@dataclass
class MonitorResult:
    metrics: dict
    status: str
    alerts: list[Alert]
    sent: list[Alert]
    sinks: list[SinkResult]
    files: list[Path]
    exit_code: int
    #: How many of ``sent`` reached every sink beyond this machine (email, webhooks; without one, the alerts log):
    #: :func:`~stegwatch.monitoring.sinks.delivered`. Fewer than ``sent``: they are sent again on the next run.
    delivered: int = 0


def _accepted_baseline(model_name: str, db: Path) -> dict | None:
    """The metrics of the run accepted as ``model_name``'s baseline (``stegwatch baseline accept``), if any."""
    run = history.baseline_for(model_name, db)
    return run["metrics"] if run else None


def _named_baseline(spec: str, db: Path) -> dict:
    """The metrics of ``--baseline``: a metrics JSON file or a run id of the history; refused (exit 2) if it is neither.

    Called before the evaluation, so a wrong baseline costs no feature extraction.
    """
    if Path(spec).is_file():
        try:
            metrics = json.loads(Path(spec).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"baseline {spec}: cannot be read as JSON: {exc}") from None
        rate = metrics.get("false_positive_rate") if isinstance(metrics, dict) else None
        if not (isinstance(metrics, dict) and isinstance(metrics.get("run"), dict) and isinstance(rate, dict) and "rate" in rate
                and isinstance(metrics.get("detection_rate_by_method"), dict)):
            raise ConfigError(f"baseline {spec} is not a stegwatch metrics document (the runs/<run id>.json a monitor or "
                              "evaluate run writes): it needs run, false_positive_rate and detection_rate_by_method")
        return metrics
    run = history.get_run(spec, db)
    if run is None:
        raise BaselineNotFound(f"baseline {spec!r} is neither a file nor a run in {db}")
    return run["metrics"]


def monitor(
    model: str | Path,
    corpus: str | Path | None = None,
    *,
    labels: str | Path | None = None,
    allow_in_sample: bool = False,
    by_source: bool | None = None,
    baseline: str | None = None,
    config: MonitorConfig | str | Path | None = None,
    dashboard: str | Path | None = None,
    db: Path = history.DEFAULT_DB,
    fail_on: str | None = None,
    workers: int = 1,
    latency_sample: int = 50,
    command: str = "",
    console=log.warning,
    scheduler: str | None = None,
    split: str | None = None,
    checkpoints: str | Path | None = None,
) -> MonitorResult:
    """One monitor run of ``model`` on ``corpus``: evaluate, record, check the rules, alert, render the dashboard.

    ``config``: a :class:`MonitorConfig`, the path of its TOML file, or None
    (the defaults); ``dashboard`` overrides its dashboard path. The corpus is
    read once, and the history row is written before any alert is sent; the
    dashboard is written before email and webhooks are tried.

    ``labels``: a labelled CSV instead of a corpus (no dataset section);
    ``allow_in_sample``: keep files from covers the model was fitted on (the
    run is marked in-sample); ``by_source``: the leave-one-cover-source-out
    section (default: the configuration's ``[generalization] by_source``);
    ``checkpoints``: a folder where its refits are kept and taken from
    (default: the configuration's ``[generalization] checkpoints``); the run
    records how many were fitted and how many taken back (``refits``).
    """
    config = config if isinstance(config, MonitorConfig) else MonitorConfig.load(config)
    if dashboard is not None:
        config.dashboard = Path(dashboard)
    history.check_database(db)  # a file that is no history database is refused before the evaluation, not after
    named_baseline = _named_baseline(baseline, db) if baseline is not None else None  # likewise a wrong --baseline
    by_source = config.by_source if by_source is None else by_source
    checkpoints = config.checkpoints if checkpoints is None else Path(checkpoints)
    # Read once, for every section; files the evaluation would only drop as in-sample are not read.
    detector = load_detector(model)
    skip = unread_covers(detector, labels=labels, refitted=False, by_source=by_source, allow_in_sample=allow_in_sample)
    data = load_rows(corpus, labels, workers=workers, scheduler=scheduler, split=split, leave_out_covers=skip)
    metrics = evaluate(model, corpus, labels=labels, workers=workers, latency_sample=latency_sample, command=command, data=data,
                       split=split, allow_in_sample=allow_in_sample, by_source=by_source, detector=detector,
                       checkpoints=checkpoints)
    if labels is None:
        metrics["dataset"] = dataset_metrics(corpus, workers=workers, validate=False, duplicates=False, container=False,
                                             manifest=data.manifest)
    path = model_path(model)
    training_log = path.parent / "training_log.jsonl" if path is not None else None
    training_table = None
    if training_log is not None and training_log.exists():
        try:
            training_table = parse_logs([training_log]).table
        except NoTrainingLog:  # a model's broken log costs its convergence summary, not the run
            metrics["training"] = None
    if training_table is not None:
        metrics["training"] = next(iter(convergence(training_table).values()), None)
    base = named_baseline if named_baseline is not None else _accepted_baseline(metrics["run"]["model"]["name"], db)
    alerts = check(metrics, config.rules, base)
    status = status_of(alerts)
    run_id = metrics["run"]["run_id"]
    metrics_file = Path(db).parent / "runs" / f"{run_id}.json"
    write_text_atomic(metrics_file, json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    history.append_run(metrics, status, db)
    sent = [a for a in alerts if config.alerts.resend or history.mark_alert_sent(a.fingerprint, run_id, db)]
    model_label = f"{metrics['run']['model']['name']} {metrics['run']['model']['version']}"
    history.clear_resolved_alerts(model_label, {a.fingerprint for a in alerts}, db)
    log.info("run %s recorded in %s: status %s, %d alert(s), %d new", run_id, db, status, len(alerts), len(sent))
    sinks = dispatch_local(sent, config.alerts, console=console)
    runs = history.runs(db, metrics["run"]["model"]["name"])
    files = render_dashboard(runs, metrics, status, [a.to_json_dict() for a in alerts], config.dashboard, config.rules,
                             training_table, recent_alerts(config.alerts.log_file))
    sinks += dispatch_remote(sent, config.alerts, console=console)
    count = delivered(sinks) if sent else 0
    if sent and count < len(sent):  # a sink did not get them: send them again next run rather than never
        history.forget_alerts_sent([a.fingerprint for a in sent], run_id, db)
    failing = {"critical": ("critical",), "warning": ("warning", "critical")}.get(fail_on or "", ())
    return MonitorResult(metrics, status, alerts, sent, sinks, [*files, metrics_file], 1 if status in failing else 0, count)


def recent_alerts(log_file: str | None, limit: int = 20) -> list[dict]:
    """The last ``limit`` alerts of the alerts log (newest first); unreadable lines are skipped."""
    if not log_file or not Path(log_file).exists():
        return []
    found = []
    for line in Path(log_file).read_text(encoding="utf-8").splitlines()[-limit:]:
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return found[::-1]
