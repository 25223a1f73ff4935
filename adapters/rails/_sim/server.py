"""The simulators' HTTP machinery: fault middleware, ``SimApp`` and a loopback thread server.

``FaultMiddleware`` sits outside FastAPI's own middleware (``SimApp.build_middleware_stack``)
because a connection reset needs uvicorn's raw ``send``: its bound ``__self__`` is the
connection's request cycle, whose ``transport`` we abort with ``SO_LINGER`` 0 so the client sees
a real RST (httpx: ``ReadError``/``RemoteProtocolError``) instead of a 500 that Starlette's
error middleware would otherwise send.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Self

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.rails._sim.faults import Fault, FaultRuleIn, Faults

__all__ = ["FaultMiddleware", "LoopbackServed", "SimApp", "ThreadedServer", "add_fault_routes"]

ADMIN_PREFIX = "/_sim"


async def _reset(send: Send) -> None:
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # not under uvicorn (e.g. ASGITransport): cannot drop a socket
        raise ConnectionResetError("injected reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0 turns close() into an RST: the client sees a reset, not a clean EOF.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let uvicorn's connection_lost run so it marks the cycle disconnected and sends nothing.
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def _answer(send: Send, status: int, payload: dict[str, Any], retry: int | None) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry is not None:
        headers.append((b"retry-after", str(retry).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FaultMiddleware:
    """Apply the request faults of ``faults`` to every non-admin HTTP request."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]

        def draw(fault: Fault) -> Any:
            return self.faults.draw(fault, path, method)

        if rule := draw(Fault.latency):
            await asyncio.sleep(rule.seconds)
        if draw(Fault.reset_before):
            await _reset(send)
            return
        if rule := draw(Fault.throttle):
            status = rule.status if rule.status in (429, 503) else 503
            await _answer(send, status, {"error": "throttled"}, rule.retry_after)
            return
        if rule := draw(Fault.error_before):
            await _answer(send, rule.status, {"error": "injected_before"}, None)
            return
        after_error, after_reset, hold = (
            draw(Fault.error_after),
            draw(Fault.reset_after),
            draw(Fault.timeout),
        )
        if not (after_error or after_reset or hold):
            await self.app(scope, receive, send)
            return
        # The app acts and its answer is captured; what the client gets is decided after.
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        if hold:
            await asyncio.sleep(hold.seconds)
        if after_reset:
            await _reset(send)
        elif after_error:
            await _answer(send, after_error.status, {"error": "injected_after"}, None)
        else:
            for message in captured:
                await send(message)


class SimApp(FastAPI):
    """A FastAPI app whose outermost layer is the fault middleware.

    ``fast_path`` (optional) wraps FastAPI's stack inside the fault middleware: a plain ASGI layer
    that answers a simulator's hot endpoint itself (a benchmark sends thousands of requests a
    second; FastAPI's routing and middleware cost more than the simulated rail's work) and
    passes everything else on. Faults apply to it exactly as to the routes behind it.
    """

    def __init__(self, faults: Faults, fast_path: Callable[[ASGIApp], ASGIApp] | None = None,
                 **kwargs: Any) -> None:
        self.faults = faults
        self.fast_path = fast_path
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        if self.fast_path is not None:
            inner = self.fast_path(inner)
        return FaultMiddleware(inner, self.faults)


def add_fault_routes(app: FastAPI, faults: Faults) -> None:
    """Add ``POST/GET/DELETE /_sim/faults`` to a simulator app."""

    @app.post(f"{ADMIN_PREFIX}/faults", status_code=201)
    async def arm(rules: FaultRuleIn | list[FaultRuleIn]) -> dict[str, Any]:
        for rule in rules if isinstance(rules, list) else [rules]:
            faults.add_rule(rule)
        return {"armed": faults.snapshot()}

    @app.get(f"{ADMIN_PREFIX}/faults")
    async def armed() -> dict[str, Any]:
        return {"armed": faults.snapshot(), "fired": dict(faults.fired)}

    @app.delete(f"{ADMIN_PREFIX}/faults")
    async def disarm() -> dict[str, Any]:
        faults.clear()
        return {"armed": []}


class ThreadedServer:
    """Run an ASGI app with uvicorn on loopback in a background thread.

    Port 0 binds an ephemeral port (read ``url`` after ``start``). Usable as a context manager.
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        """Bind, start serving in a daemon thread, and wait until it accepts connections."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            proxy_headers=False,
            timeout_graceful_shutdown=2,
            loop="asyncio",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="rail-sim"
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and join its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_blocking(app: ASGIApp, host: str, port: int, on_start: Callable[[], None] | None) -> None:
    """Serve ``app`` in the foreground (standalone simulators)."""
    if on_start is not None:
        on_start()
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


class LoopbackServed:
    """``start``/``stop``/``url`` for a simulator object that has an ASGI ``app``."""

    app: Any
    _server: ThreadedServer | None = None

    def start(self, port: int = 0) -> Self:
        """Serve on 127.0.0.1 in a background thread (port 0: ephemeral)."""
        self._server = ThreadedServer(self.app, port=port).start()
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
