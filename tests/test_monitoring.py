"""Monitoring: history, rules, alert sinks (real SMTP and HTTP on 127.0.0.1), dashboard, CLI."""

import json
import multiprocessing
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stegwatch.cli import app
from stegwatch.detectors import MODELS_DIR
from stegwatch.monitoring import history
from stegwatch.monitoring.monitor import MonitorConfig, monitor
from stegwatch.monitoring.rules import Rule, check, load_rules, resolve

runner = CliRunner()


def _config(tmp_path: Path, *, by_source: bool = False, **alerts) -> MonitorConfig:
    """The default configuration writing under ``tmp_path``.

    ``by_source`` is off unless a test asks: the leave-one-source-out refits are most of a V4 run's time, and only the
    dashboard test below reads their section.
    """
    config = MonitorConfig.load()
    config.by_source = by_source
    config.dashboard = tmp_path / "dash" / "performance_dashboard.md"
    config.alerts.log_file = str(tmp_path / "alerts.log")
    for key, value in alerts.items():
        setattr(config.alerts, key, value)
    return config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lowered_model(tmp_path: Path, threshold: float) -> Path:
    """A copy of the shipped V4 whose card sets a lower threshold: a real regression, not a typed number."""
    folder = tmp_path / "v4-lowered"
    shutil.copytree(MODELS_DIR / "v4", folder)
    card = json.loads((folder / "model_card.json").read_text())
    card["threshold"]["value"] = threshold
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder / "model.onnx"


def test_rules_resolve_keys_with_dots_and_wildcards():
    document = {"a": {"lsb.rgb": {"rate": 0.5}, "alpha": {"rate": 1.0}}}
    assert resolve(document, "a.*.rate") == {("a", "lsb.rgb", "rate"): 0.5, ("a", "alpha", "rate"): 1.0}
    rule = Rule(name="r", metric="a.*.rate", condition="lt", threshold=0.9, severity="warning")
    metrics = {"run": {"run_id": "x", "model": {"name": "m", "version": "1"}}, **document}
    alerts = check(metrics, [rule])
    assert [a.metric for a in alerts] == ["a.lsb.rgb.rate"]
    assert {r.name for r in load_rules()} >= {"fpr-point-estimate", "fpr-upper-bound", "method-detection-drop", "latency-p95"}


def _monitor_in_process(corpus: str, folder: str, name: str) -> None:
    config = _config(Path(folder) / name)
    monitor("v3", corpus, config=config, db=Path(folder) / "history.db", latency_sample=3, console=lambda line: None)


def test_two_concurrent_monitor_runs_both_land(smoke_corpus, tmp_path):
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_monitor_in_process, args=(str(smoke_corpus), str(tmp_path), f"m{i}")) for i in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(300)
        assert process.exitcode == 0
    runs = history.runs(tmp_path / "history.db")
    assert len(runs) == 2 and len({r["run_id"] for r in runs}) == 2
    assert len(history.export_jsonl(tmp_path / "history.db").splitlines()) == 2
    for run in runs:
        assert json.loads((tmp_path / "runs" / f"{run['run_id']}.json").read_text())["run"]["run_id"] == run["run_id"]


def test_failing_sink_is_retried_reported_and_loses_nothing(smoke_corpus, tmp_path):
    closed_port = _free_port()
    config = _config(tmp_path, email={"host": "127.0.0.1", "port": closed_port, "sender": "a@b.c", "recipients": ["d@e.f"],
                                      "timeout": 2})
    model = _lowered_model(tmp_path, 0.05)
    result = monitor(model, smoke_corpus, config=config, db=tmp_path / "h.db", latency_sample=5, console=lambda line: None)
    email = next(s for s in result.sinks if s.sink == "email")
    assert email.error and email.attempts == 2 and email.sent == 0
    assert history.get_run(result.metrics["run"]["run_id"], tmp_path / "h.db") is not None
    assert (tmp_path / "alerts.log").read_text().count("\n") == len(result.sent) > 0
    # The log took them, the email did not: not delivered, so the next run sends them again (to the email too).
    assert result.delivered == 0
    again = monitor(model, smoke_corpus, config=config, db=tmp_path / "h.db", latency_sample=5, console=lambda line: None)
    assert {a.fingerprint for a in again.sent} == {a.fingerprint for a in result.sent}


