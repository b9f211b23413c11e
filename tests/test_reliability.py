"""Hostile input and faults (issue 17): each case fails cleanly, with a reason, and never hangs.

docs/reliability.md lists every class of bad input or fault, what stegwatch
does about it, and which test here shows it.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from stegwatch.errors import ConfigError
from stegwatch.cli import app
from stegwatch.format.files import DEFAULT_LIMITS, UnreadableFile, carrier_from_bytes, load_carrier
from stegwatch.format.manifest import EmptyCorpus, read_manifest
from stegwatch.monitoring.sinks import AlertConfig

from .conftest import png_bytes, random_rgb
from .test_monitoring import _free_port

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result, code: int = 2) -> str:
    """The command failed with ``code`` and a message, not a traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return " ".join(result.output.split())  # rich wraps long lines at the terminal's width


# --- empty and duplicated manifests (items 6 and 7) ------------------------------------------


def _manifest_lines(corpus: Path) -> list[str]:
    return (corpus / "manifest.jsonl").read_text().splitlines()


@pytest.mark.parametrize("verb", [
    ["validate-streams", "{c}"],
    ["dataset-metrics", "{c}", "--no-validate"],
    ["evaluate", "--model", "v3", "--corpus", "{c}", "--latency-sample", "0", "--workers", "1"],
    ["fp-regression", "--model", "v3", "--corpus", "{c}", "--workers", "1"],
    ["monitor", "--model-version", "v3", "--dataset-path", "{c}", "--db", "{c}/h.db", "--dashboard", "{c}/d/dash.md",
     "--workers", "1"],
    ["train", "--model", "v3", "--corpus", "{c}", "--out", "{c}/model", "--workers", "1"],
    ["baseline", "--models", "v3", "--corpus", "{c}", "--out", "{c}/report.md", "--workers", "1"],
    ["ablate", "--corpus", "{c}", "--by", "category", "--workers", "1"],
])
def test_an_empty_corpus_is_a_clear_error_in_every_verb(tmp_path, verb):
    (tmp_path / "manifest.jsonl").write_text("\n")
    result = invoke(*[part.format(c=tmp_path) for part in verb])
    assert "empty corpus" in _one_line_error(result)


def test_a_corpus_whose_files_are_all_unreadable_is_a_clear_error(corpus_copy):
    for line in _manifest_lines(corpus_copy):
        (corpus_copy / json.loads(line)["file_path"]).write_bytes(b"")
    result = invoke("evaluate", "--model", "v3", "--corpus", corpus_copy, "--latency-sample", "0", "--workers", "1")
    assert "no file of the corpus can be used" in _one_line_error(result)


