"""The ``stegwatch serve`` web app (FastAPI): live dashboard, history API, event ingestion, Prometheus metrics.

Routes:

- ``GET /``: the live dashboard (the latest monitor run, as in the HTML
  dashboard, plus the production panel); it polls ``/api/v1/state`` and
  swaps in fresh fragments without a reload. No CDN: works offline.
- ``GET /api/runs``, ``GET /api/runs/{run_id}``: the monitor history.
- ``POST /api/v1/metrics/log``: one scan event or ``{"events": [...]}``.
- ``POST /api/v1/feedback``: a ground-truth label for a request id.
- ``GET /api/v1/production``: the production aggregates as JSON.
- ``GET /metrics``: Prometheus exposition. ``GET /health``: liveness and the store.

Writes need ``Authorization: Bearer <token>`` where the token is the value of
the environment variable named by ``token_env`` (default ``STEGWATCH_TOKEN``);
with no token configured, writes are refused. Bodies over ``max_body_bytes``
get 413, bodies slower than ``body_timeout_s`` 408, malformed ones (or nested
deeper than :data:`MAX_JSON_DEPTH`) 422 with the reasons; none is stored. A
batch with a conflicting request id gets 409 and nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import threading
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from stegwatch.evaluation.logs import NoTrainingLog, parse_logs
from stegwatch.monitoring import history
from stegwatch.monitoring.dashboard import dashboard_context, template_environment
from stegwatch.monitoring.monitor import recent_alerts
from stegwatch.monitoring.rules import check
from stegwatch.serving.aggregates import production_summary
from stegwatch.serving.alerting import ProductionAlerter
from stegwatch.serving.config import ServeConfig
from stegwatch.serving.events import EventBatch, Feedback, ScanEvent
from stegwatch.serving.prometheus import metrics_text
from stegwatch.serving.store import ProductionStore

TEMPLATES = Path(__file__).parent / "templates"


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes (declared or streamed) with 413,
    and bodies not received within ``timeout_s`` seconds with 408 (closing the connection)."""

    def __init__(self, app, limit: int, timeout_s: float = 30.0) -> None:
        self.app, self.limit, self.timeout_s = app, limit, timeout_s

    async def _refuse(self, scope, receive, send) -> None:
        await JSONResponse({"detail": f"request body larger than {self.limit} bytes"}, status_code=413)(scope, receive, send)

    async def _too_slow(self, scope, receive, send) -> None:
        await JSONResponse({"detail": f"request body not received within {self.timeout_s:g} s"}, status_code=408,
                           headers={"Connection": "close"})(scope, receive, send)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole body, however slowly it trickles in
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.limit:
                        await self._refuse(scope, receive, send)
                        return
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            await self._too_slow(scope, receive, send)
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class LiveState:
    """The store, the history and their rendered views, recomputed only when something changed."""

    def __init__(self, config: ServeConfig, store: ProductionStore) -> None:
        self.config, self.store = config, store
        self.generation = 0  # bumped by every successful write through this server
        self._generation_lock = threading.Lock()  # never held for long: writers on the event loop take it
        self._lock = threading.Lock()  # one summary computation at a time
        self._summary_key: tuple | None = None
        self._summary: dict = {}
        self._summary_at = 0.0
        self._summary_cost = 0.0
        self._monitor_key: tuple | None = None
        self._monitor_html = ""
        self.templates = template_environment(TEMPLATES)

    def changed(self) -> None:
        with self._generation_lock:
            self.generation += 1

    def latest_run(self) -> dict | None:
        runs = history.latest_runs(self.config.db)
        return runs[-1] if runs else None

    def state(self) -> dict:
        with history.connect(self.config.db) as connection:
            row = connection.execute("SELECT run_id FROM runs ORDER BY timestamp DESC, run_id DESC LIMIT 1").fetchone()
            run_count = connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return {"latest_run": row[0] if row else None, "runs": int(run_count), **self.store.counts(), "generation": self.generation}

    def summary(self) -> dict:
        """Production aggregates, recomputed when the data changed or the windows rolled on.

        Changed data (a write through any server or the CLI moves the
        store's counts or :meth:`~ProductionStore.change_token`): at once, so
        a read always sees every write that returned before it. Unchanged
        data: the windows roll on, so at most once a second and no more often
        than every five times the last computation took, so a store of
        millions of events costs a bounded share of one core however often
        pages and scrapers ask.
        """
        with self._lock:
            now = time.time()
            counts = self.store.counts()
            key = (tuple(counts.values()), self.store.change_token(), self.generation)
            # A summary of other data is never served: a cost-based pause here returned
            # aggregates older than the writes a client had just made (seen under load).
            if self._summary and key == self._summary_key and now - self._summary_at < max(1.0, 5 * self._summary_cost):
                return self._summary
            began = time.perf_counter()
            columns = self.store.events_since(now - max(self.config.windows.values()))
            summary = production_summary(columns, now, self.config.windows)
            summary["store"] = {"path": str(self.config.db), **counts}
            self._summary, self._summary_key, self._summary_at = summary, key, now
            self._summary_cost = time.perf_counter() - began
            return summary

    def monitor_html(self) -> str:
        """The latest monitor run rendered as the HTML dashboard's body (empty-state text when none)."""
        state = self.state()
        key = (state["latest_run"], state["runs"])
        with self._lock:
            if key == self._monitor_key:
                return self._monitor_html
        latest = self.latest_run()
        if latest is None:
            html = ("<h1>stegwatch live dashboard</h1><p id=\"no-runs\">No monitor runs in <code>"
                    f"{_escape(str(self.config.db))}</code> yet: run <code>stegwatch monitor</code>.</p>")
        else:
            metrics = latest["metrics"]
            model_runs = history.runs(self.config.db, latest["model_name"])
            baseline = history.baseline_for(latest["model_name"], self.config.db)
            alerts = check(metrics, self.config.monitor.rules, baseline["metrics"] if baseline else None)
            training_log = Path(metrics["run"]["model"].get("path") or "").parent / "training_log.jsonl"
            try:
                training_table = parse_logs([training_log]).table if training_log.is_file() else None
            except NoTrainingLog:  # a broken log costs the loss plot, not the page
                training_table = None
            context, _ = dashboard_context(model_runs, metrics, latest["status"], [a.to_json_dict() for a in alerts], self.config.monitor.rules,
                                           training_table,
                                           recent_alerts(self.config.monitor.alerts.log_file))
            html = self.templates.get_template("dashboard_body.html.j2").render(**context)
        with self._lock:
            self._monitor_key, self._monitor_html = key, html
        return html

    def production_html(self, alerts) -> str:
        summary = self.summary()
        return self.templates.get_template("production.html.j2").render(
            summary=summary, alerts=[a.to_json_dict() for a in alerts],
            computed=datetime.fromtimestamp(summary["now"], UTC).isoformat(timespec="seconds"))


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