class _Collector(BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers["Content-Length"])
        type(self).bodies.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_a_real_regression_fires_the_fpr_alert_by_smtp_and_webhook(smoke_corpus_without_lookalikes, tmp_path, monkeypatch):
    # The shipped V4 predates the metadata and trailer look-alike negatives (issue 14) and flags most of
    # them, so its first run would already be critical; the alert path is tested where it was trained.
    corpus = smoke_corpus_without_lookalikes
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Inbox(Message):
        def handle_message(self, message):
            received.append(message)

    smtp_port = _free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TEST_SLACK_URL", f"http://127.0.0.1:{server.server_port}/slack")
    monkeypatch.setenv("TEST_AM_URL", f"http://127.0.0.1:{server.server_port}/alertmanager")
    config_file = tmp_path / "monitor.toml"
    config_file.write_text(f"""
[dashboard]
path = "{tmp_path / 'dash' / 'performance_dashboard.md'}"
[generalization]
by_source = false
[alerts]
log_file = "{tmp_path / 'alerts.log'}"
[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
sender = "stegwatch@example.org"
recipients = ["oncall@example.org"]
starttls = "auto"
[[alerts.webhook]]
url_env = "TEST_SLACK_URL"
format = "slack"
[[alerts.webhook]]
url_env = "TEST_AM_URL"
format = "alertmanager"
""")
    db = tmp_path / "h.db"
    try:
        good = runner.invoke(app, ["monitor", "--model-version", "v4", "--dataset-path", str(corpus), "--config", str(config_file),
                                   "--db", str(db), "--fail-on", "critical", "--latency-sample", "5", "--workers", "1", "--json"])
        assert good.exit_code == 0, good.output
        good_run = json.loads(good.stdout)
        assert not [a for a in good_run["alerts"] if a["rule"] == "fpr-point-estimate"]
        assert runner.invoke(app, ["baseline", "accept", good_run["run_id"], "--db", str(db)]).exit_code == 0
        received.clear()
        _Collector.bodies.clear()
        bad = runner.invoke(app, ["monitor", "--model-version", str(_lowered_model(tmp_path, 0.02)), "--dataset-path", str(corpus),
                                  "--config", str(config_file), "--db", str(db), "--fail-on", "critical", "--latency-sample", "5",
                                  "--workers", "1", "--json"])
    finally:
        controller.stop()
        server.shutdown()
    assert bad.exit_code == 1, bad.output
    report = json.loads(bad.stdout)
    fpr_alerts = [a for a in report["alerts"] if a["rule"] == "fpr-point-estimate"]
    assert fpr_alerts and fpr_alerts[0]["value"] > 0.0005 and fpr_alerts[0]["n"] > 0
    assert received and "fpr-point-estimate" in received[0].get_payload()
    assert received[0]["To"] == "oncall@example.org"
    paths = {path for path, _ in _Collector.bodies}
    assert paths == {"/slack", "/alertmanager"}
    slack = next(body for path, body in _Collector.bodies if path == "/slack")
    assert "fpr-point-estimate" in slack["text"]
    alertmanager = next(body for path, body in _Collector.bodies if path == "/alertmanager")
    assert {a["labels"]["alertname"] for a in alertmanager} >= {"fpr-point-estimate"}
    assert len(history.runs(db)) == 2
    exported = runner.invoke(app, ["history", "export", "--db", str(db)])
    assert len(exported.stdout.splitlines()) == 2
    assert "secret" not in (tmp_path / "alerts.log").read_text()