def test_a_file_listed_twice_is_refused_naming_both_lines(corpus_copy):
    lines = _manifest_lines(corpus_copy)
    clean = next(i for i, line in enumerate(lines) if json.loads(line)["label"] == "clean")
    lines.append(lines[clean])
    (corpus_copy / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    read = read_manifest(corpus_copy)
    path = json.loads(lines[clean])["file_path"]
    assert path not in {e.file_path for e in read.entries}
    assert [e.reason for e in read.errors] == [
        f"file_path {path!r} is listed twice (lines {clean + 1} and {len(lines)}); both lines are refused"]
    result = invoke("evaluate", "--model", "v3", "--corpus", corpus_copy, "--latency-sample", "0", "--workers", "1", "--json",
                    "--allow-in-sample")
    metrics = json.loads(result.stdout)
    assert metrics["false_positive_rate"]["n"] == sum(json.loads(x)["label"] == "clean" for x in lines[:-1]) - 1
    validated = invoke("validate-streams", corpus_copy, "--json", "--workers", "1")
    assert validated.exit_code == 1 and "listed twice" in validated.stdout


def test_the_manifest_reader_refuses_an_empty_manifest(tmp_path):
    (tmp_path / "manifest.jsonl").write_text("")
    with pytest.raises(EmptyCorpus, match="empty corpus"):
        read_manifest(tmp_path)


# --- files whose structure breaks off after the first frame (item 14) ------------------------


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _three_frame_gif() -> bytes:
    frames = [random_rgb(seed, 64, 64).quantize(64) for seed in range(3)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def _png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, type) of every chunk of a PNG."""
    chunks, i = [], 8
    while i + 12 <= len(data):
        length = int.from_bytes(data[i:i + 4], "big")
        chunks.append((i, data[i + 4:i + 8]))
        i += 12 + length
    return chunks


def test_a_gif_cut_in_its_last_frame_is_an_error_record_not_a_clean_image(tmp_path):
    gif = _three_frame_gif()
    assert Image.open(io.BytesIO(gif)).n_frames == 3
    cut = tmp_path / "cut.gif"
    cut.write_bytes(gif[: len(gif) - 200])  # inside the third frame's image data
    with pytest.raises(UnreadableFile, match="truncated or corrupt GIF"):
        load_carrier(cut)
    from stegwatch.detectors import load_detector

    for model in ("v3", "v4"):
        [record] = load_detector(model).detect([str(cut)])
        assert record.error and "truncated" in record.error and record.is_stego is None and record.score is None


def test_a_png_cut_after_its_pixels_or_with_a_broken_chunk_is_refused():
    png = png_bytes(random_rgb(3, 48, 48))
    with pytest.raises(UnreadableFile, match="truncated"):
        carrier_from_bytes(png[:-12])  # IEND missing: Pillow alone decodes it
    # A private chunk after the pixels, with one bit flipped: Pillow never reads it, its CRC fails.
    iend = next(offset for offset, kind in _png_chunks(png) if kind == b"IEND")
    body = b"prVt" + b"anything"
    chunk = len(body[4:]).to_bytes(4, "big") + body + (zlib.crc32(body) ^ 1).to_bytes(4, "big")
    broken = png[:iend] + chunk + png[iend:]
    assert Image.open(io.BytesIO(broken)).load() is not None
    with pytest.raises(UnreadableFile, match="CRC"):
        carrier_from_bytes(broken)
    # A trailer after IEND (the eoi method, camera thumbnails) is not a fault.
    assert carrier_from_bytes(png + b"payload\x00").image.size == (48, 48)


# --- memory per file (item 15) ----------------------------------------------------------------

_PEAK_SCRIPT = """
import resource, sys
from stegwatch.detectors import load_detector
detector = load_detector("v4")
[record] = detector.detect([sys.argv[1]])
print(record.error or "ok", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _scan_peak(path: Path) -> tuple[str, int]:
    """(error or "ok", peak resident memory in bytes) of scanning one file with V4 in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(path)], capture_output=True, text=True, timeout=300,
                          env=os.environ | {"STEGWATCH_FEATURE_CACHE": str(path.parent / "cache.sqlite")})
    assert done.returncode == 0, done.stderr
    verdict, kib = done.stdout.split()[-2:]
    return verdict, int(kib) * 1024


def test_a_highly_compressible_huge_png_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("RGB", (7000, 7000)).save(bomb)  # 49 megapixels in about 150 KB
    assert bomb.stat().st_size < 300_000
    with pytest.raises(UnreadableFile, match="decompression bomb"):
        load_carrier(bomb)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rgba-png", "cmyk-jpeg"])
def test_peak_memory_for_the_largest_accepted_file_stays_under_one_gigabyte(tmp_path, kind):
    side = int(DEFAULT_LIMITS.max_pixels ** 0.5)
    rng = np.random.default_rng(0)
    if kind == "rgba-png":  # the widest pixel mode; noise in the alpha LSBs makes every statistic do its full work
        largest = tmp_path / "largest.png"
        pixels = np.full((side, side, 4), 200, dtype=np.uint8)
        pixels[..., 3] ^= rng.integers(0, 2, size=(side, side), dtype=np.uint8)
        Image.fromarray(pixels, "RGBA").save(largest)
    else:  # the most DCT coefficients (four full-resolution channels of noise), and a trailer up to the size limit
        largest = tmp_path / "largest.jpg"
        Image.fromarray(rng.integers(0, 256, size=(side, side, 4), dtype=np.uint8), "CMYK").save(largest, quality=95, subsampling=0)
        with largest.open("ab") as handle:
            handle.write(rng.bytes(DEFAULT_LIMITS.max_bytes - largest.stat().st_size))
    verdict, peak = _scan_peak(largest)
    assert verdict == "ok"
    assert peak < 1024**3, f"peak {peak / 2**20:.0f} MiB"


# --- alert sinks: credentials only over TLS (item 1), deadlines (item 3), delivered counts (item 13) ---


def _alerts(n: int = 2):
    from stegwatch.monitoring.rules import Alert

    return [Alert(rule=f"rule-{i}", severity="critical", metric="false_positive_rate.rate", value=0.1, threshold=0.0005,
                  condition="gt", kind="value", run_id="run-1", model="v4 1.0", description="test alert") for i in range(n)]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (made with the openssl program) and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl program is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    return folder / "cert.pem", folder / "key.pem"


class SmtpRecorder:
    """An aiosmtpd server on 127.0.0.1 that offers AUTH and records every AUTH command and message it receives."""

    def __init__(self, *, starttls_context=None, implicit_context=None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP, AuthResult

        self.auth_lines: list[tuple[str, bool]] = []  # (argument, over TLS?)
        self.messages: list = []
        recorder = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
                recorder.messages.append(envelope.content)
                return "250 OK"

        class RecordingSMTP(SMTP):
            async def smtp_AUTH(self, arg):  # noqa: N802 - aiosmtpd's name
                recorder.auth_lines.append((arg, self._tls_protocol is not None or implicit_context is not None))
                return await super().smtp_AUTH(arg)

        class RecordingController(Controller):
            def factory(self):
                return RecordingSMTP(self.handler, **self.SMTP_kwargs)

        self.port = _free_port()
        self.controller = RecordingController(
            Handler(), hostname="127.0.0.1", port=self.port, ssl_context=implicit_context, tls_context=starttls_context,
            auth_require_tls=False, authenticator=lambda *args: AuthResult(success=True))

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def _send(config, console=lambda line: None) -> list:
    """What the sinks other than the console did with two alerts."""
    from stegwatch.monitoring.sinks import dispatch

    return [result for result in dispatch(_alerts(), config, console=console) if result.sink != "console"]


def _email(port: int, **extra) -> dict:
    return {"host": "127.0.0.1", "port": port, "sender": "stegwatch@example.org", "recipients": ["oncall@example.org"],
            "username": "stegwatch", "password_env": "TEST_SMTP_PASSWORD", "timeout": 5, "deadline_s": 20} | extra


def _server_context(tls_files):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, tls_files))
    return context


def test_smtp_credentials_are_never_sent_without_tls(monkeypatch):
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "not-a-real-password")
    with SmtpRecorder() as server:  # offers AUTH, no STARTTLS
        [auto] = _send(AlertConfig(log_file=None, email=_email(server.port)), console=lambda line: None)
        [never] = _send(AlertConfig(log_file=None, email=_email(server.port, starttls="never")),
                                  console=lambda line: None)
        [always] = _send(AlertConfig(log_file=None, email=_email(server.port, starttls="always")),
                                   console=lambda line: None)
    assert server.auth_lines == [] and server.messages == []
    assert auto.sent == 0 and "refusing to send the SMTP password in clear" in auto.error
    assert never.sent == 0 and "in clear" in never.error
    assert always.sent == 0 and "does not offer STARTTLS" in always.error
    assert "not-a-real-password" not in auto.error + never.error + always.error


def test_plaintext_auth_only_when_the_config_allows_it_and_then_with_a_warning(monkeypatch):
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "not-a-real-password")
    warnings: list[str] = []
    with SmtpRecorder() as server:
        [result] = _send(AlertConfig(log_file=None, email=_email(server.port, allow_plaintext_auth=True)),
                                   console=warnings.append)
    assert result.error is None and result.sent == 2
    assert len(server.auth_lines) == 1 and server.auth_lines[0][1] is False and len(server.messages) == 1
    assert any("without TLS" in line for line in warnings)
    assert not any("not-a-real-password" in line for line in warnings)


def test_smtp_logs_in_after_starttls_or_over_implicit_tls(monkeypatch, tls_files):
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "not-a-real-password")
    with SmtpRecorder(starttls_context=_server_context(tls_files)) as server:
        [result] = _send(AlertConfig(log_file=None, email=_email(server.port, ca_file=str(tls_files[0]))),
                                   console=lambda line: None)
    assert result.error is None and server.auth_lines and all(tls for _, tls in server.auth_lines) and server.messages
    with SmtpRecorder(implicit_context=_server_context(tls_files)) as server:
        [result] = _send(AlertConfig(
            log_file=None, email=_email(server.port, implicit_tls=True, ca_file=str(tls_files[0]))), console=lambda line: None)
    assert result.error is None and len(server.auth_lines) == 1 and len(server.messages) == 1


def test_an_unknown_starttls_setting_is_refused_when_the_config_loads(tmp_path):
    from stegwatch.monitoring.monitor import MonitorConfig

    config = tmp_path / "monitor.toml"
    config.write_text('[alerts.email]\nhost = "127.0.0.1"\nsender = "a@b.c"\nrecipients = ["d@e.f"]\nstarttls = "maybe"\n')
    with pytest.raises(ConfigError, match="auto, always or never"):
        MonitorConfig.load(config)


class Trickler:
    """A TCP server on 127.0.0.1 that reads a request, then answers one byte every ``every`` seconds, forever."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.connections = 0

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(1)
            try:
                connection.recv(65536)
                for byte in itertools.cycle(b"HTTP/1.1 200 OK\r\nX-Slow: "):
                    if self.stop.wait(self.every):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by __exit__
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.listener.close()


def test_a_trickling_webhook_is_cut_off_at_its_total_deadline(monkeypatch):
    with Trickler() as server:
        monkeypatch.setenv("TEST_HOOK_URL", f"http://127.0.0.1:{server.port}/hook")
        started = time.monotonic()
        [result] = _send(AlertConfig(log_file=None, webhooks=[{"url_env": "TEST_HOOK_URL", "deadline_s": 2}]),
                                   console=lambda line: None)
        elapsed = time.monotonic() - started
    assert result.sent == 0 and "deadline of 2 s passed" in result.error
    assert elapsed < 2 + 8, elapsed  # the deadline covers both attempts; a per-read timeout never fires here


@pytest.mark.slow
def test_monitor_writes_its_dashboard_and_counts_nothing_sent_when_every_sink_fails(smoke_corpus, tmp_path, monkeypatch):
    from .test_monitoring import _lowered_model

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with Trickler() as hook:
        monkeypatch.setenv("TEST_HOOK_URL", f"http://127.0.0.1:{hook.port}/hook")
        config = tmp_path / "monitor.toml"
        config.write_text(f"""
[dashboard]
path = "{tmp_path / 'dash' / 'performance_dashboard.md'}"
[generalization]
by_source = false
[alerts]
log_file = "{blocker / 'alerts.log'}"
[alerts.email]
host = "127.0.0.1"
port = {_free_port()}
sender = "stegwatch@example.org"
recipients = ["oncall@example.org"]
deadline_s = 3
[[alerts.webhook]]
url_env = "TEST_HOOK_URL"
deadline_s = 3
""")
        args = ["monitor", "--model-version", _lowered_model(tmp_path, 0.02), "--dataset-path", smoke_corpus, "--config", config,
                "--db", tmp_path / "h.db", "--latency-sample", "3", "--workers", "1"]
        first = invoke(*args)
        second = invoke(*args)
    assert first.exit_code == 0, first.output
    text, again = (" ".join(result.output.split()) for result in (first, second))
    alerts = int(text.split(" alert(s)")[0].rsplit(" ", 1)[1])
    assert alerts > 0 and f"{alerts} alert(s), 0 sent" in text
    assert "alert sink webhook:slack failed" in text and "deadline of 3 s passed" in text
    assert "alert sink email failed" in text and "alert sink log failed" in text
    assert (tmp_path / "dash" / "performance_dashboard.md").exists()
    # Nothing was delivered, so the next run sends them again instead of treating them as sent.
    assert f"{alerts} alert(s), 0 sent" in again and "alert sink webhook:slack failed" in again


# --- history databases that are garbage or missing (item 8) --------------------------------


def test_a_garbage_history_database_is_a_one_line_error(tmp_path, smoke_corpus):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a SQLite database, just bytes " * 100)
    assert "not a stegwatch history database" in _one_line_error(invoke("history", "export", "--db", garbage))
    assert "not a stegwatch history database" in _one_line_error(invoke("baseline", "accept", "run-1", "--db", garbage))
    started = time.monotonic()
    result = invoke("monitor", "--model-version", "v3", "--dataset-path", smoke_corpus, "--db", garbage,
                    "--dashboard", tmp_path / "dash.md", "--workers", "1")
    assert "not a stegwatch history database" in _one_line_error(result)
    assert time.monotonic() - started < 60  # refused before the evaluation
    assert garbage.read_bytes().startswith(b"this is not a SQLite database")


def test_read_only_commands_never_create_a_history_database_or_its_folder(tmp_path):
    missing = tmp_path / "no-such-folder" / "history.db"
    assert "no history database" in _one_line_error(invoke("history", "export", "--db", missing))
    assert "no history database" in _one_line_error(invoke("baseline", "accept", "run-1", "--db", missing))
    assert not missing.parent.exists()


# --- Markdown injection in the dashboard (item 2) ---------------------------------------------

HOSTILE = "evil`` `|<script>alert(1)</script>\n# heading <img src=x onerror=alert(2)>"


@pytest.mark.slow
def test_user_strings_cannot_break_out_of_the_markdown_dashboard(corpus_copy, tmp_path):
    from markdown_it import MarkdownIt

    from stegwatch.monitoring.monitor import MonitorConfig, monitor
    from stegwatch.monitoring.rules import Rule

    hostile_corpus = corpus_copy.rename(corpus_copy.parent / HOSTILE.replace("/", "-"))
    config = MonitorConfig.load()
    config.dashboard = tmp_path / "dash" / "performance_dashboard.md"
    config.alerts.log_file = str(tmp_path / "alerts.log")
    config.rules = [Rule(name=f"rule {HOSTILE}", metric="false_positive_rate.n", condition="gt", threshold=0,
                         severity="warning", description=HOSTILE)]
    monitor("v3", hostile_corpus, config=config, db=tmp_path / "h.db", latency_sample=0, console=lambda line: None,
            command=f"stegwatch monitor --dataset-path {HOSTILE}")
    markdown = config.dashboard.read_text()
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<script" not in html and not re.search(r"<img[^>]*onerror", html)
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    assert html.count("<h1>") == 1  # the newline did not start a heading
    overview = html.split("<h2>Overview</h2>")[1].split("</table>")[0]
    assert overview.count("<tr>") == 7 and all(row.count("<td>") == 2 for row in overview.split("<tr>")[2:])
    alerts = html.split("<h2>Alerts</h2>")[1].split("</table>")[0]
    assert all(row.count("<td>") == 5 for row in alerts.split("<tr>")[2:])
    # The corpus path survives whole inside its code span.
    name = HOSTILE.replace("/", "-").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")
    assert f"<code>{corpus_copy.parent}/{name}</code>" in html


# --- serve: slow clients (item 5), deep JSON (item 9), atomic batches (item 10), old events (item 16) ---


def _post(url: str, body, **kwargs) -> httpx.Response:
    from .test_serve import AUTH

    if isinstance(body, bytes):
        return httpx.post(url + "/api/v1/metrics/log", content=body, headers=AUTH | {"Content-Type": "application/json"},
                          timeout=30, **kwargs)
    return httpx.post(url + "/api/v1/metrics/log", json=body, headers=AUTH, timeout=30, **kwargs)


def test_deeply_nested_json_is_refused_with_422_before_parsing(tmp_path):
    from .test_serve import _config, running

    with running(_config(tmp_path)) as (url, _):
        deep = _post(url, b"[" * 200_000 + b"]" * 200_000)
        assert deep.status_code == 422 and "nested deeper than" in deep.text
        assert _post(url, b'{"events": [' * 20 + b"]}" * 20).status_code == 422
        assert httpx.get(url + "/health", timeout=10).json()["status"] == "ok"


def test_a_batch_with_one_conflicting_request_id_stores_nothing(tmp_path):
    from .test_serve import _config, event, running

    with running(_config(tmp_path)) as (url, _):
        first = event("scan-0")
        assert _post(url, first).json() == {"stored": 1, "duplicates": 0, "conflicts": []}
        batch = [event(f"scan-{i}") for i in range(1, 1000)] + [first | {"latency_ms": 99.0}]
        refused = _post(url, {"events": batch})
        assert refused.status_code == 409
        assert refused.json() == {"stored": 0, "duplicates": 0, "conflicts": ["scan-0"]}
        assert httpx.get(url + "/api/v1/state", timeout=10).json()["events"] == 1
        stored = _post(url, {"events": batch[:-1] + [first]})
        assert stored.status_code == 200 and stored.json() == {"stored": 999, "duplicates": 1, "conflicts": []}


def test_events_older_than_the_horizon_are_refused(tmp_path):
    from stegwatch.serving.config import ServeConfig

    from .test_serve import _config, event, running

    with running(_config(tmp_path, max_event_age_s=3600.0)) as (url, _):
        for timestamp in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
            refused = _post(url, event("old") | {"timestamp": timestamp})
            assert refused.status_code == 422, (timestamp, refused.text)
        too_old = _post(url, event("two-hours", age_s=7200))
        assert too_old.status_code == 422 and "in the past" in too_old.text
        assert _post(url, event("half-hour", age_s=1800)).status_code == 200
        assert httpx.get(url + "/api/v1/state", timeout=10).json()["events"] == 1
    config = tmp_path / "serve.toml"
    config.write_text('[serve]\nmax_event_age = "2h"\n')
    assert ServeConfig.load(config).max_event_age_s == 7200
    assert ServeConfig.load().max_event_age_s == 7 * 86400


def _watch_until_closed(sockets: list[socket.socket], seconds: float, trickle: bytes) -> tuple[list[float | None], list[bytes]]:
    """Send ``trickle`` to every open socket twice a second; (seconds until the server closed each, what each received)."""
    started = time.monotonic()
    closed: list[float | None] = [None] * len(sockets)
    received = [b""] * len(sockets)
    while time.monotonic() - started < seconds and None in closed:
        open_now = [s for i, s in enumerate(sockets) if closed[i] is None]
        readable, _, _ = select.select(open_now, [], [], 0.5)
        for sock in readable:
            i = sockets.index(sock)
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if data:
                received[i] += data
            else:
                closed[i] = time.monotonic() - started
        for i, sock in enumerate(sockets):
            if closed[i] is None:
                try:
                    sock.send(trickle)
                except OSError:
                    closed[i] = time.monotonic() - started
    return closed, received


@pytest.mark.slow
def test_serve_closes_slow_connections_and_caps_how_many_are_open(tmp_path):
    from .test_serve import TOKEN

    config = tmp_path / "serve.toml"
    config.write_text("[serve]\nheader_timeout_s = 2\nbody_timeout_s = 2\nmax_connections = 20\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "stegwatch.cli", "serve", "--port", str(port), "--db", str(tmp_path / "h.db"),
                               "--config", str(config)], env=os.environ | {"STEGWATCH_TOKEN": TOKEN},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail(f"serve did not start: {server.stderr.read().decode() if server.poll() is not None else ''}")
        # Slowloris: 30 connections, each sending its headers a byte at a time.
        slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(30)]
        for sock in slow:
            sock.sendall(b"POST /api/v1/metrics/log HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        closed, _ = _watch_until_closed(slow, 30, b"a")
        assert None not in closed, closed
        assert sorted(closed)[9] < 1.5  # the ten beyond the cap of 20 are closed as they open
        assert max(closed) < 2 + 6  # the rest when their headers are 2 s late (plus a generous margin)
        # A body that trickles in gets 408 and its connection closed.
        body = socket.create_connection(("127.0.0.1", port), timeout=5)
        body.sendall(b"POST /api/v1/metrics/log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n{")
        [when], [answer] = _watch_until_closed([body], 30, b" ")
        assert when is not None and when < 2 + 6 and answer.startswith(b"HTTP/1.1 408")
        for sock in [*slow, body]:
            sock.close()
        assert httpx.get(url + "/health", timeout=5).json()["status"] == "ok"
    finally:
        server.terminate()
        server.wait(30)
        server.stderr.close()


# --- orphaned workers (item 4) -------------------------------------------------------------------

_POOL_SCRIPT = """
import sys, time
from stegwatch.parallel import map_unordered
print("started", flush=True)
for _ in map_unordered(time.sleep, [120.0] * 4, workers=2, chunk_size=1):
    pass
"""


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to list a process's children")
def test_pool_workers_and_the_resource_tracker_exit_when_the_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", _POOL_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert parent.stdout.readline() == b"started\n"
        deadline = time.monotonic() + 60
        while len(_children(parent.pid)) < 3 and time.monotonic() < deadline:  # two workers and the resource tracker
            time.sleep(0.2)
        children = _children(parent.pid)
        assert len(children) >= 3, children
        time.sleep(1)  # the workers are inside their two-minute tasks
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [pid for pid in children if _alive(pid)]
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()
    for pid in left:  # clean up before failing, so a regression does not leave processes behind
        os.kill(pid, 9)
    assert not left, f"still running 10 s after the parent was killed: {left}"


# --- logs on a binary file, a baseline of the wrong shape (item 11) -------------------------


def test_logs_on_a_binary_file_is_a_clear_error(tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    assert "a binary file, not a text training log" in _one_line_error(invoke("logs", binary))
    empty = tmp_path / "header-only.csv"
    empty.write_text("epoch,loss\n")
    assert "no training metric could be read" in _one_line_error(invoke("logs", empty))


def test_logs_still_reads_the_good_files_beside_a_binary_one(tmp_path):
    good = tmp_path / "history.json"
    good.write_text(json.dumps({"loss": [0.9, 0.5, 0.3], "val_loss": [1.0, 0.6, 0.5]}))
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    result = invoke("logs", good, binary, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["convergence"]["history"]["best_step"] == 3
    assert [p["reason"] for p in report["problems"]] == ["a binary file, not a text training log"]


@pytest.mark.parametrize("content", ["[1, 2, 3]", '{"false_positives": {"a": 1}}', '{"false_positives": [{"sha256": 5}]}',
                                     '"just a string"', "{not json"])
def test_fp_regression_with_a_baseline_of_the_wrong_shape_is_a_clear_error(smoke_corpus, tmp_path, content):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(content)
    result = invoke("fp-regression", "--model", "v3", "--corpus", smoke_corpus, "--baseline", baseline, "--workers", "1")
    assert str(baseline) in _one_line_error(result)


# --- extract with unreadable files among good ones (item 12) ---------------------------------


def test_extract_processes_every_readable_file_and_reports_the_others(tmp_path):
    good, unreadable, empty = tmp_path / "good.png", tmp_path / "unreadable.png", tmp_path / "empty.png"
    good.write_bytes(png_bytes(random_rgb(5, 32, 32)))
    unreadable.write_bytes(good.read_bytes())
    unreadable.chmod(0o000)
    empty.write_bytes(b"")
    command = [sys.executable, "-m", "stegwatch.cli", "extract", "--json", "good.png", "unreadable.png", "empty.png"]
    if os.geteuid() == 0:  # root reads any file: drop every capability, so the permission bits apply as they did for the user
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        command = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--", *command]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    unreadable.chmod(0o644)
    assert done.returncode == 1, done.stderr
    records = {r["path"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert list(records) == ["good.png", "unreadable.png", "empty.png"]
    assert records["good.png"]["error"] is None and records["good.png"]["streams"]
    assert records["unreadable.png"]["error"] == "cannot read: Permission denied"
    assert records["empty.png"]["error"] == "empty file (0 bytes)"


# --- every seed builds: outguess files that do not extract back (item 17) --------------------


def test_an_outguess_job_whose_file_does_not_extract_back_moves_to_another_cover(tmp_path):
    from stegwatch.corpus.build import PRESETS, BuildContext, Job, run_job
    from stegwatch.corpus.sources import builtin_sources
    from stegwatch.stego import METHODS

    if METHODS["outguess"].missing_tools():
        pytest.skip(f"outguess is not installed: {METHODS['outguess'].install_hint}")
    ctx = BuildContext(seed=1, preset=PRESETS["default"], sources=builtin_sources(), user_covers=(), out=tmp_path)
    # With the default preset and seed 1, the first cover job 108 draws gives a file outguess cannot read back.
    result = run_job(ctx, Job("stego", "outguess", 108))
    assert result.error is None, result.error
    [entry] = result.entries
    from stegwatch.corpus.validate import check_entry
    from stegwatch.format.files import DEFAULT_LIMITS
    from stegwatch.format.records import ManifestEntry

    assert check_entry(tmp_path, DEFAULT_LIMITS, ManifestEntry.model_validate(entry)).status == "passed"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_every_seed_builds_the_smoke_preset_in_full(tmp_path, seed, smoke_corpus):
    from stegwatch.corpus.build import PRESETS
    from stegwatch.stego import METHODS

    missing = [key for key, method in METHODS.items() if method.missing_tools()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed, so the smoke preset cannot be built in full")
    result = invoke("corpus", "build", "--out", tmp_path / "corpus", "--preset", "smoke", "--seed", seed, "--workers", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    preset = PRESETS["smoke"]
    assert report["errors"] == []
    assert report["by_method"] == {key: preset.stego_count(method) for key, method in METHODS.items()}
    # another seed, another corpus (the session's smoke corpus is seed 7)
    assert (tmp_path / "corpus" / "manifest.jsonl").read_bytes() != (smoke_corpus / "manifest.jsonl").read_bytes()


# --- a standing fuzz test of the readers, extract and both detectors (item 18) -----------------


def _seed_files() -> dict[str, bytes]:
    """Small valid files of each format the reader walks: PNG (RGB and RGBA), JPEG, a two-frame GIF, BMP."""
    rgb = random_rgb(11, 24, 20)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.random.default_rng(3).integers(0, 256, (20, 24), dtype=np.uint8)))
    frames = [rgb.quantize(16), random_rgb(12, 24, 20).quantize(16)]
    return {"png": png_bytes(rgb), "rgba.png": png_bytes(rgba), "jpg": _encode(rgb, "JPEG", quality=85),
            "gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:]), "bmp": _encode(rgb, "BMP")}


def _length_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, width in bytes) of the fields that size what follows: PNG chunk lengths, JPEG segment
    lengths, GIF screen and frame sizes and sub-block sizes, BMP header sizes."""
    fields: list[tuple[int, int]] = []
    if data.startswith(b"\x89PNG"):
        fields = [(offset, 4) for offset, _ in _png_chunks(data)]
    elif data.startswith(b"\xff\xd8"):
        i = 2
        while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] not in (0xD9, 0xDA):
            fields.append((i + 2, 2))
            i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    elif data.startswith(b"GIF"):
        fields = [(6, 2), (8, 2), (10, 1)] + [(i, 1) for i in range(13, len(data), 37)]
    elif data.startswith(b"BM"):
        fields = [(2, 4), (10, 4), (14, 4), (18, 4), (22, 4), (34, 4)]
    return fields


def _fix_png_crcs(data: bytes) -> bytes:
    """Recompute every whole chunk's CRC, so a mutation reaches the decoder instead of the CRC check."""
    out = bytearray(data)
    for offset, _ in _png_chunks(data):
        end = offset + 8 + int.from_bytes(data[offset:offset + 4], "big")
        if end + 4 <= len(out):
            out[end:end + 4] = zlib.crc32(out[offset + 4:end]).to_bytes(4, "big")
    return bytes(out)


def _mutate(data: bytes, mutations: list[tuple], fix_crcs: bool = False) -> bytes:
    out = bytearray(data)
    for kind, *args in mutations:
        if not out:
            break
        if kind == "flip":
            for position in args[0]:
                out[position % len(out)] ^= 1 << (position % 8)
        elif kind == "truncate":
            del out[int(args[0] * len(out)):]
        elif kind == "duplicate":  # a run of bytes (a chunk, a segment, a frame's blocks) repeated elsewhere
            start = args[0] % len(out)
            piece = out[start:start + args[1]]
            at = args[2] % (len(out) + 1)
            out[at:at] = piece
        elif kind == "length":
            fields = _length_fields(bytes(out))
            if fields:
                offset, width = fields[args[0] % len(fields)]
                out[offset:offset + width] = (args[1] % (1 << (8 * width))).to_bytes(width, "big")
    return _fix_png_crcs(bytes(out)) if fix_crcs and out.startswith(b"\x89PNG") else bytes(out)


_SEEDS = _seed_files()
_MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.integers(0, 1 << 20), min_size=1, max_size=8)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("duplicate"), st.integers(0, 1 << 20), st.integers(1, 400), st.integers(0, 1 << 20)),
    st.tuples(st.just("length"), st.integers(0, 1 << 10),
              st.sampled_from([0, 1, 2, 7, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]) | st.integers(0, (1 << 32) - 1)),
)


@pytest.fixture(scope="module")
def detectors():
    from stegwatch.detectors import load_detector

    return [load_detector("v3"), load_detector("v4")]


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(_SEEDS)), mutations=st.lists(_MUTATION, min_size=1, max_size=3),
       fix_crcs=st.booleans(), key=st.sampled_from([None, "fuzz-key"]))
def test_mutated_images_never_raise_and_always_give_records(detectors, tmp_path, kind, mutations, fix_crcs, key):
    """Bit flips, truncation, duplicated runs and rewritten length fields (PNG CRCs optionally made to match, so the
    damage reaches the decoder): the reader refuses with a reason or accepts, extract and both detectors give records."""
    from stegwatch.stego import Extraction, extract_all

    data = _mutate(_SEEDS[kind], mutations, fix_crcs)
    try:
        carrier = carrier_from_bytes(data, "fuzzed")
    except UnreadableFile as exc:
        carrier, reason = None, exc.reason
        assert reason
    if carrier is not None:
        found = extract_all(carrier, key=key)
        assert all(isinstance(x, Extraction) for xs in found.values() for x in xs)
    path = tmp_path / f"fuzzed.{kind}"
    path.write_bytes(data)
    for detector in detectors:
        [record] = detector.detect([str(path)])
        if carrier is None:
            assert record.error and record.score is None and record.is_stego is None
        else:
            assert record.error is None, record.error  # a file the reader accepts is scored, never a feature crash
            assert 0.0 <= record.score <= 1.0 and isinstance(record.is_stego, bool)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_pool_workers_keep_freed_memory_and_the_calling_process_is_left_alone():
    from stegwatch.parallel import keeps_freed_memory, map_unordered

    # Workers reuse freed blocks (page faults cost a third of their time otherwise); the caller's allocator is not
    # touched, in-process runs included.
    assert [r for chunk in map_unordered(keeps_freed_memory, range(4), workers=2, chunk_size=1) for r in chunk] == [True] * 4
    assert [r for chunk in map_unordered(keeps_freed_memory, range(2), workers=1) for r in chunk] == [False] * 2
    assert not keeps_freed_memory()
