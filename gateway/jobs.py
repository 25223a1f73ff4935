"""Periodic housekeeping that runs beside the API: evidence chaining and token-jti purging."""

from __future__ import annotations

import asyncio
import logging

from gateway.evidence import chain_pending
from gateway.hub import Hub
from gateway.messages.tokens import purge_expired_tokens

__all__ = ["run_background_jobs"]

log = logging.getLogger("gateway.jobs")


async def run_housekeeping(hub: Hub, interval: float = 1.0) -> None:
    """Chain new evidence every ``interval`` seconds; sweep fully and purge jtis each minute."""
    tick = 0
    while True:
        try:
            full = tick % 60 == 0
            await chain_pending(hub.engine, full_sweep=full, clock=hub.clock)
            if full:
                async with hub.uow() as uow:
                    await purge_expired_tokens(uow.conn, hub.clock)
                    await uow.commit()
        except asyncio.CancelledError:
            raise
        except Exception:  # a job must outlive a database hiccup; the next tick retries
            log.exception("housekeeping failed; retrying")
        tick += 1
        await asyncio.sleep(interval)


async def run_dispatcher(hub: Hub, stop: asyncio.Event | None = None) -> None:
    await hub.dispatcher().run(stop or asyncio.Event())


async def run_background_jobs(hub: Hub) -> None:
    """Housekeeping and one dispatcher, for a single-process (embedded) deployment."""
    await asyncio.gather(run_housekeeping(hub), run_dispatcher(hub))
