"""Map the error tree to ``application/problem+json`` (RFC 9457): the one place that does."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match, compile_path

from gateway.errors import EvidenceMismatchError, ProblemError, RateLimitedError

__all__ = ["PROBLEM_BASE", "install_problem_handlers", "problem_for", "problem_response",
           "validation_problem"]

PROBLEM_BASE = "https://px.perkeso.example/problems/"
log = logging.getLogger(__name__)

_TITLES = {
    400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
    415: "Unsupported media type", 422: "Unprocessable message", 429: "Too many requests",
    431: "Request headers too large",
    500: "Internal error", 503: "Unavailable",
}


def problem_response(status: int, code: str, detail: str, **extra: Any) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = dict(extra.pop("headers", None) or {})
    body.pop("headers", None)
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra.pop("retry_after"))
        body.pop("retry_after", None)
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/problem+json")


def problem_for(exc: ProblemError) -> Response:
    """The problem+json response of one error of the tree."""
    extra = dict(exc.extra)
    if isinstance(exc, RateLimitedError):
        extra["retry_after"] = exc.retry_after
    return problem_response(exc.status, exc.code, exc.detail, **extra)


def validation_problem(exc: RequestValidationError) -> Response:
    """The problem+json of a request FastAPI could not validate (422 schema_violation)."""
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return problem_response(422, "schema_violation", f"{where}: {first['msg']}")


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(req: Request) -> list[str]:
    # Starlette's Allow names only the first route whose path matched; a path served by
    # several routes (GET and POST /v1/backoffice/payments) needs all of them. What a path
    # takes is what the API documents for it (the OpenAPI paths, FastAPI's own view of its
    # routes: it keeps included routers as routes of their own, not Route objects to search),
    # a literal path (/pensions/run) before a parameterised one that would also match it.
    path = req.scope["path"]
    hits = [(literal, methods) for pattern, literal, methods in _documented(req.app)
            if pattern.match(path)]
    if hits:
        chosen = [m for literal, m in hits if literal] or [m for _, m in hits]
        return sorted({m for methods in chosen for m in methods})
    # Not documented (the probes, the docs pages): ask each route, through BaseRoute.matches.
    routes = req.app.router.routes
    return [m for m in _METHODS if any(
        r.matches({**req.scope, "method": m})[0] == Match.FULL for r in routes)]


def _documented(app: FastAPI) -> list[tuple[re.Pattern[str], bool, frozenset[str]]]:
    """Each documented path as (its pattern, whether it is literal, its methods), made once
    per app."""
    cached: list[tuple[re.Pattern[str], bool, frozenset[str]]] | None = getattr(
        app.state, "allowed_methods", None)
    if cached is None:
        cached = []
        for template, item in app.openapi().get("paths", {}).items():
            pattern, _, params = compile_path(template)
            methods = frozenset(m.upper() for m in item if m.upper() in _METHODS)
            cached.append((pattern, not params, methods))
        app.state.allowed_methods = cached
    return cached


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_req: Request, exc: ProblemError) -> Response:
        return problem_for(exc)

    @app.exception_handler(EvidenceMismatchError)
    async def _held(req: Request, exc: EvidenceMismatchError) -> Response:
        # Not the caller's fault, but not unexpected either: the hub refused on purpose.
        log.error("ALERT %s %s refused: %s", req.method, req.url.path, exc)
        return problem_response(exc.status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> Response:
        return validation_problem(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(req))
        return problem_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def _disconnected(req: Request, _exc: ClientDisconnect) -> Response:
        # Nothing was stored and no one is listening; a traceback per hang-up would let any
        # client flood the log for the price of a half-sent request.
        log.info("client disconnected before the body of %s %s was complete", req.method,
                 req.url.path)
        return problem_response(400, "http_error", "the client disconnected mid-body")

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> Response:
        # Log the internals for operators; tell the caller nothing about them.
        log.exception("unexpected error on %s %s", req.method, req.url.path)
        return problem_response(500, "internal_error", "the hub could not handle the request; "
                                "nothing was acknowledged, it is safe to retry")
