"""End to end: the live dashboard in headless chromium changes without a reload when events land."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request

import httpx
import pytest

from stegwatch.monitoring.monitor import monitor

from .test_serve import AUTH, _config, event, running

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)")]


class DevTools:
    """Just enough of the Chrome DevTools Protocol: evaluate JavaScript in the page and read the value."""

    def __init__(self, profile, url: str) -> None:
        import websocket

        self.process = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--remote-allow-origins=*", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = profile / "DevToolsActivePort"
        for _ in range(300):
            if active.exists() and active.read_text().strip():
                break
            time.sleep(0.1)
        port = active.read_text().split()[0]
        for _ in range(100):
            pages = [t for t in json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json")) if t["type"] == "page"]
            if pages:
                break
            time.sleep(0.1)
        self.socket = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0

    def evaluate(self, expression: str):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": "Runtime.evaluate",
                                     "params": {"expression": expression, "returnByValue": True}}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                return message["result"]["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}")

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(10)


def test_live_dashboard_updates_without_a_reload(smoke_corpus, tmp_path):
    config = _config(tmp_path)
    monitor("v4", smoke_corpus, config=config.monitor, db=config.db, latency_sample=3, by_source=False, console=lambda line: None)
    with running(config) as (url, _):
        browser = DevTools(tmp_path / "profile", url + "/")
        try:
            browser.wait_for("document.readyState === 'complete' && !!document.querySelector('#metrics')")
            assert "False-positive rate (all clean)" in browser.evaluate("document.querySelector('#metrics').innerText")
            assert browser.evaluate("document.querySelector('#production-windows td.events').innerText") == "0"
            browser.evaluate("window.__notReloaded = 'still the same page'")
            with httpx.Client(base_url=url, headers=AUTH) as client:
                posted = client.post("/api/v1/metrics/log", json={"events": [
                    event(f"p{i}", verdict="stego" if i < 3 else "clean", score=0.9 if i < 3 else 0.1,
                          method="lsb.rgb" if i < 3 else None) for i in range(7)]})
                assert posted.json()["stored"] == 7
            browser.wait_for("document.querySelector('#production-windows td.events').innerText === '7'")
            assert "lsb.rgb" in browser.evaluate("document.querySelector('#production-methods').innerText")
            assert browser.evaluate("window.__notReloaded") == "still the same page"
            # A new monitor run lands in the history: the monitor section swaps too, still without a reload.
            newest = monitor("v3", smoke_corpus, config=config.monitor, db=config.db, latency_sample=3, console=lambda line: None)
            browser.wait_for(f"document.querySelector('#monitor').innerText.includes('{newest.metrics['run']['run_id']}')")
            assert browser.evaluate("window.__notReloaded") == "still the same page"
        finally:
            browser.close()
