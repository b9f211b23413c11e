"""Alert sinks: console (always), an alerts log file, email over SMTP, webhooks.

Secrets never sit in configuration files: the SMTP password and webhook URLs
are read from environment variables named in the config. Credentials never
cross the network in clear: the SMTP sink logs in only over TLS (STARTTLS, or
implicit TLS on port 465) unless the config says ``allow_plaintext_auth``.
Each network sink has a total deadline (connect, send and read, every
attempt together): when it passes, the connection is shut down, so a server
that trickles bytes cannot hold a run. A sink that fails (server down,
timeout, deadline) is retried once while its deadline allows, then reported;
it never aborts the run or loses its history row.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import smtplib
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from stegwatch.errors import ConfigError
from stegwatch.monitoring.rules import Alert

log = logging.getLogger(__name__)

DEFAULT_ALERTS_LOG = ".stegwatch/alerts.log"
#: Total seconds a network sink may take (connect + send + read, both attempts), unless its table sets ``deadline_s``.
DEFAULT_DEADLINE_S = 30.0
STARTTLS_MODES = ("auto", "always", "never")


@dataclass
class SinkResult:
    sink: str
    sent: int
    error: str | None = None
    attempts: int = 1


@dataclass
class AlertConfig:
    """The ``[alerts]`` table of the monitor configuration."""

    log_file: str | None = DEFAULT_ALERTS_LOG
    resend: bool = False
    email: dict | None = None
    webhooks: list[dict] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> AlertConfig:
        """From the parsed ``[alerts]`` table, checked like ``[serve]``: unknown settings and wrong types are refused."""
        if not isinstance(data, dict):
            raise ConfigError("[alerts] must be a table")
        unknown = set(data) - {"log_file", "resend", "email", "webhook"}
        if unknown:
            raise ConfigError(f"[alerts]: unknown setting(s) {', '.join(sorted(unknown))}")
        log_file = data.get("log_file", DEFAULT_ALERTS_LOG)
        if log_file is not None and not isinstance(log_file, str):
            raise ConfigError("[alerts] log_file must be a path (text)")
        if not isinstance(data.get("resend", False), bool):
            raise ConfigError("[alerts] resend must be true or false")
        email = data.get("email")
        if email is not None and not isinstance(email, dict):
            raise ConfigError("[alerts.email] must be a table")
        webhooks = data.get("webhook", [])
        webhooks = webhooks if isinstance(webhooks, list) else [webhooks]
        if not all(isinstance(w, dict) for w in webhooks):
            raise ConfigError("[[alerts.webhook]] entries must be tables")
        config = cls(log_file=log_file, resend=data.get("resend", False), email=email, webhooks=webhooks)
        if config.email is not None:
            _check_table("[alerts.email]", config.email, EMAIL_SETTINGS, required=("host", "sender", "recipients"))
            if not isinstance(config.email["recipients"], list) or not all(isinstance(r, str) for r in config.email["recipients"]):
                raise ConfigError("[alerts.email] recipients must be a list of addresses")
            starttls_mode(config.email)
        for hook in config.webhooks:
            _check_table("[[alerts.webhook]]", hook, WEBHOOK_SETTINGS, required=("url_env",))
            if hook.get("format", "slack") not in WEBHOOK_FORMATS:
                raise ConfigError(f"[[alerts.webhook]] format = {hook['format']!r}: choose {' or '.join(WEBHOOK_FORMATS)}")
        return config


#: The settings each sink's table may hold. Secrets are not among them: ``password_env`` and ``url_env`` name the
#: environment variables that hold them, and a ``password`` or ``url`` written into the file is refused.
EMAIL_SETTINGS = {"host": str, "port": int, "sender": str, "recipients": list, "username": str, "password_env": str,
                  "starttls": (str, bool), "implicit_tls": bool, "allow_plaintext_auth": bool, "ca_file": str,
                  "timeout": (int, float), "deadline_s": (int, float)}
WEBHOOK_SETTINGS = {"url_env": str, "format": str, "ca_file": str, "timeout": (int, float), "deadline_s": (int, float)}
WEBHOOK_FORMATS = ("slack", "alertmanager")
_SECRET_IN_FILE = {"password": "password_env", "url": "url_env"}


def _check_table(name: str, table: dict, settings: dict, *, required: tuple[str, ...]) -> None:
    """Refuse unknown settings (a secret written into the file above all), missing ones and wrong types, at load."""
    for key in table:
        if key in _SECRET_IN_FILE:
            raise ConfigError(f"{name}: {key} must not be written in a file; put it in an environment variable and name "
                              f"that variable with {_SECRET_IN_FILE[key]}")
        if key not in settings:
            raise ConfigError(f"{name}: unknown setting {key!r} (known: {', '.join(sorted(settings))})")
        kind = settings[key]
        value = table[key]
        if isinstance(value, bool) and kind in (int, (int, float)) or not isinstance(value, kind):
            raise ConfigError(f"{name}: {key} has the wrong type ({type(value).__name__})")
    missing = [key for key in required if key not in table]
    if missing:
        raise ConfigError(f"{name}: missing {', '.join(missing)}")


def secrets_of(table: dict) -> dict[str, str]:
    """The secrets a sink's table names, by environment variable: ``{"SMTP_PASSWORD": "..."}`` (set ones only)."""
    names = [table[key] for key in ("password_env", "url_env") if isinstance(table.get(key), str)]
    return {name: os.environ[name] for name in names if os.environ.get(name)}