#: Deepest JSON nesting a body may have; an event batch needs 3. Checked before parsing, so a deep body never recurses.
MAX_JSON_DEPTH = 32


def json_depth(raw: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in a JSON text, brackets inside strings not counted (no parsing).

    Linear in the body's length whatever it holds (one pass of array
    operations): a quote ends or starts a string unless an odd number of
    backslashes precedes it, and the brackets between an opening quote and
    its closing one are text. Invalid JSON may be mis-measured; the parser
    that runs next refuses it.
    """
    data = np.frombuffer(raw, dtype=np.uint8)
    if data.size == 0:
        return 0
    position = np.arange(data.size)
    backslash = data == ord("\\")
    # Backslashes in the run that ends just before each byte: position - 1 - the last non-backslash before it.
    last_other = np.maximum.accumulate(np.where(backslash, -1, position))
    run_before = np.empty(data.size, dtype=np.int64)
    run_before[0] = 0
    run_before[1:] = position[:-1] - last_other[:-1]
    quote = (data == ord('"')) & (run_before % 2 == 0)
    outside = np.cumsum(quote) % 2 == 0  # after an even number of real quotes: not in a string (a quote itself is text)
    step = (np.isin(data, (ord("["), ord("{"))).astype(np.int32) - np.isin(data, (ord("]"), ord("}")))) * outside
    return int(np.cumsum(step).max(initial=0))


def _validation_response(exc: ValidationError) -> JSONResponse:
    return JSONResponse({"detail": exc.errors(include_url=False, include_input=False, include_context=False)}, status_code=422)


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The app for one history database (the token is read from the environment once, here)."""
    config = config or ServeConfig.load()
    store = ProductionStore(config.db)
    live = LiveState(config, store)
    alerter = ProductionAlerter(live.summary, config.monitor.rules, config.monitor.alerts, config.db,
                                interval_s=config.alert_interval_s)
    token = os.environ.get(config.token_env, "")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        alerter.start()
        try:
            yield
        finally:
            alerter.stop()
            store.close()

    app = FastAPI(title="stegwatch", lifespan=lifespan, docs_url=None, redoc_url=None)  # the docs pages load from a CDN
    app.add_middleware(BodyLimit, limit=config.max_body_bytes, timeout_s=config.body_timeout_s)
    app.state.live, app.state.alerter, app.state.config = live, alerter, config

    def authorize(request: Request) -> None:
        if not token:
            raise HTTPException(403, f"writes are disabled: no token configured (set the environment variable {config.token_env})")
        supplied = request.headers.get("authorization", "")
        scheme, _, value = supplied.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    async def json_body(request: Request):
        raw = await request.body()
        if json_depth(raw) > MAX_JSON_DEPTH:
            raise HTTPException(422, f"body is nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: also a 5,000-digit integer
            raise HTTPException(422, f"body is not JSON: {exc}") from None

    context = {"max_age": timedelta(seconds=config.max_event_age_s)}

    @app.post("/api/v1/metrics/log")
    async def log_events(request: Request):
        authorize(request)
        payload = await json_body(request)
        try:
            if isinstance(payload, dict) and "events" in payload:
                events = EventBatch.model_validate(payload, context=context).events
            else:
                events = [ScanEvent.model_validate(payload, context=context)]
        except ValidationError as exc:
            return _validation_response(exc)
        result = await run_in_threadpool(store.add_events, events)
        if result.stored:
            live.changed()
            alerter.poke()
        return JSONResponse(result.to_json_dict(), status_code=409 if result.conflicts else 200)

    @app.post("/api/v1/feedback")
    async def feedback(request: Request):
        authorize(request)
        payload = await json_body(request)
        try:
            item = Feedback.model_validate(payload)
        except ValidationError as exc:
            return _validation_response(exc)
        new = await run_in_threadpool(store.add_feedback, item)
        if new is None:
            raise HTTPException(404, f"no scan event with request_id {item.request_id!r}")
        live.changed()
        alerter.poke()
        return {"request_id": item.request_id, "label": item.label, "new": new}

    @app.get("/api/runs")
    def list_runs():
        return [{k: run[k] for k in ("run_id", "timestamp", "model_name", "model_version", "status")}
                | {"false_positive_rate": run["metrics"].get("false_positive_rate"),
                   "detection_rate": run["metrics"].get("detection_rate"), "roc_auc": run["metrics"].get("roc_auc")}
                for run in history.runs(config.db)]

    @app.get("/api/runs/{run_id}")
    def get_run(run_id: str):
        run = history.get_run(run_id, config.db)
        if run is None:
            raise HTTPException(404, f"no run {run_id!r} in the history")
        return run

    @app.get("/api/v1/production")
    def production():
        return live.summary() | {"active_alerts": [a.to_json_dict() for a in alerter.active]}

    @app.get("/api/v1/state")
    def state():
        return live.state()

    @app.get("/fragment/monitor", response_class=HTMLResponse)
    def monitor_fragment():
        return live.monitor_html()

    @app.get("/fragment/production", response_class=HTMLResponse)
    def production_fragment():
        return live.production_html(alerter.active)

    @app.get("/", response_class=HTMLResponse)
    def dashboard():
        return live.templates.get_template("live.html.j2").render(
            monitor=live.monitor_html(), production=live.production_html(alerter.active), state=json.dumps(live.state()),
            poll_ms=config.poll_ms)

    @app.get("/metrics")
    def prometheus():
        body, content_type = metrics_text(config.db, live.summary())
        return Response(body, media_type=content_type)

    @app.get("/health")
    def health():
        try:
            return {"status": "ok", "store": store.status()}
        except Exception as exc:  # the store is down: say so, with the reason
            return JSONResponse({"status": "error", "store": {"ok": False, "error": f"{type(exc).__name__}: {exc}"}}, status_code=503)

    return app


__all__ = ["BodyLimit", "create_app"]
