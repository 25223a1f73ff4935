"""The hub cancels one of its own messages (``message.cancel`` hub -> partner).

A message still undelivered becomes ``cancelled`` and its pending delivery task is dropped, in
the transaction that sends the cancellation (``gateway.messages.outbound``). A partner's
cancellation of its own message is ``gateway.messages.partner_cancel``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.outbox import records
from gateway.protocol.envelope import HUB_PARTY
from gateway.storage.tables import message_cancellations, message_state, messages

__all__ = ["cancel_hub_message"]


async def cancel_hub_message(conn: AsyncConnection, partner_id: str, message_id: str,
                             reason: str, now: datetime) -> str:
    """Cancel a hub message to ``partner_id`` if it is not delivered yet; return the outcome."""
    target = (await conn.execute(
        select(messages.c.pk, message_state.c.state)
        .join(message_state, message_state.c.message_pk == messages.c.pk)
        .where(messages.c.sender == HUB_PARTY, messages.c.partner_id == partner_id,
               messages.c.message_id == message_id.lower())
    )).first()
    if target is None:
        outcome = "not_found"
    elif target.state != "queued":
        outcome = "too_late"
    else:
        outcome = "cancelled"
        await conn.execute(update(message_state).where(message_state.c.message_pk == target.pk)
                           .values(state="cancelled", detail=reason[:500], updated_at=now))
        # A task being attempted right now is left alone; the handler sees the state.
        await records.drop_pending(conn, kind="deliver", ref=str(target.pk), now=now,
                                   reason="cancelled")
    await conn.execute(insert(message_cancellations).values(
        partner_id=partner_id, sender=HUB_PARTY, cancelled_message_id=message_id.lower(),
        cancel_message_pk=None, reason=reason, outcome=outcome, created_at=now))
    return outcome
