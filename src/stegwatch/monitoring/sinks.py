"""Alert sinks: console (always), an alerts log file, email over SMTP, webhooks.

Secrets never sit in configuration files: the SMTP password and webhook URLs
are read from environment variables named in the config. A sink that fails
(server down, timeout) is retried once, then reported; it never aborts the
run or loses its history row.
"""

from __future__ import annotations

import logging
import json
import os
import smtplib
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from stegwatch.errors import ConfigError
from stegwatch.monitoring.rules import Alert

log = logging.getLogger(__name__)

DEFAULT_ALERTS_LOG = ".stegwatch/alerts.log"


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
        return cls(log_file=log_file, resend=data.get("resend", False), email=email, webhooks=webhooks)


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


def send_email(alerts: list[Alert], config: dict) -> None:
    """One message with every alert. STARTTLS when the server offers it (``starttls = "auto"``)."""
    message = EmailMessage()
    worst = "CRITICAL" if any(a.severity == "critical" for a in alerts) else "WARNING"
    message["Subject"] = f"[stegwatch {worst}] {len(alerts)} alert(s) for {alerts[0].model}"
    message["From"] = config["sender"]
    message["To"] = ", ".join(config["recipients"])
    message.set_content(_summary(alerts))
    timeout = float(config.get("timeout", 10))
    with smtplib.SMTP(config["host"], int(config.get("port", 25)), timeout=timeout) as smtp:
        smtp.ehlo()
        mode = config.get("starttls", "auto")
        if mode is True or (mode == "auto" and smtp.has_extn("starttls")):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        password_env = config.get("password_env")
        if password_env and os.environ.get(password_env):
            smtp.login(config.get("username", config["sender"]), os.environ[password_env])
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


def send_webhook(alerts: list[Alert], config: dict) -> None:
    url = os.environ.get(config["url_env"], "")
    if not url:
        raise ValueError(f"environment variable {config['url_env']} holds no webhook URL")
    request = urllib.request.Request(url, data=webhook_body(alerts, config.get("format", "slack")),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=float(config.get("timeout", 5))) as response:  # noqa: S310 - URL from the operator
        if response.status >= 300:
            raise OSError(f"webhook answered HTTP {response.status}")


def _attempt(name: str, send: Callable[[], None], count: int) -> SinkResult:
    error = None
    for attempt in (1, 2):  # one retry
        try:
            send()
            return SinkResult(name, count, None, attempt)
        except Exception as exc:  # any sink failure is reported, never raised
            error = f"{type(exc).__name__}: {exc}"
    return SinkResult(name, 0, error, 2)


def dispatch(alerts: list[Alert], config: AlertConfig, console: Callable[[str], None] = log.warning) -> list[SinkResult]:
    """Send ``alerts`` to every configured sink; returns what each sink did."""
    results = []
    for alert in alerts:
        console(alert.message())
    results.append(SinkResult("console", len(alerts)))
    if not alerts:
        return results
    if config.log_file:
        results.append(_attempt("log", lambda: send_log(alerts, config.log_file), len(alerts)))
    if config.email:
        results.append(_attempt("email", lambda: send_email(alerts, config.email), len(alerts)))
    for hook in config.webhooks:
        results.append(_attempt(f"webhook:{hook.get('format', 'slack')}", lambda hook=hook: send_webhook(alerts, hook), len(alerts)))
    return results
