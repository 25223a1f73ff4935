"""The scrape-time gauges' sources: one cheap query per concern (see ``state``).

Labels are closed to the context's sets (destinations, kinds, rails) and the payment states
of the enum; rows with any other value are summed into ``"other"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.evidence.chain import chain_lag
from gateway.money import MINOR_UNITS
from gateway.observability.labels import closed
from gateway.observability.state import Reading, StateContext, StateSource
from gateway.payments.domain import FINAL, PaymentState
from gateway.protocol.partners import PartnerRegistry
from gateway.protocol.signing import Signer
from gateway.reconciliation.domain import Verdict
from gateway.reconciliation.repository import newest_runs
from gateway.storage.tables import outbox, partner_keys, payments

__all__ = ["SETTLED", "chain_state", "key_expiry", "outbox_state", "payment_state",
           "reconciliation_state"]

_OPEN = ("pending", "leased")
_DAY = 86400.0

async def outbox_state(conn: AsyncConnection, ctx: StateContext) -> Sequence[Reading]:
    """Depth and oldest age of open work, and dead letters, per destination and kind (the
    state index bounds both reads to open and dead tasks)."""
    depth: dict[tuple[str, str], int] = {}
    oldest: dict[tuple[str, str], datetime] = {}
    for r in await conn.execute(
            select(outbox.c.destination, outbox.c.kind, func.count(),
                   func.min(outbox.c.created_at))
            .where(outbox.c.state.in_(_OPEN)).group_by(outbox.c.destination, outbox.c.kind)):
        key = _closed_pair(ctx, r[0], r[1])
        depth[key] = depth.get(key, 0) + r[2]
        if r[3] is not None and (key not in oldest or r[3] < oldest[key]):
            oldest[key] = r[3]
    dead: dict[tuple[str, str], int] = {}
    for r in await conn.execute(
            select(outbox.c.destination, outbox.c.kind, func.count())
            .where(outbox.c.state == "dead").group_by(outbox.c.destination, outbox.c.kind)):
        key = _closed_pair(ctx, r[0], r[1])
        dead[key] = dead.get(key, 0) + r[2]
    out = [Reading("px_outbox_depth", k, n) for k, n in depth.items()]
    out += [Reading("px_outbox_oldest_age_seconds", k,
                    max(0.0, (ctx.now - t).total_seconds())) for k, t in oldest.items()]
    out += [Reading("px_outbox_dead_letters", k, n) for k, n in dead.items()]
    return out

def _closed_pair(ctx: StateContext, destination: str, kind: str) -> tuple[str, str]:
    return closed(destination, ctx.destinations), closed(kind, ctx.kinds)

# Settled payments only grow (history); the others are the payments still moving.
SETTLED = frozenset({PaymentState.paid, *FINAL})


def payment_state(*, settled: bool) -> StateSource:
    """Payments per rail and state, for the settled states or for the others (the state index
    bounds the latter to payments in flight). Every configured rail has every state, zero
    included, so ``px_payments{state="unknown"}`` exists before the first unknown outcome."""
    states = frozenset(s.value for s in PaymentState if (s in SETTLED) == settled)

    async def source(conn: AsyncConnection, ctx: StateContext) -> Sequence[Reading]:
        counts = {(rail, s): 0 for rail in ctx.rails for s in states}
        for r in await conn.execute(
                select(payments.c.rail, payments.c.state, func.count())
                .where(payments.c.state.in_(sorted(states)))
                .group_by(payments.c.rail, payments.c.state)):
            key = (closed(r[0], ctx.rails), r[1])
            counts[key] = counts.get(key, 0) + r[2]
        return [Reading("px_payments", k, n) for k, n in counts.items()]
    return source


async def chain_state(conn: AsyncConnection, ctx: StateContext) -> Sequence[Reading]:
    """Evidence records not yet chained, and the age of the oldest of them (0 when none)."""
    lag = await chain_lag(conn)
    age = 0.0 if lag.oldest is None else max(0.0, (ctx.now - lag.oldest).total_seconds())
    return [Reading("px_evidence_chain_lag_records", (), lag.records),
            Reading("px_evidence_chain_lag_seconds", (), age)]

def key_expiry(signer: Signer, registry: PartnerRegistry) -> StateSource:
    """Days to each key's expiry: the hub's keys' and the partners file's ``exp``, and the
    ``expires_at`` of partner keys in the ``partner_keys`` table (which wins for a key id it
    holds; retired keys have no series). A key without an expiry has no series."""
    owned: list[tuple[str, Iterable[dict[str, object]]]] = [("hub", signer.jwks()["keys"])]
    owned += [(p.id, [k.jwk for k in registry.keys.of_party(p.id)]) for p in registry]
    expiries = {(owner, str(jwk["kid"])): float(exp) for owner, jwks in owned for jwk in jwks
                if isinstance(exp := jwk.get("exp"), int)}

    async def source(conn: AsyncConnection, ctx: StateContext) -> Sequence[Reading]:
        now = ctx.now.timestamp()
        found = dict(expiries)
        rows = await conn.execute(select(partner_keys.c.partner_id, partner_keys.c.kid,
                                         partner_keys.c.state, partner_keys.c.expires_at))
        for r in rows:
            found.pop((r.partner_id, r.kid), None)
            if r.state != "retired" and r.expires_at is not None:
                found[(r.partner_id, r.kid)] = r.expires_at.timestamp()
        return [Reading("px_key_expiry_days", key, round((exp - now) / _DAY, 3))
                for key, exp in sorted(found.items())]
    return source


async def reconciliation_state(conn: AsyncConnection, ctx: StateContext) -> Sequence[Reading]:
    """Per configured rail, the verdict of its newest run (the latest business date, its
    current run): 1 for that verdict and 0 for the others (all 0 before a rail's first run),
    and the residual per currency of that run's summary, in minor units."""
    out: list[Reading] = []
    newest = {r.rail: r for r in await newest_runs(conn, sorted(ctx.rails))}
    for rail in sorted(ctx.rails):
        run = newest.get(rail)
        for v in Verdict:
            out.append(Reading("px_reconciliation_last_verdict", (rail, v.value),
                               1 if run is not None and run.verdict == v.value else 0))
        if run is None:
            continue
        residual: dict[str, int] = {}
        for currency, value in json.loads(run.summary).get("residual", {}).items():
            key = closed(currency, MINOR_UNITS)
            residual[key] = residual.get(key, 0) + _minor(value, currency)
        out += [Reading("px_reconciliation_residual_minor", (rail, cur), n)
                for cur, n in sorted(residual.items())]
    return out


def _minor(value: str, currency: str) -> int:
    """A summary's decimal amount (``"-3.00"``) in minor units of ``currency``."""
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return 0  # summaries are written by the run; a value it never writes counts nothing
    digits = MINOR_UNITS.get(currency, -amount.as_tuple().exponent)  # type: ignore[operator]
    return int(amount.scaleb(digits))
