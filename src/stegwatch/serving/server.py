"""Running the app under uvicorn with limits a slow or greedy client cannot outlast.

uvicorn closes idle keep-alive connections, but a client that sends a
request's headers one byte at a time (slowloris) keeps its connection, and
its file descriptor, for as long as it likes. Here:

- a connection must deliver each request's headers within
  ``header_timeout_s`` of opening (or of the previous response), or it is
  closed;
- a request body must arrive within ``body_timeout_s`` (the body-reading
  middleware answers 408 and closes the connection);
- at most ``max_connections`` connections are open at once: one more is
  closed as soon as it opens.
"""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from stegwatch.serving.config import ServeConfig


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on request headers and a cap on open connections."""

    header_timeout_s: float = 10.0
    max_connections: int = 200

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's headers arrived whole
            self._disarm()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._arm()  # the next request's headers are due in time too
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_config(app, config: ServeConfig, *, host: str = "127.0.0.1", port: int = 8080, **options) -> uvicorn.Config:
    """A uvicorn configuration for ``app`` with ``config``'s connection limits (``options`` go to uvicorn)."""
    protocol = type("StegwatchH11Protocol", (GuardedH11Protocol,),
                    {"header_timeout_s": config.header_timeout_s, "max_connections": config.max_connections})
    return uvicorn.Config(app, host=host, port=port, http=protocol, **({"log_level": "warning", "access_log": False} | options))


def serve(app, config: ServeConfig, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run ``app`` until interrupted."""
    uvicorn.Server(uvicorn_config(app, config, host=host, port=port)).run()


__all__ = ["GuardedH11Protocol", "serve", "uvicorn_config"]
