"""``receipt.ack``: a pull partner's signed receipt for a hub message it fetched from its inbox.

The ack message itself is the evidence (stored and signed like any partner message); here the
hub checks that the receipt names one of *its* messages to this partner and the sha256 of the
exact bytes it served, then marks the message ``acknowledged`` so it leaves the inbox. An ack
that does not match is recorded in the message's state detail and changes nothing else.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from gateway.ports.processing import ProcessingContext
from gateway.protocol.envelope import HUB_PARTY, Envelope, ReceiptAck
from gateway.storage.tables import message_state, messages

__all__ = ["process_receipt_ack"]

log = logging.getLogger(__name__)


async def process_receipt_ack(ctx: ProcessingContext, envelope: Envelope) -> None:
    """Mark the acknowledged hub message ``acknowledged`` (idempotent)."""
    receipt = ReceiptAck.model_validate(envelope.payload).receipt
    row = (await ctx.conn.execute(
        select(messages.c.pk, messages.c.body_sha256)
        .where(messages.c.sender == HUB_PARTY, messages.c.partner_id == ctx.partner_id,
               messages.c.message_id == receipt.message_id.lower())
    )).first()
    if row is None:
        log.warning("receipt.ack %s from %s names unknown hub message %s", envelope.id,
                    ctx.partner_id, receipt.message_id)
        return
    if receipt.body_sha256 != row.body_sha256 or receipt.sender != HUB_PARTY:
        log.warning("receipt.ack %s from %s does not match message %s (sha256/sender)",
                    envelope.id, ctx.partner_id, receipt.message_id)
        await ctx.conn.execute(
            update(message_state).where(message_state.c.message_pk == row.pk)
            .values(detail=f"mismatched receipt.ack {envelope.id}", updated_at=ctx.now))
        return
    await ctx.conn.execute(
        update(message_state)
        .where(message_state.c.message_pk == row.pk, message_state.c.state != "acknowledged")
        .values(state="acknowledged", detail=f"receipt.ack {envelope.id}", updated_at=ctx.now))
