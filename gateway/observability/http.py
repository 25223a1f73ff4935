"""ASGI middleware around every request: its id, its access log line, its duration metric.

The request id is the caller's ``X-Request-Id`` when it is a plain token (letters, digits,
``._:-``, at most 128), otherwise a fresh one; it is echoed in the response and bound to every
log record of the request. The access log line (logger ``gateway.access``) carries the method,
the route template (``/v1/receipts/{message_id}``, never the path's values), the status and
the duration: never the query string or a body. Probe and scrape requests are logged at DEBUG,
so a load balancer polling every second does not fill the log.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability.logs import bind_ids, clear_ids
from gateway.observability.metrics import HTTP_DURATION, http_labels

__all__ = ["PROBE_ROUTES", "ObservedRequests", "request_id_of"]

access = logging.getLogger("gateway.access")

PROBE_ROUTES = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
_TOKEN = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-Id if it is a plain token, else a new id."""
    for name, value in headers:
        if name == b"x-request-id" and _TOKEN.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


class ObservedRequests:
    """The outermost middleware: request id, access log line and HTTP duration histogram."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope["headers"])
        clear_ids()
        bind_ids(request_id=rid)
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", rid.encode("ascii"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None)
            labels = http_labels(route, scope["method"], status)
            HTTP_DURATION.labels(*labels).observe(seconds)
            access.log(logging.DEBUG if route in PROBE_ROUTES else logging.INFO, "request",
                       extra={"method": labels[1], "route": labels[0], "status": status,
                              "duration_ms": round(seconds * 1000, 2)})
            clear_ids()
