"""`stegwatch serve`: a real server on 127.0.0.1, talked to over HTTP."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from stegwatch.errors import ConfigError
from stegwatch.monitoring import history
from stegwatch.monitoring.monitor import MonitorConfig, monitor
from stegwatch.serving.aggregates import flag_rate_jump, production_summary, window_summary
from stegwatch.serving.app import create_app
from stegwatch.serving.config import ServeConfig, parse_window
from stegwatch.serving.events import Feedback
from stegwatch.serving.store import ProductionStore

TOKEN = "test-token-not-a-secret"


def _config(tmp_path: Path, **serve) -> ServeConfig:
    monitor_config = MonitorConfig.load()
    monitor_config.dashboard = tmp_path / "dash" / "performance_dashboard.md"
    monitor_config.alerts.log_file = str(tmp_path / "alerts.log")
    config = ServeConfig(db=tmp_path / "history.db", monitor=monitor_config, alert_interval_s=0.5, poll_ms=300)
    for key, value in serve.items():
        setattr(config, key, value)
    return config


@contextmanager
def running(config: ServeConfig, token: str | None = TOKEN):
    """The app under uvicorn on 127.0.0.1 (a free port), in a thread; yields its base URL."""
    previous = os.environ.pop(config.token_env, None)
    if token is not None:
        os.environ[config.token_env] = token
    try:
        app = create_app(config)
    finally:
        os.environ.pop(config.token_env, None)
        if previous is not None:
            os.environ[config.token_env] = previous
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)


def event(request_id: str, *, verdict: str = "clean", score: float | None = 0.1, method: str | None = None,
          latency_ms: float = 20.0, fmt: str = "png", version: str = "v4.1", age_s: float = 1.0, at: datetime | None = None) -> dict:
    when = at or datetime.now(UTC) - timedelta(seconds=age_s)
    return {"request_id": request_id, "timestamp": when.isoformat(),
            "model_version": version, "latency_ms": latency_ms, "score": score, "verdict": verdict, "method": method,
            "image_format": fmt, "image_bytes": 4096, "width": 64, "height": 64}


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _count(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT COUNT(*) FROM production_events").fetchone()[0]


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_ingest_feedback_and_prometheus_metrics(tmp_path):
    config = _config(tmp_path)
    with running(config) as (url, _), httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        assert client.get("/health").json()["store"]["journal_mode"] == "wal"
        one = client.post("/api/v1/metrics/log", json=event("a1", verdict="stego", score=0.97, method="lsb.rgb", latency_ms=40))
        assert one.status_code == 200 and one.json() == {"stored": 1, "duplicates": 0, "conflicts": []}
        batch = [event(f"b{i}", latency_ms=5.0 + i) for i in range(9)] + [event("e1", verdict="error", score=None, fmt="JPEG")]
        assert client.post("/api/v1/metrics/log", json={"events": batch}).json()["stored"] == 10
        retry = client.post("/api/v1/metrics/log", json={"events": batch[:3]})
        assert retry.status_code == 200 and retry.json() == {"stored": 0, "duplicates": 3, "conflicts": []}
        changed = dict(batch[0], latency_ms=999.0)
        conflict = client.post("/api/v1/metrics/log", json=changed)
        assert conflict.status_code == 409 and conflict.json()["conflicts"] == ["b0"]
        assert client.post("/api/v1/feedback", json={"request_id": "a1", "label": "clean"}).json()["new"] is True
        assert client.post("/api/v1/feedback", json={"request_id": "b1", "label": "clean"}).json()["new"] is True
        assert client.post("/api/v1/feedback", json={"request_id": "nope", "label": "clean"}).status_code == 404

        production = client.get("/api/v1/production").json()
        window = production["by_model_version"]["v4.1"]["windows"]["5m"]
        assert window["events"] == 11 and window["flagged"] == 1 and window["errors"] == 1
        assert window["flag_rate"] == pytest.approx(1 / 10) and window["error_rate"] == pytest.approx(1 / 11)
        fpr = window["confirmed_false_positive_rate"]
        assert (fpr["count"], fpr["n"]) == (1, 2) and fpr["ci_low"] < 0.5 < fpr["ci_high"]

        samples = _samples(client.get("/metrics").text)
        version = (("model_version", "v4.1"),)
        assert samples[("stegwatch_production_events_total", version)] == 11
        assert samples[("stegwatch_production_flagged_total", version)] == 1
        assert samples[("stegwatch_production_errors_total", version)] == 1
        assert samples[("stegwatch_production_confirmed_false_positives_total", version)] == 1
        assert samples[("stegwatch_production_reviewed_clean_total", version)] == 2
        assert samples[("stegwatch_production_latency_ms_count", version)] == 11
        assert samples[("stegwatch_production_latency_ms_bucket", (("le", "10.0"), ("model_version", "v4.1")))] == 6
        assert samples[("stegwatch_production_latency_ms_sum", version)] == pytest.approx(40 + sum(5.0 + i for i in range(9)) + 20)
        assert samples[("stegwatch_production_flag_rate", (("model_version", "all"), ("window", "5m")))] == pytest.approx(0.1)
        # The confirmed FPR (1 of 2 reviewed clean items flagged) trips the monitor's own FPR rule in production.
        for _ in range(300):  # the rules run in the background: wait for the evaluation that saw the feedback
            active = client.get("/api/v1/production").json()["active_alerts"]
            if "fpr-point-estimate" in {a["rule"] for a in active}:
                break
            time.sleep(0.1)
        assert {a["rule"] for a in active} >= {"fpr-point-estimate"}
        assert all(a["model"] == "production v4.1" for a in active)
    logged = [json.loads(line) for line in Path(config.monitor.alerts.log_file).read_text().splitlines()]
    assert any(a["rule"] == "fpr-point-estimate" for a in logged)
    assert _count(config.db) == 11


def test_a_read_sees_every_write_before_it_however_slow_the_last_summary_was(tmp_path):
    # Under load a summary can take seconds; the throttle that spares the CPU
    # must never serve aggregates older than writes that already returned.
    config = _config(tmp_path)
    with running(config) as (url, app), httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        client.post("/api/v1/metrics/log", json=event("a1"))
        first = client.get("/api/v1/production").json()
        assert first["by_model_version"]["v4.1"]["windows"]["5m"]["events"] == 1
        app.state.live._summary_cost = 3600.0  # as if the last computation had taken an hour
        client.post("/api/v1/metrics/log", json={"events": [event(f"b{i}") for i in range(4)]})
        after = client.get("/api/v1/production").json()
        assert after["by_model_version"]["v4.1"]["windows"]["5m"]["events"] == 5
        # Nothing new: an hour-long cost keeps the previous summary, by design ...
        app.state.live._summary_cost = 3600.0
        assert client.get("/api/v1/production").json()["now"] == after["now"]
        # ... but a relabel by another process (here another store on the same file), which
        # leaves every count as it was and this server's own write counter too, is a change.
        client.post("/api/v1/feedback", json={"request_id": "a1", "label": "clean"})
        client.get("/api/v1/production")
        app.state.live._summary_cost = 3600.0
        other = ProductionStore(config.db)
        try:
            assert other.add_feedback(Feedback(request_id="a1", label="stego")) is False
        finally:
            other.close()
        window = client.get("/api/v1/production").json()["by_model_version"]["v4.1"]["windows"]["5m"]
        assert window["confirmed_detection_rate"]["n"] == 1 and window["confirmed_false_positive_rate"]["n"] == 0


def test_writes_are_refused_without_a_configured_token_and_with_a_wrong_one(tmp_path):
    config = _config(tmp_path)
    with running(config, token=None) as (url, _):
        refused = httpx.post(f"{url}/api/v1/metrics/log", json=event("x"), headers=AUTH)
        assert refused.status_code == 403 and "STEGWATCH_TOKEN" in refused.json()["detail"]
        assert httpx.get(f"{url}/health").status_code == 200  # reads stay open
    with running(config) as (url, _):
        assert httpx.post(f"{url}/api/v1/metrics/log", json=event("x")).status_code == 401
        wrong = httpx.post(f"{url}/api/v1/metrics/log", json=event("x"), headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert httpx.post(f"{url}/api/v1/feedback", json={"request_id": "x", "label": "clean"}).status_code == 401
    assert _count(config.db) == 0


def test_malformed_and_oversized_bodies_are_refused_and_nothing_is_stored(tmp_path):
    config = _config(tmp_path, max_body_bytes=4096)
    with running(config) as (url, _), httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        cases = {
            "not json": b"{oops",
            "missing fields": json.dumps({"request_id": "m1"}).encode(),
            "extra field": json.dumps(event("m2") | {"surprise": 1}).encode(),
            "score out of range": json.dumps(event("m3", score=1.5)).encode(),
            "future timestamp": json.dumps(event("m4", age_s=-3600)).encode(),
            "stego without score": json.dumps(event("m5", verdict="stego", score=None)).encode(),
            "bad request id": json.dumps(event("../etc/passwd")).encode(),
            "one bad event spoils the batch": json.dumps({"events": [event("m6"), event("m7", latency_ms=-1)]}).encode(),
            "a boolean for a number": json.dumps(event("m9", latency_ms=True)).encode(),
            "text for a count": json.dumps(event("m10") | {"image_bytes": "123"}).encode(),
            "a fraction for a count": json.dumps(event("m11") | {"width": 64.0}).encode(),
        }
        for name, body in cases.items():
            response = client.post("/api/v1/metrics/log", content=body, headers={"content-type": "application/json"})
            assert response.status_code == 422, name
            assert response.json()["detail"], name
        reason = client.post("/api/v1/metrics/log", json=event("m3", score=1.5)).json()["detail"][0]
        assert reason["loc"] == ["score"] and "less than or equal to 1" in reason["msg"]
        big = {"events": [event(f"big{i}") for i in range(40)]}
        declared = client.post("/api/v1/metrics/log", json=big)
        assert declared.status_code == 413 and "4096" in declared.json()["detail"]

        def chunks():  # no Content-Length: the limit holds on the bytes actually streamed
            for _ in range(10):
                yield b" " * 1000
        streamed = client.post("/api/v1/metrics/log", content=chunks())
        assert streamed.status_code == 413
        assert client.post("/api/v1/feedback", json={"request_id": "m1", "label": "maybe"}).status_code == 422
    assert _count(config.db) == 0


def test_concurrent_writers_store_every_event_exactly_once(tmp_path):
    config = _config(tmp_path)
    ids = [f"c{i}" for i in range(300)]
    at = datetime.now(UTC)  # the same body for the same id, whichever client posts it
    with running(config) as (url, _):
        def client_run(offset: int, results: list) -> None:
            with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
                # Overlapping slices: every id is posted by two clients, some in batches, some alone.
                mine = ids[offset:] + ids[:offset]
                mine = mine[: len(ids) // 2 + 30]
                for start in range(0, len(mine), 25):
                    response = client.post("/api/v1/metrics/log", json={"events": [event(i, at=at) for i in mine[start:start + 25]]})
                    results.append(response.json())
        results: list = []
        threads = [threading.Thread(target=client_run, args=(k * 75, results)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    stored = sum(r["stored"] for r in results)
    duplicates = sum(r["duplicates"] for r in results)
    with sqlite3.connect(config.db) as connection:
        rows = [r[0] for r in connection.execute("SELECT request_id FROM production_events")]
    assert len(rows) == len(set(rows)) == stored
    assert set(rows) == set(ids) and stored + duplicates == 4 * (len(ids) // 2 + 30)
    assert not any(r["conflicts"] for r in results)


def test_the_store_survives_a_kill_during_ingestion(tmp_path):
    """SIGKILL the server while clients post: every acknowledged event is there, the database is intact."""
    db = tmp_path / "history.db"
    port_file = tmp_path / "port"
    code = ("import os,socket,uvicorn\n"
            "from stegwatch.serving.app import create_app\nfrom stegwatch.serving.config import ServeConfig\n"
            f"c=ServeConfig.load(db=__import__('pathlib').Path({str(db)!r}))\n"
            "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(64)\n"
            f"open({str(port_file)!r},'w').write(str(s.getsockname()[1]))\n"
            "uvicorn.Server(uvicorn.Config(create_app(c),log_level='error')).run(sockets=[s])\n")
    process = subprocess.Popen([sys.executable, "-c", code], env=os.environ | {"STEGWATCH_TOKEN": TOKEN},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        for _ in range(200):
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        acknowledged: list[str] = []
        stop = threading.Event()

        def post(prefix: str) -> None:
            with httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
                k = 0
                while not stop.is_set():
                    batch = [event(f"{prefix}-{k}-{j}") for j in range(20)]
                    try:
                        response = client.post("/api/v1/metrics/log", json={"events": batch})
                    except httpx.HTTPError:
                        return
                    if response.status_code == 200:
                        acknowledged.extend(e["request_id"] for e in batch)
                    k += 1
        threads = [threading.Thread(target=post, args=(f"k{n}",)) for n in range(3)]
        for thread in threads:
            thread.start()
        while len(acknowledged) < 200:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        process.kill()
        process.wait(10)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {r[0] for r in connection.execute("SELECT request_id FROM production_events")}
    assert set(acknowledged) <= stored
    # Whole batches only: a batch is in the store entirely or not at all.
    batches: dict[str, int] = {}
    for request_id in stored:
        batches[request_id.rsplit("-", 1)[0]] = batches.get(request_id.rsplit("-", 1)[0], 0) + 1
    assert set(batches.values()) == {20}


class _BlockingHook(BaseHTTPRequestHandler):
    arrived = threading.Event()
    release = threading.Event()

    def do_POST(self):  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).arrived.set()
        type(self).release.wait(30)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_slow_alert_sink_never_blocks_ingestion(tmp_path, monkeypatch):
    hook = HTTPServer(("127.0.0.1", 0), _BlockingHook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    monkeypatch.setenv("STEGWATCH_TEST_HOOK", f"http://127.0.0.1:{hook.server_address[1]}/hook")
    config = _config(tmp_path)
    config.monitor.alerts.webhooks = [{"url_env": "STEGWATCH_TEST_HOOK", "format": "slack", "timeout": 30}]
    try:
        with running(config) as (url, _), httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
            # Every scan failing trips the production error-rate rule, whose webhook then hangs.
            client.post("/api/v1/metrics/log", json={"events": [event(f"f{i}", verdict="error", score=None) for i in range(20)]})
            assert _BlockingHook.arrived.wait(30), "the alert never reached the webhook"
            # While the webhook is still holding the alert, ingestion goes on and answers.
            more = client.post("/api/v1/metrics/log", json={"events": [event(f"g{i}") for i in range(20)]})
            assert more.status_code == 200 and more.json()["stored"] == 20
            assert client.get("/health").status_code == 200
            assert not _BlockingHook.release.is_set()
            _BlockingHook.release.set()
    finally:
        _BlockingHook.release.set()
        hook.shutdown()
    assert _count(config.db) == 40


def test_history_api_and_live_page(smoke_corpus, tmp_path):
    config = _config(tmp_path)
    monitor("v3", smoke_corpus, config=config.monitor, db=config.db, latency_sample=3, console=lambda line: None)
    with running(config) as (url, _):
        runs = httpx.get(f"{url}/api/runs").json()
        assert len(runs) == 1 and runs[0]["model_name"] == "stegwatch-v3" and runs[0]["false_positive_rate"]["n"] > 0
        one = httpx.get(f"{url}/api/runs/{runs[0]['run_id']}").json()
        assert one["metrics"]["run"]["run_id"] == runs[0]["run_id"]
        assert httpx.get(f"{url}/api/runs/unknown").status_code == 404
        page = httpx.get(url).text
        assert '<table id="metrics">' in page and runs[0]["run_id"] in page and 'id="production-windows"' in page
        assert "http://" not in page and "https://" not in page  # nothing loaded from elsewhere: works offline
        samples = _samples(httpx.get(f"{url}/metrics").text)
        key = ("stegwatch_monitor_false_positive_rate", (("model", "stegwatch-v3"), ("run_id", runs[0]["run_id"]), ("version", runs[0]["model_version"])))
        assert samples[key] == pytest.approx(runs[0]["false_positive_rate"]["rate"])


def test_window_aggregates_and_flag_rate_jump_on_constructed_events():
    now = 1_000_000.0
    rng = np.random.default_rng(0)
    n_old, n_new = 2000, 200
    ts = np.concatenate([now - rng.uniform(600, 80000, n_old), now - rng.uniform(0, 299, n_new)])
    old_flags = rng.random(n_old) < 0.02
    new_flags = rng.random(n_new) < 0.30
    verdict = np.where(np.concatenate([old_flags, new_flags]), "stego", "clean").astype(object)
    columns = {"request_id": np.asarray([str(i) for i in range(ts.size)], dtype=object), "ts": ts,
               "model_version": np.full(ts.size, "v", dtype=object), "latency_ms": np.arange(ts.size, dtype=float),
               "score": np.zeros(ts.size), "verdict": verdict, "method": np.where(verdict == "stego", "lsb.rgb", "").astype(object),
               "image_format": np.full(ts.size, "png", dtype=object), "label": np.full(ts.size, "", dtype=object)}
    current = window_summary(columns, now - 300, now + 1)
    assert current["events"] == n_new and current["flagged"] == int(new_flags.sum())
    assert current["latency_ms"]["p50"] == pytest.approx(np.percentile(np.arange(n_old, n_old + n_new), 50))
    summary = production_summary(columns, now)
    jump = summary["by_model_version"]["v"]["windows"]["5m"]["flag_rate_jump"]
    assert jump["p_value"] < 1e-10 and jump["significant_excess"] == pytest.approx(jump["excess"]) and jump["excess"] > 0.2
    same = flag_rate_jump({"events": 100, "errors": 0, "flagged": 2, "flag_rate": 0.02},
                          {"events": 1000, "errors": 0, "flagged": 20})
    assert same["p_value"] > 0.3 and same["significant_excess"] == 0.0
    assert parse_window("5m") == 300 and parse_window("1d") == 86400
    with pytest.raises(ConfigError):
        parse_window("5 minutes")


def test_serve_config_reads_a_serve_table(tmp_path):
    path = tmp_path / "stegwatch.toml"
    path.write_text('[serve]\nwindows = ["1h", "1m"]\nmax_body_bytes = 2048\ntoken_env = "MY_TOKEN"\n')
    config = ServeConfig.load(path)
    assert list(config.windows) == ["1m", "1h"] and config.max_body_bytes == 2048 and config.token_env == "MY_TOKEN"
    path.write_text('[serve]\nwindow = ["1h"]\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        ServeConfig.load(path)
    for text, message in (("serve = 5", "must be a table"), ("[serve]\nwindows = [5, 6]", "write it as text"),
                          ('[serve]\nwindows = "5m"', "must be a list"), ("[serve]\nalert_interval_s = -1", "must be positive"),
                          ("[serve]\npoll_ms = 0", "poll_ms at least 100"), ('[serve]\nmax_body_bytes = "big"', "wrong type"),
                          ("[serve]\nmax_connections = true", "wrong type")):
        path.write_text(text + "\n")
        with pytest.raises(ConfigError, match=message):
            ServeConfig.load(path)


def test_history_is_untouched_by_production_tables(tmp_path):
    """The production tables live beside the monitor's; the monitor's API keeps working on the same file."""
    config = _config(tmp_path)
    with running(config) as (url, _):
        httpx.post(f"{url}/api/v1/metrics/log", json=event("h1"), headers=AUTH)
    assert history.runs(config.db) == [] and _count(config.db) == 1


def test_the_ingestion_load_benchmark_checks_exactly_once_delivery():
    """The benchmark itself (tiny counts): it must run and verify its own store."""
    import importlib.util

    path = Path(__file__).parents[1] / "benchmarks" / "ingest_load.py"
    spec = importlib.util.spec_from_file_location("ingest_load", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.ingest_load(clients=2, events=20, batch=5)
    assert result["exactly_once"] and result["stored"] == 20 * 2 + 20 * 20 * 2
    assert result["single"]["statuses"] == {"200": result["single"]["requests"]}


def test_serve_command_binds_loopback_by_default_and_refuses_a_bad_config(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from stegwatch.cli import app

    from stegwatch.serving.server import GuardedH11Protocol

    calls = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, *args, **kwargs: calls.append(server.config))
    monkeypatch.delenv("STEGWATCH_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 0, result.output
    [config] = calls
    assert (config.host, config.port, config.log_level, config.access_log) == ("127.0.0.1", 8080, "warning", False)
    assert issubclass(config.http, GuardedH11Protocol) and config.http.header_timeout_s == 10
    assert "writes will be refused" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[serve]\nwindows = ["soon"]\n')
    refused = CliRunner().invoke(app, ["serve", "--config", str(bad)])
    assert refused.exit_code == 2 and "window" in refused.output


def test_json_depth_skips_brackets_inside_strings_and_counts_the_rest():
    from stegwatch.serving.app import json_depth

    def nested(value) -> int:
        return 1 + max((nested(v) for v in (value.values() if isinstance(value, dict) else value)), default=0) \
            if isinstance(value, dict | list) else 0

    bodies = [{"a": "[[[{{{"}, [[["x\\", "y\"]]"]]], {"k": ['\\\\"[', {"z": "}}"}]}, "no brackets", [], [[], [[[]]]],
              {"events": [event("e1"), event("e2")]}, {"text": "\\"}, {"q": '"', "r": ["]"]}]
    for body in bodies:
        raw = json.dumps(body).encode()
        assert json_depth(raw) == nested(body), raw
    assert json_depth(b"[" * 40 + b"]" * 40) == 40
    assert json_depth(b"") == 0


def test_a_huge_number_or_a_run_of_escapes_is_a_422_not_a_server_error(tmp_path):
    config = _config(tmp_path)
    with running(config) as (url, _), httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        huge = json.dumps(event("h1")).encode().replace(b'"image_bytes": 4096', b'"image_bytes": ' + b"9" * 5000)
        escapes = b'{"request_id": "' + b'\\"' * 20000  # no closing quote: measured in one pass, then refused
        for body in (huge, escapes):
            response = client.post("/api/v1/metrics/log", content=body, headers={"content-type": "application/json"})
            assert response.status_code == 422 and "not JSON" in response.json()["detail"]
    assert _count(config.db) == 0
