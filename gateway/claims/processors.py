"""Claims notified by partners: record them, answer ``claim.status`` "received".

The processors run inside the ``process_inbound`` task's unit of work (``gateway.messages.
processing``): the claim row, the hub's ``claim.status`` message and its delivery task commit
together with the task's completion, so a retried task can neither lose nor double them (the
claim's unique ``(partner, claim_ref)`` makes a second run a no-op).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.ports.processing import ProcessingContext
from gateway.protocol.envelope import ClaimNotify, DocumentDeliver, Envelope
from gateway.storage.tables import claim_documents, claims

__all__ = ["process_claim_notify", "process_document_deliver", "socso_claim_no"]

log = logging.getLogger(__name__)


def socso_claim_no(ctx: ProcessingContext) -> str:
    """The hub's claim number: unique because the claim's first message pk is."""
    return f"SOCSO-{ctx.now:%Y}-{ctx.message_pk:08d}"


_CLAIM_COLS = ["partner_id", "claim_ref", "socso_claim_no", "benefit", "status",
               "correlation_id", "message_pk", "created_at", "updated_at"]
# Built once per dialect: constructing the statement costs more CPU than running it.
_NEW_CLAIM: dict[str, Any] = {
    name: (ins(claims).values({c: bindparam(c, type_=claims.c[c].type) for c in _CLAIM_COLS})
           .on_conflict_do_nothing(index_elements=["partner_id", "claim_ref"])
           .returning(claims.c.pk))
    for name, ins in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


async def process_claim_notify(ctx: ProcessingContext, envelope: Envelope) -> None:
    """Record a new claim and tell the partner it was received (with the hub's number)."""
    payload = ClaimNotify.model_validate(envelope.payload)
    number = socso_claim_no(ctx)
    pk = (await ctx.conn.execute(_NEW_CLAIM[ctx.conn.dialect.name], {
        "partner_id": ctx.partner_id, "claim_ref": payload.claim_ref, "socso_claim_no": number,
        "benefit": payload.benefit.value, "status": "received",
        "correlation_id": envelope.correlation_id, "message_pk": ctx.message_pk,
        "created_at": ctx.now, "updated_at": ctx.now})).scalar_one_or_none()
    if pk is None:
        # The same claim_ref in a new message: the claim exists; say its current status again.
        row = (await ctx.conn.execute(
            select(claims.c.socso_claim_no, claims.c.status)
            .where(claims.c.partner_id == ctx.partner_id,
                   claims.c.claim_ref == payload.claim_ref))).one()
        number, status = row.socso_claim_no, row.status
        log.info("claim %s from %s notified again", payload.claim_ref, ctx.partner_id)
        if status == "cancelled":
            return
    else:
        status = "received"
        await _record_documents(ctx, payload.claim_ref, None, payload.documents)
    await ctx.outbound.send(
        ctx.conn, partner_id=ctx.partner_id, type_="claim.status",
        payload={"claim_ref": payload.claim_ref, "socso_claim_no": number, "status": status},
        now=ctx.now, correlation_id=envelope.correlation_id or payload.claim_ref)


async def process_document_deliver(ctx: ProcessingContext, envelope: Envelope) -> None:
    """Record the documents a partner delivered for a claim (after a document.request)."""
    payload = DocumentDeliver.model_validate(envelope.payload)
    await _record_documents(ctx, payload.claim_ref, payload.request_id, payload.documents)


async def _record_documents(ctx: ProcessingContext, claim_ref: str, request_id: str | None,
                            documents: list) -> None:  # type: ignore[type-arg]
    if not documents:
        return
    await ctx.conn.execute(insert(claim_documents), [
        {"partner_id": ctx.partner_id, "claim_ref": claim_ref, "request_id": request_id,
         "kind": d.kind.value, "sha256": d.sha256, "filename": d.filename,
         "media_type": d.media_type, "message_pk": ctx.message_pk, "received_at": ctx.now}
        for d in documents
    ])
