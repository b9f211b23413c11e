#!/usr/bin/env python3
"""Bounded load test of `stegwatch serve` ingestion (run by benchmarks/run.py, or alone).

Starts the server in its own process on 127.0.0.1 with a fresh database,
then several client threads post a fixed number of scan events: first one
event per request (how a scanner posts as it goes), then batches. Every
client also re-posts some of its events (retries), and two clients share
some ids, so idempotency is exercised under load. At the end the database
must hold every distinct event exactly once, or the run fails.

Usage: python benchmarks/ingest_load.py [--clients 4] [--events 500] [--batch 50]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

TOKEN = "load-test-token"


def _server(db: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "stegwatch.cli", "serve", "--port", str(port), "--db", str(db)],
                               env=os.environ | {"STEGWATCH_TOKEN": TOKEN}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {process.stderr.read().decode()[-2000:]}")


def _event(request_id: str, at: str, k: int) -> dict:
    stego = k % 50 == 0
    return {"request_id": request_id, "timestamp": at, "model_version": "v4-load", "latency_ms": 5.0 + (k % 97),
            "score": 0.95 if stego else 0.05, "verdict": "stego" if stego else "clean", "method": "lsb.rgb" if stego else None,
            "image_format": "png", "image_bytes": 10_000 + k}


def _phase(url: str, clients: int, events: int, batch: int, prefix: str, at: str) -> dict:
    """Each client posts ``events`` events (``batch`` per request), re-posts every tenth request, and shares ids with the next."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    sent_ids: set[str] = set()

    def client(c: int) -> None:
        own = [f"{prefix}-{c}-{k}" for k in range(events)]
        shared = [f"{prefix}-{(c + 1) % clients}-{k}" for k in range(0, events, 10)]  # the neighbour's ids, posted too
        ids = own + shared
        mine_latencies, mine_status = [], {}
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as session:
            for n, start in enumerate(range(0, len(ids), batch)):
                chunk = ids[start:start + batch]
                body = {"events": [_event(i, at, int(i.rsplit("-", 1)[1])) for i in chunk]} if batch > 1 else \
                    _event(chunk[0], at, int(chunk[0].rsplit("-", 1)[1]))
                for _attempt in range(2 if n % 10 == 0 else 1):  # every tenth request is retried
                    began = time.perf_counter()
                    response = session.post("/api/v1/metrics/log", json=body)
                    mine_latencies.append(1000 * (time.perf_counter() - began))
                    mine_status[response.status_code] = mine_status.get(response.status_code, 0) + 1
        with lock:
            latencies.extend(mine_latencies)
            sent_ids.update(ids)
            for code, count in mine_status.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    values = np.asarray(latencies)
    return {"clients": clients, "batch": batch, "requests": len(latencies), "distinct_events": len(sent_ids),
            "seconds": seconds, "events_per_s": len(sent_ids) / seconds, "requests_per_s": len(latencies) / seconds,
            "request_ms": {q: float(np.percentile(values, p)) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))},
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "ids": sent_ids}


def ingest_load(clients: int = 4, events: int = 500, batch: int = 50) -> dict:
    """Both phases against one fresh server; raises if any event is missing or stored twice."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "history.db"
        process, url = _server(db)
        at = datetime.now(UTC).isoformat()
        try:
            single = _phase(url, clients, events, 1, "s", at)
            batched = _phase(url, clients, events * 20, batch, "b", at)
        finally:
            process.terminate()
            process.wait(30)
        with sqlite3.connect(db) as connection:
            rows = [r[0] for r in connection.execute("SELECT request_id FROM production_events")]
        aggregates = _aggregate_cost(db)
    expected = single.pop("ids") | batched.pop("ids")
    if len(rows) != len(set(rows)) or set(rows) != expected:
        raise AssertionError(f"stored {len(rows)} rows ({len(set(rows))} distinct) for {len(expected)} distinct events")
    for phase in (single, batched):
        if set(phase["statuses"]) != {"200"}:
            raise AssertionError(f"unexpected HTTP statuses {phase['statuses']}")
    return {"single": single, "batched": batched, "stored": len(rows), "exactly_once": True, "aggregates": aggregates}


def _aggregate_cost(db: Path) -> dict:
    """Seconds to load the longest window's events and compute every window's aggregates (what the server does)."""
    from stegwatch.serving.aggregates import DEFAULT_WINDOWS, production_summary
    from stegwatch.serving.store import ProductionStore

    store = ProductionStore(db)
    began = time.perf_counter()
    now = time.time()
    columns = store.events_since(now - max(DEFAULT_WINDOWS.values()))
    production_summary(columns, now)
    seconds = time.perf_counter() - began
    store.close()
    return {"events": int(columns["ts"].size), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(ingest_load(args.clients, args.events, args.batch), indent=1))


if __name__ == "__main__":
    main()