def redact(text: str, secrets: dict[str, str]) -> str:
    """``text`` with every secret's value replaced by ``<$NAME>`` (a URL's token must not reach a log or a screen).

    An exception may quote a secret in part: urllib strips a URL, quotes its
    path, or names only the part after the host. So the whole value, its
    stripped and percent-quoted forms, and every run of 6 or more letters,
    digits, ``_`` or ``-`` in it (a token, a password's words) are replaced,
    longest first.
    """
    from urllib.parse import quote

    pieces: list[tuple[str, str]] = []
    for name, value in secrets.items():
        forms = {value, value.strip(), quote(value), quote(value.strip(), safe="/:")}
        forms |= {part for part in re.split(r"[^A-Za-z0-9_\-]+", value) if len(part) >= 6}
        pieces += [(form, name) for form in forms if form]
    for form, name in sorted(pieces, key=lambda item: -len(item[0])):
        text = text.replace(form, f"<${name}>")
    return text

def starttls_mode(config: dict) -> str:
    """``auto`` (STARTTLS when offered), ``always`` (refuse a server without it) or ``never``; ``true``/``false`` mean always/never."""
    mode = config.get("starttls", "auto")
    mode = {True: "always", False: "never"}.get(mode, mode) if isinstance(mode, bool) else mode
    if mode not in STARTTLS_MODES:
        raise ConfigError(f"[alerts.email] starttls = {mode!r}: choose auto, always or never")
    return mode


