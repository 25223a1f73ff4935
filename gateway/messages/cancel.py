"""``message.cancel`` in both directions.

A partner cancels one of its own earlier messages: the request is recorded, and a claim that
the hub has not decided yet (status ``received``) is marked ``cancelled``. The hub cancels one
of its own messages that is still undelivered: its state becomes ``cancelled`` and its pending
delivery task is dropped, in the transaction that sends the cancellation.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.protocol.envelope import HUB_PARTY, ClaimNotify, Envelope, MessageCancel
from gateway.storage.tables import claims, message_cancellations, message_state, messages, outbox

if TYPE_CHECKING:  # processing imports outbound, which imports this module
    from gateway.messages.processing import ProcessingContext

__all__ = ["cancel_hub_message", "process_message_cancel"]

_UNDECIDED = ("received",)


async def process_message_cancel(ctx: ProcessingContext, envelope: Envelope) -> None:
    """Record a partner's cancellation of its earlier message and apply it where possible."""
    payload = MessageCancel.model_validate(envelope.payload)
    target = (await ctx.conn.execute(
        select(messages.c.pk, messages.c.type, messages.c.wire, messages.c.canonical)
        .where(messages.c.sender == ctx.partner_id,
               messages.c.message_id == payload.message_id.lower())
    )).first()
    outcome = "not_found"
    if target is not None:
        outcome = "cancelled"
        if target.type == "claim.notify":
            claim = ClaimNotify.model_validate(
                Envelope.model_validate_json(target.canonical or target.wire).payload)
            result = await ctx.conn.execute(
                update(claims)
                .where(claims.c.partner_id == ctx.partner_id,
                       claims.c.claim_ref == claim.claim_ref,
                       claims.c.message_pk == target.pk,
                       claims.c.status.in_(_UNDECIDED))
                .values(status="cancelled", updated_at=ctx.now))
            if result.rowcount == 0:
                outcome = "too_late"
    await ctx.conn.execute(insert(message_cancellations).values(
        partner_id=ctx.partner_id, sender=ctx.partner_id,
        cancelled_message_id=payload.message_id.lower(), cancel_message_pk=ctx.message_pk,
        reason=payload.reason, outcome=outcome, created_at=ctx.now))


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
        await conn.execute(update(outbox).where(
            outbox.c.kind == "deliver", outbox.c.ref == str(target.pk),
            outbox.c.state.in_(["pending", "dead"]))
            .values(state="done", last_error="cancelled", updated_at=now))
    await conn.execute(insert(message_cancellations).values(
        partner_id=partner_id, sender=HUB_PARTY, cancelled_message_id=message_id.lower(),
        cancel_message_pk=None, reason=reason, outcome=outcome, created_at=now))
    return outcome
