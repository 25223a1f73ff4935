"""The one loopback server for simulators, the hub under test and the sandbox.

``LoopbackServer`` runs an ASGI app with uvicorn on 127.0.0.1, either in a background thread
(``start``/``stop``, or ``with``) or in the caller's event loop (``async with``): in the same
loop as a test, the hub's engine (bound to that loop) is shared with the test, and nothing
sleeps, the server makes progress whenever the test awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, Self

import uvicorn
from starlette.types import ASGIApp, Send

__all__ = ["LoopbackServed", "LoopbackServer", "abort_connection", "bind", "free_port",
           "run_blocking"]

HOST = "127.0.0.1"


def bind(host: str = HOST, port: int = 0) -> socket.socket:
    """Return a socket bound to ``host:port`` (port 0: an ephemeral port), ready to serve."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def free_port() -> int:
    """A currently free loopback port (for servers that must know each other's URLs)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def abort_connection(send: Send) -> bool:
    """Drop the connection behind uvicorn's ``send`` with an RST; False if not under uvicorn.

    uvicorn's ``send`` is bound to the connection's request cycle, whose ``transport`` we abort
    with ``SO_LINGER`` 0 so the client sees a real reset, not a clean EOF.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # not under uvicorn (e.g. ASGITransport): cannot drop a socket
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the caller (test runner, CLI) owns signals
        pass

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LoopbackServer:
    """Serve an ASGI app on loopback, threaded (``start``) or in the caller's loop (``async with``).

    Port 0 binds an ephemeral port (read ``url`` once started); ``sock`` serves an already bound
    socket (so its URL can be handed out first). ``lifespan`` is uvicorn's setting.
    """

    def __init__(self, app: ASGIApp, host: str = HOST, port: int = 0, *,
                 sock: socket.socket | None = None,
                 lifespan: Literal["on", "off", "auto"] = "on") -> None:
        self.app = app
        self.host = host
        self.port = sock.getsockname()[1] if sock is not None else port
        self.lifespan = lifespan
        self._sock = sock
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve_on(self, graceful: int) -> tuple[_Server, socket.socket]:
        sock = self._sock or bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._server = _Server(uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan=self.lifespan,
            proxy_headers=False, timeout_graceful_shutdown=graceful, loop="asyncio"))
        return self._server, sock

    # ---- in a background thread ------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        """Bind, start serving in a daemon thread, and wait until it accepts connections."""
        server, sock = self._serve_on(graceful=2)
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        daemon=True, name="loopback-server")
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("loopback server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and join its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- in the caller's event loop ----------------------------------------------------

    async def __aenter__(self) -> Self:
        """Start serving in the running loop; return once it accepts connections."""
        server, sock = self._serve_on(graceful=1)
        self._sock = sock
        self._task = task = asyncio.create_task(server.serve(sockets=[sock]))
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
        if self._sock is not None:
            self._sock.close()
        self._server = self._task = self._sock = None


def run_blocking(app: ASGIApp, host: str, port: int, on_start: Callable[[], None] | None) -> None:
    """Serve ``app`` in the foreground (standalone simulators)."""
    if on_start is not None:
        on_start()
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


class LoopbackServed:
    """``start``/``stop``/``url`` for a simulator object that has an ASGI ``app``."""

    app: Any
    _server: LoopbackServer | None = None

    def start(self, port: int = 0) -> Self:
        """Serve on 127.0.0.1 in a background thread (port 0: ephemeral)."""
        self._server = LoopbackServer(self.app, port=port).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "simulator not started"
        return self._server.url
