"""The rail simulators' HTTP machinery: fault middleware and ``SimApp`` (the loopback server is
``adapters.simulation.LoopbackServer``).

``FaultMiddleware`` sits outside FastAPI's own middleware (``SimApp.build_middleware_stack``)
because a connection reset needs uvicorn's raw ``send`` (``adapters.simulation.abort_connection``)
so the client sees a real RST (httpx: ``ReadError``/``RemoteProtocolError``) instead of a 500
that Starlette's error middleware would otherwise send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.simulation import Fault, FaultRuleIn, Faults, abort_connection

__all__ = ["FaultMiddleware", "SimApp", "add_fault_routes"]

ADMIN_PREFIX = "/_sim"


async def _reset(send: Send) -> None:
    if not abort_connection(send):  # not under uvicorn (e.g. ASGITransport): no socket to drop
        raise ConnectionResetError("injected reset")
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
