"""A partner cancels one of its own earlier messages (``message.cancel`` partner -> hub).

The request is always recorded with its outcome; a claim the hub has not decided yet (status
``received``) is marked ``cancelled``, a decided one is ``too_late``. The hub's cancellation of
its own messages is ``gateway.messages.hub_cancel``.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update

from gateway.ports.processing import ProcessingContext
from gateway.protocol.envelope import ClaimNotify, Envelope, MessageCancel
from gateway.storage.tables import claims, message_cancellations, messages

__all__ = ["process_message_cancel"]

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
