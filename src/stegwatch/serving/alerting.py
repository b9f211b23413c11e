"""Production alerts: the monitor's rules on the production aggregates, sent through the monitor's sinks.

A background thread re-evaluates the rules every ``interval_s`` seconds and
soon after new events land (ingestion only sets a flag, it never waits). An
alert is sent once when its condition starts and again only after it has
cleared, exactly as in ``stegwatch monitor``. Sending happens on a second
thread, so a slow email server or webhook delays neither ingestion nor the
next evaluation.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable

from stegwatch.monitoring import history
from stegwatch.monitoring.rules import Alert, check
from stegwatch.monitoring.sinks import AlertConfig, SinkResult, dispatch
from stegwatch.serving.aggregates import production_metrics_documents

log = logging.getLogger("stegwatch.serve")


class ProductionAlerter:
    """Evaluates production rules in the background and hands new alerts to the sinks."""

    def __init__(self, summarize: Callable[[], dict], rules, alerts: AlertConfig, db, *, interval_s: float = 10.0,
                 console: Callable[[str], None] | None = None) -> None:
        self.summarize = summarize
        self.rules = rules
        self.alerts = alerts
        self.db = db
        self.interval_s = interval_s
        self.console = console or (lambda line: log.warning(line))
        self.active: list[Alert] = []
        #: What the sinks did for the latest batches (bounded: a server runs for months).
        self.sent: collections.deque[SinkResult] = collections.deque(maxlen=200)
        self._poke = threading.Event()
        self._stop = threading.Event()
        self._outbox: queue.Queue[tuple[list[Alert], str] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def evaluate(self) -> list[Alert]:
        """Check every model version's production metrics now; queue the alerts that are new. Returns the active ones."""
        active: list[Alert] = []
        for document in production_metrics_documents(self.summarize()):
            found = check(document, self.rules)
            active.extend(found)
            model = found[0].model if found else f"production {document['run']['model']['version']}"
            run_id = document["run"]["run_id"]
            new = [a for a in found if self.alerts.resend or history.mark_alert_sent(a.fingerprint, run_id, self.db)]
            history.clear_resolved_alerts(model, {a.fingerprint for a in found}, self.db)
            if new:
                self._outbox.put((new, run_id))
        self.active = active
        return active

    def poke(self) -> None:
        """New data: evaluate soon (never blocks)."""
        self._poke.set()

    def _evaluate_loop(self) -> None:
        while not self._stop.is_set():
            self._poke.wait(self.interval_s)
            self._poke.clear()
            if self._stop.is_set():
                break
            try:
                self.evaluate()
            except Exception:  # a rule or store hiccup must not end the loop
                log.exception("production alert evaluation failed")
            time.sleep(0.2)  # coalesce bursts of pokes

    def _send_loop(self) -> None:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            batch, run_id = item
            results = dispatch(batch, self.alerts, console=self.console)
            self.sent.extend(results)
            # A failed sink is logged, not retried here: the rules are evaluated every few seconds, and sending the
            # batch again would repeat it on every sink that took it (``stegwatch monitor`` resends on its next run).
            for result in results:
                if result.error:  # already free of secrets (sinks.redact)
                    log.warning("alert sink %s failed after %d attempt(s), alert(s) for run %s not delivered there: %s",
                                result.sink, result.attempts, run_id, result.error)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._evaluate_loop, name="stegwatch-alert-rules", daemon=True),
                         threading.Thread(target=self._send_loop, name="stegwatch-alert-sinks", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._poke.set()
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(timeout)


__all__ = ["ProductionAlerter"]
