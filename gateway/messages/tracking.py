"""Tracking a case end to end: every message and payment of one correlation id, oldest first.

Only what the calling partner is a party to is returned; another partner's thread with the same
correlation id is invisible (and an unknown thread is ``not_found``, not an empty list, so the
answer does not reveal whether someone else has one). Payments are owned by another module:
the caller passes the payment sources (``gateway.ports.processing.PaymentSource``; the
composition root's table names ``gateway.payments.tracking``), each returning the thread's
payments as dicts (``payment_id``, ``state``, ``at`` ...), oldest first. A thread exists for a
partner if it has a message or a payment in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String as SqlString
from sqlalchemy import and_, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import iso_millis
from gateway.errors import NotFoundError
from gateway.outbox import records
from gateway.ports.processing import PaymentSource
from gateway.storage.tables import message_state, messages

__all__ = ["track"]


async def track(conn: AsyncConnection, partner_id: str, correlation_id: str,
                payment_sources: Sequence[PaymentSource]) -> dict[str, Any]:
    """Return the thread ``correlation_id`` as seen by ``partner_id``.

    Raises:
        NotFoundError: the partner has no message with this correlation id.
    """
    dead = records.has_dead_letter("deliver", cast(messages.c.pk, SqlString))
    rows = (await conn.execute(
        select(messages.c.message_id, messages.c.type, messages.c.direction,
               messages.c.sender, messages.c.recipient, messages.c.received_at,
               message_state.c.state, message_state.c.updated_at, dead.label("dead"))
        .select_from(messages.outerjoin(
            message_state, and_(message_state.c.message_pk == messages.c.pk)))
        .where(messages.c.partner_id == partner_id,
               messages.c.correlation_id == correlation_id)
        .order_by(messages.c.received_at, messages.c.pk)
    )).all()
    payments: list[dict[str, Any]] = []
    for source in payment_sources:
        payments += await source(conn, partner_id, correlation_id)
    if not rows and not payments:
        raise NotFoundError("not_found", f"no thread {correlation_id!r} for {partner_id}")
    items = []
    for r in rows:
        state = r.state or "received"
        if r.dead and state == "queued":
            state = "failed"
        items.append({
            "message_id": r.message_id, "type": r.type, "direction": r.direction,
            "sender": r.sender, "recipient": r.recipient, "at": iso_millis(r.received_at),
            "state": state,
            **({"state_at": iso_millis(r.updated_at)} if r.updated_at else {}),
        })
    return {"correlation_id": correlation_id, "messages": items, "payments": payments}
