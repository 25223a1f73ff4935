"""The probe listener of ``gateway dispatch`` and ``gateway scheduler``: /livez, /readyz, /metrics.

Neither process runs the web app, so neither has its probes (``probes.py``); this small HTTP
server, in daemon threads of the process, answers the same three paths with the same meaning
(``--metrics-port``, ``GATEWAY_DISPATCH_METRICS_PORT``, ``GATEWAY_SCHEDULER_METRICS_PORT``):

    /livez    200 while the process runs; reads no database (an outage must not get every
              dispatcher restarted)
    /readyz   200 when the database answers and its schema is at the head revision, within
              3 s (``Readiness.check_database``); else 503 and the reason, one line of text
    /metrics  the process metrics (``exposition.render``: all ``--processes`` summed)
    anything else 404

Readiness asks the database itself, from the listener, rather than reading a flag the main
loop refreshes: a dispatcher in a long batch or a scheduler in a long reconciliation would
leave such a flag stale, so readiness would say how busy the process is, not whether its
database answers. The check runs on the listener's own event loop (one daemon thread) with its
own one-connection engine, so a probe never waits for the main loop, and a check that hangs
(a database that accepts and never answers) is abandoned after its timeout: the probe still
gets its 503.
"""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import ConfigError, UnavailableError
from gateway.observability.exposition import render
from gateway.observability.probes import Readiness
from gateway.storage.engine import create_engine
from gateway.storage.uow import factory_for

__all__ = ["PATHS", "ProbeListener", "start_probe_listener"]

PATHS = frozenset({"/livez", "/readyz", "/metrics"})

# Readiness.check_database gives up on the database after 3 s; this bounds the wait for that
# answer too (a loop that is itself stuck), so that a probe is always answered.
_CHECK_TIMEOUT = 4.0
_PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"


class _DatabaseCheck:
    """Readiness of the process's database, asked from the listener's request threads."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._readiness = Readiness(database_url)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="px-probe-db",
                                        daemon=True)
        self._engine: AsyncEngine | None = None

    def start(self) -> None:
        self._thread.start()

    def problem(self) -> str | None:
        """Why the process is not ready (one line), or None when it is."""
        future: Future[str | None] = asyncio.run_coroutine_threadsafe(self._ask(), self._loop)
        try:
            return future.result(timeout=_CHECK_TIMEOUT)
        except TimeoutError:
            future.cancel()
            return "the database did not answer in time"

    async def _ask(self) -> str | None:
        if self._engine is None:  # made on this loop, which is the only one that uses it
            self._engine = create_engine(self._database_url, pool_size=1)
        try:
            await self._readiness.check_database(factory_for(self._engine))
        except UnavailableError as exc:
            return exc.detail
        return None

    def close(self) -> None:
        if self._thread.is_alive():
            if self._engine is not None:
                disposed = asyncio.run_coroutine_threadsafe(self._engine.dispose(), self._loop)
                try:
                    disposed.result(timeout=_CHECK_TIMEOUT)
                except TimeoutError:  # a connection stuck in a check: the process exits anyway
                    disposed.cancel()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_CHECK_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], database: _DatabaseCheck) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.database = database
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer's own looks up the address's host name (reverse DNS, which can stall a
        # container's start); the name is only used in CGI environments.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        path = urlsplit(self.path).path
        if path == "/livez":
            self._reply(200, b"ok\n")
        elif path == "/readyz":
            problem = self.server.database.problem()
            if problem is None:
                self._reply(200, b"ready\n")
            else:
                self._reply(503, f"not ready: {problem}\n".encode())
        elif path == "/metrics":
            self._reply(200, render(), _PROMETHEUS_TEXT)
        else:
            self._reply(404, b"not found\n")

    def _reply(self, status: int, body: bytes, content_type: str = _TEXT) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        # A probe every few seconds would be most of the log, unstructured, on stderr.
        return


class ProbeListener:
    """The listening probe server of one process; ``close`` stops it."""

    def __init__(self, server: _Server, database: _DatabaseCheck) -> None:
        self._server = server
        self._database = database
        self._thread = threading.Thread(target=server.serve_forever, name="px-probe-http",
                                        daemon=True)

    @property
    def port(self) -> int:
        """The port listened on (the one asked for, or the one chosen for port 0)."""
        return int(self._server.server_address[1])

    def _start(self) -> None:
        self._database.start()
        self._thread.start()

    def close(self) -> None:
        """Stop answering, close the socket and the readiness engine."""
        self._server.shutdown()
        self._server.server_close()
        self._database.close()


def start_probe_listener(host: str, port: int, database_url: str) -> ProbeListener:
    """Serve /livez, /readyz and /metrics on ``host:port`` in daemon threads of this process.

    Args:
        host: The bind address (``0.0.0.0`` in a container, where the kubelet probes the pod).
        port: The TCP port; 0 picks a free one (``ProbeListener.port``).
        database_url: The process's GATEWAY_DATABASE_URL, which /readyz checks.

    Returns:
        The running listener.

    Raises:
        ConfigError: ``host:port`` cannot be listened on.
    """
    database = _DatabaseCheck(database_url)
    try:
        server = _Server((host, port), database)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    listener = ProbeListener(server, database)
    listener._start()
    return listener