class Deadline:
    """A total time budget for one sink. When it passes, every watched socket is shut down.

    Socket timeouts apply to each read, so a server sending one byte a second
    never trips them; shutting the socket down from a timer ends the blocked
    call at once, whatever it is waiting for.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds
        self._watched: list[Callable[[], socket.socket | None]] = []
        self._lock = threading.Lock()
        self.expired = False
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    def timeout(self, per_operation: float) -> float:
        """The socket timeout for the next operation: the per-operation one, or what is left if less."""
        left = self.remaining()
        if left <= 0:
            raise TimeoutError(f"deadline of {self.seconds:g} s passed")
        return min(per_operation, left)

    def watch(self, current_socket: Callable[[], socket.socket | None]) -> None:
        """Shut down whatever socket ``current_socket()`` returns when the deadline passes."""
        with self._lock:
            self._watched.append(current_socket)
            expired = self.expired
        if expired:
            self._shutdown(current_socket)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            watched = list(self._watched)
        for current_socket in watched:
            self._shutdown(current_socket)

    @staticmethod
    def _shutdown(current_socket: Callable[[], socket.socket | None]) -> None:
        sock = current_socket()
        if sock is None:
            return
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the raw socket's, also under a TLS wrapper
        except OSError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()


def _deadline_s(config: dict) -> float:
    return float(config.get("deadline_s", DEFAULT_DEADLINE_S))


@contextmanager
def _own_deadline(config: dict):
    deadline = Deadline(_deadline_s(config))
    try:
        yield deadline
    finally:
        deadline.cancel()


def _summary(alerts: list[Alert]) -> str:
    return "\n".join(a.message() for a in alerts)


def send_log(alerts: list[Alert], path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as handle:
        for alert in alerts:
            handle.write(json.dumps(alert.to_json_dict() | {"logged_at": datetime.now(UTC).isoformat(timespec="seconds")},
                                    sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class PlaintextAuthRefused(smtplib.SMTPException):
    """The server offers no TLS and the configuration does not allow sending credentials in clear."""


def send_email(alerts: list[Alert], config: dict, deadline: Deadline | None = None,
               warn: Callable[[str], None] = lambda line: None) -> None:
    """One message with every alert, over SMTP.

    ``implicit_tls`` (default: true on port 465) speaks TLS from the first
    byte (SMTPS). Otherwise ``starttls`` decides: ``auto`` upgrades when the
    server offers STARTTLS, ``always`` refuses a server that does not,
    ``never`` does not ask. Credentials (``password_env``) are sent only over
    TLS; without it the sink fails, unless ``allow_plaintext_auth = true``
    (then ``warn`` is told). ``ca_file`` names extra trusted certificates.
    """
    message = EmailMessage()
    worst = "CRITICAL" if any(a.severity == "critical" for a in alerts) else "WARNING"
    message["Subject"] = f"[stegwatch {worst}] {len(alerts)} alert(s) for {alerts[0].model}"
    message["From"] = config["sender"]
    message["To"] = ", ".join(config["recipients"])
    message.set_content(_summary(alerts))
    if deadline is None:
        with _own_deadline(config) as own:
            return send_email(alerts, config, own, warn)
    port = int(config.get("port", 25))
    implicit = bool(config.get("implicit_tls", port == 465))
    mode = starttls_mode(config)
    context = ssl.create_default_context(cafile=config.get("ca_file"))
    password_env = config.get("password_env")
    password = os.environ.get(password_env, "") if password_env else ""
    timeout = deadline.timeout(float(config.get("timeout", 10)))
    base, options = (smtplib.SMTP_SSL, {"context": context}) if implicit else (smtplib.SMTP, {})

    class Watched(base):
        def _get_socket(self, host, port, timeout):
            deadline.watch(lambda: getattr(self, "sock", None))  # the current one: STARTTLS replaces it
            return super()._get_socket(host, port, timeout)

    with Watched(config["host"], port, timeout=timeout, **options) as smtp:
        smtp.ehlo()
        encrypted = implicit
        if not implicit and mode != "never":
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
                encrypted = True
            elif mode == "always":
                raise smtplib.SMTPNotSupportedError(f"{config['host']} does not offer STARTTLS (starttls = always)")
        if password:
            if not encrypted:
                if not config.get("allow_plaintext_auth", False):
                    raise PlaintextAuthRefused(
                        f"{config['host']}:{port} offers no TLS; refusing to send the SMTP password in clear "
                        "(use implicit_tls or a server with STARTTLS, or set allow_plaintext_auth = true)")
                warn(f"alert sink email: sending the SMTP password to {config['host']}:{port} without TLS "
                     "(allow_plaintext_auth = true)")
            smtp.login(config.get("username", config["sender"]), password)
        smtp.send_message(message)


def webhook_body(alerts: list[Alert], fmt: str) -> bytes:
    """A Slack-compatible ``{"text": ...}`` body, or a Prometheus Alertmanager list of alerts."""
    if fmt == "alertmanager":
        payload = [
            {"labels": {"alertname": a.rule, "severity": a.severity, "metric": a.metric, "model": a.model},
             "annotations": {"summary": a.message(), "description": a.description, "run_id": a.run_id},
             "startsAt": datetime.now(UTC).isoformat(timespec="seconds")}
            for a in alerts
        ]
        return json.dumps(payload).encode()
    return json.dumps({"text": _summary(alerts)}).encode()


class _Watched:
    """Connection factories for urllib that hand each new connection's socket to a :class:`Deadline`."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, connection_class):
        def make(host, **kwargs):
            connection = connection_class(host, **kwargs)
            self.deadline.watch(lambda: connection.sock)
            return connection
        return make


