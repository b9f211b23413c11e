"""Alert sinks: console (always), an alerts log file, email over SMTP, webhooks.

Secrets never sit in configuration files: the SMTP password and webhook URLs
are read from environment variables named in the config. A sink that fails
(server down, timeout) is retried once, then reported; it never aborts the
run or loses its history row.
"""

from __future__ import annotations

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

from stegwatch.monitoring.rules import Alert


@dataclass
class SinkResult:
    sink: str
    sent: int
    error: str | None = None
    attempts: int = 1


@dataclass
class AlertConfig:
    """The ``[alerts]`` table of the monitor configuration."""

    log_file: str | None = ".stegwatch/alerts.log"
    resend: bool = False
    email: dict | None = None
    webhooks: list[dict] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> AlertConfig:
        webhooks = data.get("webhook", [])
        return cls(log_file=data.get("log_file", ".stegwatch/alerts.log"), resend=bool(data.get("resend", False)),
                   email=data.get("email"), webhooks=webhooks if isinstance(webhooks, list) else [webhooks])


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


def dispatch(alerts: list[Alert], config: AlertConfig, console: Callable[[str], None] = print) -> list[SinkResult]:
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