def test_second_run_adds_a_trend_point_and_dashboards_are_written(smoke_corpus, tmp_path):
    config = _config(tmp_path)
    first = monitor("v3", smoke_corpus, config=config, db=tmp_path / "h.db", latency_sample=5, console=lambda line: None)
    trend_before = (tmp_path / "dash" / "trend_fpr.png").read_bytes()
    second = monitor("v3", smoke_corpus, config=config, db=tmp_path / "h.db", latency_sample=5, console=lambda line: None)
    markdown = config.dashboard.read_text()
    assert "2 run(s) of this model" in markdown and second.metrics["run"]["run_id"] in markdown
    assert (tmp_path / "dash" / "trend_fpr.png").read_bytes() != trend_before
    html = config.dashboard.with_suffix(".html").read_text()
    assert 'id="metrics"' in html and "data:image/png;base64," in html and "http" not in html.split("<body>")[1].split("data:image")[0]
    assert first.sent and not second.sent  # the same alerts are not re-sent while the condition persists
    # Another model's run must not make this model's persisting alerts look new.
    monitor("v4", smoke_corpus, config=config, db=tmp_path / "h.db", latency_sample=3, console=lambda line: None)
    third = monitor("v3", smoke_corpus, config=config, db=tmp_path / "h.db", latency_sample=3, console=lambda line: None)
    assert not third.sent
    assert "Alerts log (most recent first)" in markdown and first.sent[0].rule in markdown


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)")
def test_dashboard_renders_in_headless_chromium(smoke_corpus, tmp_path):
    config = _config(tmp_path, by_source=True)
    monitor("v4", smoke_corpus, config=config, db=tmp_path / "h.db", latency_sample=5, console=lambda line: None)
    html = config.dashboard.with_suffix(".html")
    profile = tmp_path / "chromium-profile"
    args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"]
    dom = subprocess.run([*args, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<table id="metrics">' in dom.stdout and "False-positive rate (all clean)" in dom.stdout
    assert dom.stdout.count('class="plot"') >= 3
    assert '<table id="generalization">' in dom.stdout and "pypi:scikit-image" in dom.stdout  # the refits' section
    shot = subprocess.run([*args, f"--screenshot={tmp_path / 'shot.png'}", "--window-size=1200,2400", html.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG"


def test_detection_drop_reports_an_exact_paired_test():
    from stegwatch.evaluation.metrics import mcnemar_exact

    files = [f"{i:016x}" for i in range(100)]
    before = {"evaluated": files, "flagged": files[:90]}
    after = {"evaluated": files, "flagged": files[:60]}
    test = mcnemar_exact(before, after)
    assert (test["only_before"], test["only_after"], test["paired_files"]) == (30, 0, 100) and test["p_value"] < 1e-6
    run = {"run_id": "r", "model": {"name": "m", "version": "1"}}
    metrics = {"run": run, "detection_rate_by_method": {"lsb.rgb": {"rate": 0.6}}, "decisions": {"method:lsb.rgb": after}}
    baseline = {"run": run, "detection_rate_by_method": {"lsb.rgb": {"rate": 0.9}}, "decisions": {"method:lsb.rgb": before}}
    rules = [r for r in load_rules() if r.name == "method-detection-drop"]
    alert = check(metrics, rules, baseline)[0]
    assert alert.paired_test["p_value"] < 0.05 and "significant" in alert.message()
    assert mcnemar_exact(before, before)["p_value"] == 1.0
    # With cover groups recorded, the drop is judged by a paired cluster bootstrap: 30 lost files in
    # 3 of 10 groups are a real but far less certain drop than 30 independent files would be.
    groups = [f"photo:{i // 10}" for i in range(100)]
    grouped = check({**metrics, "decisions": {"method:lsb.rgb": {**after, "groups": groups}}}, rules,
                    {**baseline, "decisions": {"method:lsb.rgb": {**before, "groups": groups}}})[0]
    boot = grouped.paired_test["cluster_bootstrap"]
    assert boot["groups"] == 10 and boot["difference"] == pytest.approx(-0.3)
    assert "paired cluster bootstrap over 10 cover groups" in grouped.message()


def test_starlight_script_takes_starlight_flags(smoke_corpus, tmp_path):
    import sys

    script = Path(__file__).parents[1] / "scripts" / "monitor_performance.py"
    result = subprocess.run([sys.executable, str(script), "--model_version", "v3", "--dataset_path", str(smoke_corpus),
                             "--db", str(tmp_path / "h.db"), "--dashboard", str(tmp_path / "d" / "dash.md"),
                             "--latency-sample", "3", "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "d" / "dash.md").exists() and (tmp_path / "d" / "dash.html").exists()
    runs = history.runs(tmp_path / "h.db")
    assert len(runs) == 1
    assert runs[0]["metrics"]["run"]["command"].startswith("scripts/monitor_performance.py --model_version v3")


def test_latest_runs_and_get_run_read_only_what_they_name(tmp_path):
    db = tmp_path / "h.db"

    def run(run_id, timestamp, model):
        return {"run": {"run_id": run_id, "timestamp": timestamp, "model": {"name": model, "version": "1", "sha256": "x"},
                        "corpus": {"manifest_sha256": "y"}}}
    for args in (("a1", "2026-01-01T00:00:00", "a"), ("b1", "2026-01-02T00:00:00", "b"), ("a2", "2026-01-03T00:00:00", "a"),
                 ("b0", "2025-12-31T00:00:00", "b")):
        history.append_run(run(*args), "ok", db)
    assert [r["run_id"] for r in history.latest_runs(db)] == ["b1", "a2"]
    assert history.get_run("b0", db)["model_name"] == "b" and history.get_run("nope", db) is None
    assert [r["run_id"] for r in history.runs(db, "a")] == ["a1", "a2"]


def test_a_sink_error_never_shows_the_secret_its_variable_holds(monkeypatch):
    from stegwatch.monitoring.rules import Alert
    from stegwatch.monitoring.sinks import AlertConfig, dispatch_remote

    token = "SECRETTOKEN123"
    monkeypatch.setenv("HOOK", f"hooks.example.invalid/services/T0/B0/{token}")  # no scheme: urllib quotes it back
    config = AlertConfig.from_dict({"webhook": [{"url_env": "HOOK", "deadline_s": 2}]})
    alert = Alert(rule="r", severity="warning", metric="m", value=1.0, threshold=0.5, condition="above", kind="value",
                  run_id="run", model="m 1", description="d")
    [result] = dispatch_remote([alert], config)
    assert result.sent == 0 and "<$HOOK>" in result.error and token not in result.error
    # urllib quotes a part of the URL, or strips it first: the token must not show in any form.
    for url in (f"https://hooks.example.invalid/services/T0/B0/{token} 1", f"hooks.example.invalid/x/{token}\n"):
        monkeypatch.setenv("HOOK", url)
        [result] = dispatch_remote([alert], config)
        assert result.error and token not in result.error, result.error


@pytest.mark.parametrize("table, message", [
    ({"email": {"host": "h", "sender": "s", "recipients": ["r"], "password": "hunter2"}}, "must not be written in a file"),
    ({"webhook": [{"url": "https://hooks.example/SECRET"}]}, "must not be written in a file"),
    ({"email": {"host": "h", "sender": "s", "recipients": ["r"], "pasword_env": "X"}}, "unknown setting 'pasword_env'"),
    ({"email": {"host": "h", "sender": "s"}}, "missing recipients"),
    ({"email": {"host": "h", "sender": "s", "recipients": ["r"], "port": "25"}}, "port has the wrong type"),
    ({"webhook": [{"format": "slack"}]}, "missing url_env"),
    ({"webhook": [{"url_env": "X", "format": "teams"}]}, "choose slack or alertmanager"),
])
def test_alert_sink_tables_are_checked_when_the_config_loads(table, message):
    from stegwatch.errors import ConfigError
    from stegwatch.monitoring.sinks import AlertConfig

    with pytest.raises(ConfigError, match=message):
        AlertConfig.from_dict(table)


@pytest.mark.parametrize("content, error", [("[1, 2]", "not a stegwatch metrics document"),
                                            ('{"hello": 1}', "not a stegwatch metrics document"),
                                            ("not json", "cannot be read as JSON")])
def test_a_baseline_file_that_is_no_metrics_document_is_refused_before_any_feature(tmp_path, monkeypatch, content, error):
    from stegwatch.errors import ConfigError
    from stegwatch.monitoring import monitor as monitor_module

    monkeypatch.setattr(monitor_module, "load_rows", lambda *a, **k: pytest.fail("features were computed"))
    baseline = tmp_path / "base.json"
    baseline.write_text(content)
    with pytest.raises(ConfigError, match=error):
        monitor("v4", tmp_path, baseline=str(baseline), db=tmp_path / "h.db", console=lambda line: None)


def test_a_baseline_run_that_is_not_in_the_history_is_refused_before_any_feature(tmp_path, monkeypatch):
    from stegwatch.errors import BaselineNotFound
    from stegwatch.monitoring import monitor as monitor_module

    monkeypatch.setattr(monitor_module, "load_rows", lambda *a, **k: pytest.fail("features were computed"))
    with pytest.raises(BaselineNotFound, match="neither a file nor a run"):
        monitor("v4", tmp_path, baseline="20990101T000000Z-nope", db=tmp_path / "h.db", console=lambda line: None)


@pytest.mark.parametrize("field, value, message", [("metric", 5, "metric must be text"), ("condition", ["gt"], "condition must be text"),
                                                  ("relative", "yes", "relative must be true or false"),
                                                  ("unless", 3, "unless must name a rule")])
def test_a_rule_of_the_wrong_type_is_refused_when_it_loads(field, value, message):
    from stegwatch.errors import ConfigError
    from stegwatch.monitoring.rules import rules_from_tables

    table = {"name": "r", "metric": "false_positive_rate.rate", "condition": "gt", "threshold": 0.1, "severity": "warning"}
    with pytest.raises(ConfigError, match=message):
        rules_from_tables([table | {field: value}])


def test_unless_silences_only_the_same_metric_family():
    from stegwatch.monitoring.rules import rules_from_tables

    rules = rules_from_tables([
        {"name": "crit", "metric": "false_positive_rate_by_category.*.rate", "condition": "gt", "threshold": 0.01,
         "severity": "critical"},
        {"name": "warn", "metric": "false_positive_rate_by_category.*.group_upper_bound", "condition": "gt",
         "threshold": 0.01, "severity": "warning", "unless": "crit"},
    ])
    metrics = {"run": {"run_id": "r1", "model": {"name": "m", "version": "1"}},
               "false_positive_rate_by_category": {"x": {"rate": 0.5, "group_upper_bound": 0.6},
                                                   "y": {"rate": 0.0, "group_upper_bound": 0.6}}}
    fired = {(a.rule, a.metric) for a in check(metrics, rules)}
    assert fired == {("crit", "false_positive_rate_by_category.x.rate"),
                     ("warn", "false_positive_rate_by_category.y.group_upper_bound")}


def test_a_dashboard_named_html_keeps_its_markdown_twin_beside_it(tmp_path, monkeypatch):
    import jinja2

    from stegwatch.monitoring import dashboard as dashboard_module

    monkeypatch.setattr(dashboard_module, "dashboard_context", lambda *a, **k: ({}, {}))
    monkeypatch.setattr(dashboard_module, "template_environment", lambda: jinja2.Environment(
        loader=jinja2.DictLoader({"dashboard.md.j2": "markdown", "dashboard.html.j2": "html"})))
    written = dashboard_module.render_dashboard([], {}, "ok", [], tmp_path / "d.html", [])
    assert written[:2] == [tmp_path / "d.md", tmp_path / "d.html"]
    assert (tmp_path / "d.md").read_text() == "markdown" and (tmp_path / "d.html").read_text() == "html"


def test_monitor_keeps_its_refits_and_a_second_run_takes_them_back(smoke_corpus, tmp_path, monkeypatch):
    """``[generalization] checkpoints`` (or ``--checkpoints``): the leave-one-source-out refits of a run are kept, and
    the next run on the same corpus and model fits none of them and reads the same.

    V3 with a refit identity stands in for V4 (whose refits are checkpointed the same way, but take minutes here)."""
    from stegwatch.detectors import load_detector
    from stegwatch.monitoring import monitor as monitor_module

    v3 = load_detector("v3")

    class KeptV3(type(v3)):
        def refit_identity(self) -> dict:
            return {"name": self.name, "version": self.version}

    kept_v3 = KeptV3.__new__(KeptV3)
    kept_v3.__dict__.update(v3.__dict__)
    monkeypatch.setattr(monitor_module, "load_detector", lambda model: kept_v3)
    config = MonitorConfig.from_toml({"generalization": {"by_source": True, "checkpoints": str(tmp_path / "refits")},
                                      "dashboard": {"path": str(tmp_path / "dash" / "dash.md")},
                                      "alerts": {"log_file": str(tmp_path / "alerts.log")}})
    assert config.checkpoints == tmp_path / "refits"
    runs = [monitor("v3", smoke_corpus, config=config, db=tmp_path / "h.db", latency_sample=0, console=lambda line: None)
            for _ in range(2)]
    first, second = (r.metrics["refits"] for r in runs)
    kept = len(list((tmp_path / "refits").glob("*.joblib")))
    assert first["kept"] and first["fitted"] == kept > 0 and first["reused"] == 0
    assert second == {**first, "fitted": 0, "reused": kept}
    assert runs[0].metrics["generalization"] == runs[1].metrics["generalization"]
    assert runs[0].metrics["decisions"] == runs[1].metrics["decisions"]
    text = config.dashboard.read_text()
    assert f"Refits: 0 fitted in this run, {kept} taken back from its checkpoint folder" in text
    assert f'<p id="refits">Refits: 0 fitted in this run, {kept} taken back' in config.dashboard.with_suffix(".html").read_text()

@pytest.mark.parametrize("general", [{"checkpoints": 3}, {"checkpoint": "x"}])
def test_a_wrong_generalization_setting_is_refused_when_the_config_loads(general):
    from stegwatch.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[generalization\]: the settings are by_source"):
        MonitorConfig.from_toml({"generalization": general})


def test_the_monitor_command_passes_its_checkpoint_folder(smoke_corpus, tmp_path):
    db = tmp_path / "h.db"
    result = runner.invoke(app, ["monitor", "--model-version", "v3", "--dataset-path", str(smoke_corpus), "--db", str(db),
                                 "--dashboard", str(tmp_path / "d" / "dash.md"), "--no-by-source", "--latency-sample", "0",
                                 "--workers", "1", "--checkpoints", str(tmp_path / "refits"), "--json"])
    assert result.exit_code in (0, 1), result.output
    run_id = json.loads(result.stdout)["run_id"]
    metrics = json.loads((tmp_path / "runs" / f"{run_id}.json").read_text())
    assert metrics["refits"] == {"directory": str(tmp_path / "refits"), "kept": False, "fitted": 0, "reused": 0}