def send_webhook(alerts: list[Alert], config: dict, deadline: Deadline | None = None) -> None:
    """POST the alerts to the URL held by the environment variable ``url_env`` (``timeout`` per read, ``deadline_s`` in all)."""
    url = os.environ.get(config["url_env"], "")
    if not url:
        raise ValueError(f"environment variable {config['url_env']} holds no webhook URL")
    if deadline is None:
        with _own_deadline(config) as own:
            return send_webhook(alerts, config, own)
    request = urllib.request.Request(url, data=webhook_body(alerts, config.get("format", "slack")),
                                     headers={"Content-Type": "application/json"}, method="POST")
    watched = _Watched(deadline)

    context = ssl.create_default_context(cafile=config.get("ca_file"))

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(watched(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(watched(http.client.HTTPSConnection), req, context=context)

    opener = urllib.request.build_opener(HTTP, HTTPS)
    timeout = deadline.timeout(float(config.get("timeout", 5)))
    with opener.open(request, timeout=timeout) as response:  # noqa: S310 - URL from the operator
        if response.status >= 300:
            raise OSError(f"webhook answered HTTP {response.status}")
        response.read()


def _attempt(name: str, send: Callable[[Deadline | None], None], count: int, deadline_s: float | None = None,
             secrets: dict[str, str] | None = None) -> SinkResult:
    """Send, and retry once if the deadline (``deadline_s`` for both attempts together) leaves time.

    The error reported names the exception with every value of ``secrets``
    (:func:`secrets_of`) replaced by its variable's name: an exception about a
    webhook URL quotes the URL, and the report reaches the console and ``--json``.
    """
    deadline = Deadline(deadline_s) if deadline_s is not None else None
    error, attempts = None, 0
    try:
        for attempts in (1, 2):  # one retry
            try:
                send(deadline)
                return SinkResult(name, count, None, attempts)
            except Exception as exc:  # any sink failure is reported, never raised
                error = redact(f"{type(exc).__name__}: {exc}", secrets or {})
            if deadline is not None and (deadline.expired or deadline.remaining() <= 0):
                error = f"TimeoutError: deadline of {deadline.seconds:g} s passed (connect, send and read); last: {error}"
                break
    finally:
        if deadline is not None:
            deadline.cancel()
    return SinkResult(name, 0, error, attempts)


def dispatch_local(alerts: list[Alert], config: AlertConfig, console: Callable[[str], None] = log.warning) -> list[SinkResult]:
    """The console and the alerts log: quick, on this machine."""
    for alert in alerts:
        console(alert.message())
    results = [SinkResult("console", len(alerts))]
    if alerts and config.log_file:
        results.append(_attempt("log", lambda _: send_log(alerts, config.log_file), len(alerts)))
    return results


def dispatch_remote(alerts: list[Alert], config: AlertConfig, console: Callable[[str], None] = log.warning) -> list[SinkResult]:
    """Email and webhooks, each within its deadline."""
    results = []
    if not alerts:
        return results
    if config.email:
        email = config.email
        results.append(_attempt("email", lambda deadline: send_email(alerts, email, deadline, warn=console), len(alerts),
                                _deadline_s(email), secrets_of(email)))
    for hook in config.webhooks:
        results.append(_attempt(f"webhook:{hook.get('format', 'slack')}",
                                lambda deadline, hook=hook: send_webhook(alerts, hook, deadline), len(alerts), _deadline_s(hook),
                                secrets_of(hook)))
    return results


def dispatch(alerts: list[Alert], config: AlertConfig, console: Callable[[str], None] = log.warning) -> list[SinkResult]:
    """Send ``alerts`` to every configured sink; returns what each sink did."""
    return dispatch_local(alerts, config, console) + dispatch_remote(alerts, config, console)


def delivered(results: list[SinkResult]) -> int:
    """How many alerts reached every sink that carries them off this machine (email, webhooks): the fewest any of
    them delivered. Without such a sink, what the alerts log (else the console) took.

    An alert that one remote sink failed to deliver counts as not delivered, so
    the caller sends it again on the next run: a duplicate on a sink that took
    it beats an alert that never reaches the one that did not.
    """
    remote = [r.sent for r in results if r.sink not in ("console", "log")]
    if remote:
        return min(remote)
    local = [r.sent for r in results if r.sink == "log"]
    return max(local) if local else sum(r.sent for r in results)
