"""``stegwatch serve`` settings: the monitor's TOML file plus an optional ``[serve]`` table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stegwatch.monitoring import history
from stegwatch.errors import ConfigError
from stegwatch.monitoring.monitor import MonitorConfig
from stegwatch.monitoring.rules import read_toml
from stegwatch.serving.aggregates import DEFAULT_WINDOWS
from stegwatch.serving.events import DEFAULT_MAX_EVENT_AGE

DEFAULT_TOKEN_ENV = "STEGWATCH_TOKEN"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> float:
    """``"5m"`` -> 300.0; units s, m, h, d."""
    if not isinstance(text, str):
        raise ConfigError(f"window {text!r}: write it as text, a positive number and a unit (s, m, h or d), e.g. \"5m\"")
    text = text.strip()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].replace(".", "", 1).isdigit() or float(text[:-1]) <= 0:
        raise ConfigError(f"window {text!r}: write a positive number and a unit (s, m, h or d), e.g. 5m")
    return float(text[:-1]) * _UNITS[text[-1]]


@dataclass
class ServeConfig:
    """Where the store is, which rules and sinks apply, and the server's limits."""

    db: Path = history.DEFAULT_DB
    monitor: MonitorConfig = field(default_factory=MonitorConfig.load)
    windows: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    token_env: str = DEFAULT_TOKEN_ENV
    max_body_bytes: int = 1_000_000
    alert_interval_s: float = 10.0
    poll_ms: int = 2000
    #: Seconds a connection has to deliver a request's headers, and a request its body.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    #: Open connections at most; one more is closed as it opens.
    max_connections: int = 200
    #: Events older than this (seconds before now) are refused.
    max_event_age_s: float = DEFAULT_MAX_EVENT_AGE.total_seconds()

    @classmethod
    def load(cls, path: str | Path | None = None, *, db: Path | None = None) -> ServeConfig:
        data = read_toml(path) if path else {}
        monitor = MonitorConfig.from_toml(data)
        raw = data.get("serve", {})
        if not isinstance(raw, dict):
            raise ConfigError("[serve] must be a table")
        unknown = set(raw) - {"windows", "token_env", "max_body_bytes", "alert_interval_s", "poll_ms", "header_timeout_s",
                              "body_timeout_s", "max_connections", "max_event_age"}
        if unknown:
            raise ConfigError(f"[serve]: unknown setting(s) {', '.join(sorted(unknown))}")
        listed = raw.get("windows", list(DEFAULT_WINDOWS))
        if not isinstance(listed, list):
            raise ConfigError("[serve] windows must be a list of windows, e.g. [\"5m\", \"1h\", \"24h\"]")
        windows = {name: parse_window(name) for name in listed}
        if len(windows) < 2:
            raise ConfigError("[serve] windows: give at least two (the current window and the trailing baseline)")
        defaults = cls.__dataclass_fields__
        for key, kinds in (("token_env", str), ("max_body_bytes", int), ("alert_interval_s", (int, float)), ("poll_ms", int),
                           ("header_timeout_s", (int, float)), ("body_timeout_s", (int, float)), ("max_connections", int)):
            if key in raw and (isinstance(raw[key], bool) or not isinstance(raw[key], kinds)):
                raise ConfigError(f"[serve] {key} has the wrong type ({type(raw[key]).__name__})")
        config = cls(db=db or history.DEFAULT_DB, monitor=monitor, windows=dict(sorted(windows.items(), key=lambda kv: kv[1])),
                     token_env=str(raw.get("token_env", DEFAULT_TOKEN_ENV)), max_body_bytes=int(raw.get("max_body_bytes", 1_000_000)),
                     alert_interval_s=float(raw.get("alert_interval_s", 10.0)), poll_ms=int(raw.get("poll_ms", 2000)),
                     header_timeout_s=float(raw.get("header_timeout_s", defaults["header_timeout_s"].default)),
                     body_timeout_s=float(raw.get("body_timeout_s", defaults["body_timeout_s"].default)),
                     max_connections=int(raw.get("max_connections", defaults["max_connections"].default)),
                     max_event_age_s=parse_window(raw["max_event_age"]) if "max_event_age" in raw
                     else defaults["max_event_age_s"].default)
        if config.max_body_bytes < 1024:
            raise ConfigError("[serve] max_body_bytes must be at least 1024")
        if min(config.header_timeout_s, config.body_timeout_s) <= 0 or config.max_connections < 1:
            raise ConfigError("[serve] header_timeout_s and body_timeout_s must be positive, max_connections at least 1")
        if config.alert_interval_s <= 0 or config.poll_ms < 100:
            raise ConfigError("[serve] alert_interval_s must be positive and poll_ms at least 100")
        return config


__all__ = ["DEFAULT_TOKEN_ENV", "ServeConfig", "parse_window"]
