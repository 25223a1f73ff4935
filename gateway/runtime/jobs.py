"""Periodic housekeeping beside the API and the dispatchers: evidence chaining, token-jti
purging, and the pension schedules (due periods' payments, overdue life certificates)."""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.clock import pause
from gateway.composition import Hub
from gateway.evidence.chain import chain_pending
from gateway.evidence.checkpoints import latest_checkpoints, make_checkpoint, write_checkpoint_file
from gateway.messages.tokens import purge_expired_tokens
from gateway.payments import pensions

__all__ = ["run_background_jobs", "run_checkpoint", "run_housekeeping", "run_pension_schedules"]

log = logging.getLogger(__name__)

# Chain batches per tick: enough to drain any backlog intake can build in a second, bounded so
# the other jobs still get their turn.
_CHAIN_MAX_BATCHES = 20
# Ticks between looks for late commits below the chained pks (an anti-join over 100,000 pks):
# a late commit is chained within this many seconds, and a tick otherwise costs what it appends.
_LOOKBACK_EVERY = 5
_CHECKPOINTS_EXPORTED = 100


async def run_checkpoint(hub: Hub) -> bool:
    """Sign a checkpoint of the chain head (if it moved); rewrite the export file if one is
    configured. Return whether a checkpoint was made."""
    cp = await make_checkpoint(hub.uow, hub.signer, clock=hub.clock)
    path = hub.settings.evidence_checkpoint_file
    if cp is not None and path is not None:
        latest = await latest_checkpoints(hub.uow, _CHECKPOINTS_EXPORTED)
        await asyncio.to_thread(write_checkpoint_file, path, latest, hub.signer.verification_jwks())
    if cp is not None:
        log.info("evidence checkpoint: seq %d %s", cp.seq, cp.chain_sha256)
    return cp is not None


async def _chain(hub: Hub, full_sweep: bool, lookback: bool) -> None:
    # Only the first call of a tick looks back for late commits: the rest read new rows only.
    for _ in range(_CHAIN_MAX_BATCHES):
        if not await chain_pending(hub.uow, full_sweep=full_sweep, lookback=lookback,
                                   clock=hub.clock):
            return
        full_sweep = lookback = False


async def run_pension_schedules(hub: Hub) -> tuple[int, int]:
    """Suspend schedules whose life certificate is overdue, then create the payments of every
    due period; each batch in its own transaction. Return (suspended, created).

    Safe to run in several processes at once (see ``gateway.payments.pensions``).
    """
    now = hub.clock()
    today = pensions.local_today(now)
    suspended = await pensions.in_batches(
        hub.uow, lambda conn, after, limit: pensions.suspend_overdue(
            conn, today, now, limit=limit, after=after))
    created = await pensions.in_batches(
        hub.uow, lambda conn, after, limit: pensions.run_due(
            conn, hub.payments.service, today, now, limit=limit, after=after))
    if suspended or created:
        log.info("pension schedules: %d suspended, %d payment(s) created", suspended, created)
    return suspended, created


async def run_housekeeping(hub: Hub, stop: asyncio.Event, interval: float = 1.0) -> None:
    """Chain new evidence every ``interval`` seconds (until none is left); sweep fully and purge
    jtis each minute; run the pension schedules every ``settings.pension_run_every_seconds``
    and sign an evidence checkpoint every ``settings.evidence_checkpoint_every_seconds`` (both
    first at start); return between ticks once ``stop`` is set.

    Stopped by ``stop``, not by cancelling: a cancel landing inside an aiosqlite call can
    leave the unit of work's rollback waiting for ever (a hung shutdown on the embedded
    database), so a tick always runs to its end.
    """
    tick = 0
    pensions_due = checkpoint_due = time.monotonic()
    while not stop.is_set():
        try:
            full = tick % 60 == 0
            await _chain(hub, full, lookback=tick % _LOOKBACK_EVERY == 0)
            if full:
                async with hub.uow() as uow:
                    await purge_expired_tokens(uow.conn, hub.clock)
                    await uow.commit()
        except asyncio.CancelledError:
            raise
        except Exception:  # a job must outlive a database hiccup; the next tick retries
            log.exception("housekeeping failed; retrying")
        if time.monotonic() >= checkpoint_due:
            checkpoint_due = time.monotonic() + hub.settings.evidence_checkpoint_every_seconds
            try:
                await run_checkpoint(hub)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("evidence checkpoint failed; retrying at the next run")
        if time.monotonic() >= pensions_due:
            pensions_due = time.monotonic() + hub.settings.pension_run_every_seconds
            try:
                await run_pension_schedules(hub)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pension schedules failed; retrying at the next run")
        tick += 1
        await pause(stop, interval)


async def run_dispatcher(hub: Hub, stop: asyncio.Event | None = None) -> None:
    await hub.dispatcher().run(stop or asyncio.Event())


async def run_background_jobs(hub: Hub, stop: asyncio.Event | None = None) -> None:
    """Housekeeping and one dispatcher, for a single-process (embedded) deployment, until
    ``stop`` is set: the dispatcher then finishes or releases its batch (see its docstring)."""
    stop = stop or asyncio.Event()
    housekeeping = asyncio.create_task(run_housekeeping(hub, stop))
    try:
        await run_dispatcher(hub, stop)
    finally:
        stop.set()  # housekeeping returns after its current tick
        await housekeeping
