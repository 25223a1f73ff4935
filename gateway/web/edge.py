"""The guard in front of every route: header size, single-valued security headers, the text
policy on the path and query, and the body limit, before routing, authentication or parsing.

A declared ``Content-Length`` over the limit is refused before the route runs; a body that
streams past it is cut off at the limit (``413 payload_too_large``), so no route ever holds
more than ``max_body_bytes`` of a body. Routes that accept less read through ``read_body``.
(FastAPI's own ``max_body_size`` answers outside the app's error handlers, in plain text.)
What is refused here never reaches a handler, a token check or the database: a NUL in a path
would otherwise reach a PostgreSQL query and fail there.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import (
    AuthError,
    HeadersTooLargeError,
    InvalidMessageError,
    PayloadTooLargeError,
    ProblemError,
)
from gateway.protocol.strictjson import forbidden_character
from gateway.web.problems import problem_for

__all__ = ["MAX_HEADERS", "MAX_HEADER_BYTES", "SINGLE_HEADERS", "EdgeGuard", "read_body"]

MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 64
# A second copy of one of these would be silently ignored by whoever reads the first.
SINGLE_HEADERS = {b"authorization": "token_invalid", b"x-jws-signature": "signature_invalid"}


class EdgeGuard:
    """ASGI middleware: refuse oversized or ambiguous headers, control characters in the path
    and query, and bodies over ``max_body_bytes``, with problem+json (431, 401, 422, 413)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _check(scope) or _declared_size(scope, self.max_body_bytes)
        if problem is not None:
            await problem_for(problem)(scope, receive, send)
            return
        limit, seen = self.max_body_bytes, 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLargeError("payload_too_large",
                                               f"the body exceeds {limit} bytes")
            return message
        await self.app(scope, bounded, send)


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing (413) a declared or streamed size over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError("payload_too_large",
                                   f"the body is {declared} bytes; at most {limit} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError("payload_too_large", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _declared_size(scope: Scope, limit: int) -> ProblemError | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return PayloadTooLargeError(
                "payload_too_large",
                f"the body is {value.decode()} bytes; at most {limit} are accepted")
    return None


def _check(scope: Scope) -> ProblemError | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    if len(headers) > MAX_HEADERS or sum(len(k) + len(v) for k, v in headers) > MAX_HEADER_BYTES:
        return HeadersTooLargeError(
            "headers_too_large",
            f"at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes of headers are accepted")
    seen: set[bytes] = set()
    for name, _ in headers:
        if name in SINGLE_HEADERS:
            if name in seen:
                return AuthError(SINGLE_HEADERS[name],
                                 f"the {name.decode()} header may appear only once")
            seen.add(name)
    bad = forbidden_character(scope["path"], free_text=False)
    if bad is not None:
        return _refused("path", bad)
    query = scope.get("query_string", b"").decode("latin-1")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return InvalidMessageError("schema_violation", "query: not UTF-8 after percent-decoding")
    for key, value in pairs:
        bad = forbidden_character(key, free_text=False)
        if bad is not None:  # the name itself is hostile: show it escaped
            return _refused(f"query.{key.encode('unicode_escape').decode()}", bad)
        bad = forbidden_character(value, free_text=False)
        if bad is not None:
            return _refused(f"query.{key}", bad)
    return None


def _refused(field: str, bad: str) -> InvalidMessageError:
    return InvalidMessageError("schema_violation",
                               f"{field}: control or bidi-override character {bad} is refused")
