"""create_app(): the FastAPI application; the lifespan builds the hub and its background jobs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline

from gateway.admin.api import router as admin_router
from gateway.backoffice.api import callbacks_router
from gateway.backoffice.api import router as backoffice_router
from gateway.composition import Hub, build_hub
from gateway.config import Settings
from gateway.messages.api import router as px1_router
from gateway.messages.partner_api import router as partner_router
from gateway.observability.http import ObservedRequests
from gateway.observability.logs import configure_logging
from gateway.observability.probes import Readiness, install_drain
from gateway.observability.probes import router as probes_router
from gateway.observability.tracing import NO_TRACING, Tracing, start_tracing, tracing_config
from gateway.runtime.jobs import run_background_jobs
from gateway.web.edge import EdgeGuard
from gateway.web.openapi import install_openapi
from gateway.web.problems import install_problem_handlers

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger(__name__)

DESCRIPTION = """\
The PX/1 hub of PERKESO's cross-border benefit portability gateway.

Partners send signed messages (`POST /v1/messages`, detached JWS in `X-JWS-Signature`) and
read receipts, inbox and tracking with a bearer JWT. Every error is `application/problem+json`
with a stable `code`. See the project README for the wire profile of each partner.
"""


# FastAPI's own OpenTelemetry (on by default once a global provider exists, or with
# FASTAPI_OTEL_AUTO_CONFIGURE=true) records exception messages, stack traces and request
# bodies; the gateway traces through gateway.observability.tracing only, whose spans are
# filtered before export.
_NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False,
                                         "operation_spans": False, "auto_configure": False}


def create_app(settings: Settings | None = None, hub: Hub | None = None,
               background_jobs: bool | None = None, tracing: Tracing = NO_TRACING) -> FastAPI:
    """Build the app. Tests pass a ready ``hub`` (with its tracing); ``serve`` passes settings
    and the worker's ``tracing``, which the app shuts down (flushes) when it stops."""
    settings = settings or (hub.settings if hub else Settings())
    tracing = hub.tracing if hub is not None else tracing
    jobs = settings.dispatch_in_serve if background_jobs is None else background_jobs
    readiness = Readiness(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = hub is None
        the_hub = hub or build_hub(settings, tracing=tracing)
        app.state.hub = the_hub
        if own:
            await the_hub.partner_keys.seed_at_start(the_hub.clock())
        if install_drain(readiness, settings.drain_seconds):
            log.debug("SIGTERM drains for %.1f s", settings.drain_seconds)
        stop = asyncio.Event()
        task = asyncio.create_task(run_background_jobs(the_hub, stop)) if jobs else None
        # Long-lived start-up objects leave the collector's view: full collections then scan
        # only per-request garbage, which keeps pauses (and so latency tails) short.
        gc.freeze()
        try:
            yield
        finally:
            if task is not None:
                # The dispatcher finishes or releases its batch (within its stop grace).
                stop.set()
                try:
                    await asyncio.wait_for(asyncio.shield(task),
                                           settings.dispatch_stop_grace_seconds + 5)
                except TimeoutError:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if own:
                try:
                    await the_hub.close()
                finally:
                    tracing.shutdown()  # after the dispatcher's last spans

    # /docs and /redoc with their assets served from the package (no CDN): the hub's own
    # documentation has to work on a machine that reaches nothing but the hub.
    app = FastAPIOffline(title="PX gateway", version="1", description=DESCRIPTION,
                         lifespan=lifespan, telemetry=_NO_NATIVE_TELEMETRY)
    app.add_middleware(EdgeGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(ObservedRequests)  # outermost: EdgeGuard's refusals are logged too
    tracing.instrument_app(app)
    app.state.readiness = readiness
    if hub is not None:
        app.state.hub = hub  # usable at once, also by in-process test clients without lifespan
    install_problem_handlers(app)
    install_openapi(app)
    app.include_router(px1_router)
    app.include_router(backoffice_router)
    app.include_router(callbacks_router)
    app.include_router(partner_router)
    app.include_router(probes_router)
    app.include_router(admin_router)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers (``gateway serve --workers N``): each worker process
    configures its own logging, as ``serve`` did for itself, and starts its own tracing
    (uvicorn spawns workers, so its export thread is born in the worker; ``serve`` checked the
    configuration and the packages before starting any)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.effective_log_format)
    return create_app(settings, tracing=start_tracing(tracing_config(settings), "serve"))
