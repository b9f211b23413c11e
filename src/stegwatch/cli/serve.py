"""``stegwatch serve``: the live dashboard, the history API, event ingestion and Prometheus metrics."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from stegwatch.cli._app import app, err, escape, verb
from stegwatch.monitoring.history import DEFAULT_DB


@app.command("serve")
@verb(FileNotFoundError, ValueError)
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on (default: loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    db: Annotated[Path, typer.Option(help="History database (monitor runs; production events are stored beside them).")] = DEFAULT_DB,
    config: Annotated[Optional[Path], typer.Option(help="TOML file of rules, alert sinks and a \\[serve] table.")] = None,
) -> None:
    """Serve the live dashboard, the history API, production event ingestion and Prometheus metrics.

    Writes need a bearer token: set STEGWATCH_TOKEN (or the [serve] token_env variable) before starting;
    without one, writes are refused.
    """
    from stegwatch.serving.app import create_app
    from stegwatch.serving.config import ServeConfig
    from stegwatch.serving.server import serve

    settings = ServeConfig.load(config, db=db)
    application = create_app(settings)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]listening on {host}: reachable from other machines; put it behind TLS[/yellow]")
    if not os.environ.get(settings.token_env):
        err.print(f"[yellow]{settings.token_env} is not set: event and feedback writes will be refused[/yellow]")
    err.print(f"stegwatch serve on http://{host}:{port}/ (history {escape(str(settings.db))})")
    serve(application, settings, host=host, port=port)
