"""Probes and the scrape: ``/livez``, ``/readyz``, ``/metrics``; the SIGTERM drain.

``/livez`` says the process answers (no database: a database outage must not get every
process restarted). ``/readyz`` says it should get traffic: not while it drains, nor while its
database is unreachable or its schema is not at the head revision (``503 not_ready``). On
SIGTERM a server first fails readiness for ``GATEWAY_DRAIN_SECONDS`` (the proxy or the
Kubernetes endpoint controller stops sending it requests) while still serving, then lets
uvicorn shut down gracefully: it stops accepting, in-flight requests finish (at most
``GATEWAY_GRACEFUL_TIMEOUT_SECONDS``), then the lifespan stops the embedded dispatcher, which
releases its leased work. A second SIGTERM, or SIGINT, skips the drain.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.errors import UnavailableError
from gateway.observability.exposition import render
from gateway.storage.migrate import head_revision, revision_of
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["Readiness", "install_drain", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["ops"])

_DB_TIMEOUT = 3.0
_PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@functools.cache
def _head(database_url: str) -> str | None:
    return head_revision(database_url)  # reads the migration scripts: once per process


@dataclass
class Readiness:
    """Whether this process should receive traffic (its database is at the migrations' head)."""

    database_url: str
    draining: bool = False

    @property
    def head(self) -> str | None:
        return _head(self.database_url)

    async def check(self, hub: Any) -> str | None:
        """Return the schema revision, or raise ``UnavailableError`` saying why not ready."""
        return await self.check_database(hub.uow)

    async def check_database(self, uow: UnitOfWorkFactory) -> str | None:
        """Like ``check``, through ``uow`` (a process with no hub: gateway.observability.listener).

        Returns:
            The database's schema revision (the head).

        Raises:
            UnavailableError: draining, the database unreachable within 3 s, or its schema
                not at the head revision.
        """
        if self.draining:
            raise UnavailableError("not_ready", "the process is shutting down")
        try:
            async with asyncio.timeout(_DB_TIMEOUT):
                async with uow(read_only=True) as unit:
                    revision = await revision_of(unit.conn)
        except Exception as exc:  # unreachable, refused, timed out, no such table: not ready
            raise UnavailableError("not_ready", "the database cannot be reached "
                                   f"({type(exc).__name__})") from None
        if revision != self.head:
            raise UnavailableError("not_ready", f"the database schema is at {revision}, "
                                   f"not {self.head}: run `gateway db upgrade`")
        return revision


@router.get("/livez", summary="Liveness: the process answers (no database)")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable, schema at head, not draining",
            responses={503: {"description": "not_ready (problem+json)",
                             "content": {"application/problem+json": {}}}})
async def readyz(request: Request) -> dict[str, str | None]:
    readiness: Readiness = request.app.state.readiness
    revision = await readiness.check(request.app.state.hub)
    return {"status": "ready", "revision": revision}


@router.get("/metrics", summary="Prometheus metrics (docs/metrics.md)",
            response_class=Response,
            responses={200: {"description": "Prometheus text format",
                             "content": {_PROMETHEUS_TEXT.split(";")[0]: {}}}})
async def metrics(request: Request) -> Response:
    state = request.app.state.hub.state_metrics
    await state.refresh()
    return Response(render(state), media_type=_PROMETHEUS_TEXT)


def install_drain(readiness: Readiness, seconds: float) -> bool:
    """Under uvicorn's signal handling, make SIGTERM fail readiness for ``seconds`` before
    uvicorn's own graceful shutdown starts. Return whether it was installed (not in tests or
    threads, where uvicorn does not own the signals)."""
    import uvicorn

    if threading.current_thread() is not threading.main_thread():
        return False
    uvicorn_handler = signal.getsignal(signal.SIGTERM)
    if not isinstance(getattr(uvicorn_handler, "__self__", None), uvicorn.Server):
        return False
    assert callable(uvicorn_handler)
    loop = asyncio.get_running_loop()

    def shut_down(sig: int, frame: FrameType | None) -> None:
        uvicorn_handler(sig, frame)

    def on_sigterm(sig: int, frame: FrameType | None) -> None:
        if readiness.draining or seconds <= 0:
            readiness.draining = True
            shut_down(sig, frame)
            return
        readiness.draining = True
        loop.call_soon_threadsafe(_drain_then, loop, seconds, shut_down, sig)

    signal.signal(signal.SIGTERM, on_sigterm)
    return True


def _drain_then(loop: asyncio.AbstractEventLoop, seconds: float, shut_down: Any,
                sig: int) -> None:
    log.info("SIGTERM: not ready; draining for %.1f s before shutting down", seconds)
    loop.call_later(seconds, shut_down, sig, None)
