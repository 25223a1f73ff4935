"""Hub -> partner messages: build, sign and store the envelope, and queue its delivery.

Called inside the caller's unit of work, so a message exists if and only if the business change
that caused it committed (the outbox rule). The stored ``wire`` is exactly what the partner
receives and what the hub signed: for a PX/1 partner the canonical envelope, for others the
adapter's translation of it.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import String, bindparam, cast, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import iso_millis
from gateway.errors import InvalidMessageError, NotFoundError
from gateway.messages.hub_cancel import cancel_hub_message
from gateway.messages.intake import describe_validation_error
from gateway.outbox.records import enqueue, enqueue_from
from gateway.ports.partner import PartnerAdapter
from gateway.ports.processing import OutboundMessage
from gateway.protocol.envelope import HUB_PARTY, HUB_TO_PARTNER
from gateway.protocol.partners import PartnerRegistry
from gateway.protocol.signing import Signer
from gateway.storage.commit_order import xact_id
from gateway.storage.tables import message_state, messages, outbox

__all__ = ["Outbound"]


class Outbound:
    """Creates hub messages to partners."""

    def __init__(self, registry: PartnerRegistry, adapters: dict[str, PartnerAdapter],
                 signer: Signer) -> None:
        self.registry = registry
        self.adapters = adapters
        self.signer = signer

    async def send(
        self, conn: AsyncConnection, *, partner_id: str, type_: str, payload: dict[str, Any],
        now: datetime, correlation_id: str | None = None, message_id: str | None = None,
    ) -> OutboundMessage:
        """Store a signed hub message for ``partner_id`` and queue it (push) or post it to
        the partner's inbox (pull).

        Raises:
            NotFoundError: the partner is not registered.
            InvalidMessageError: unknown_type or schema_violation of the payload.
        """
        partner = self.registry.get(partner_id)
        if partner is None:
            raise NotFoundError("not_found", f"no partner {partner_id!r} in the registry")
        model = HUB_TO_PARTNER.get(type_)
        if model is None:
            raise InvalidMessageError(
                "unknown_type", f"{type_!r} is not a hub-to-partner message type "
                f"(one of {', '.join(sorted(HUB_TO_PARTNER))})")
        try:
            model.model_validate(payload)
        except ValidationError as exc:
            raise InvalidMessageError("schema_violation",
                                      describe_validation_error(exc, "payload")) from None
        if type_ == "message.cancel":
            # Stop the cancelled message if it has not gone out yet; the cancel is sent anyway,
            # since a pull partner may have fetched it without acknowledging.
            await cancel_hub_message(conn, partner.id, payload["message_id"],
                                     payload["reason"], now)
        message_id = message_id or str(uuid.uuid4())
        envelope = orjson.dumps({
            "id": message_id, "type": type_, "version": 1, "sender": HUB_PARTY,
            "recipient": partner.id,
            "sent_at": iso_millis(now),
            "correlation_id": correlation_id, "payload": payload,
        })
        adapter = self.adapters[partner.adapter]
        wire = adapter.encode(envelope)
        kid, signature = self.signer.sign_with_kid(wire)
        row: dict[str, Any] = {
            "direction": "out", "partner_id": partner.id, "message_id": message_id,
            "sender": HUB_PARTY, "recipient": partner.id, "type": type_,
            "correlation_id": correlation_id, "sent_at": now, "received_at": now, "wire": wire,
            "wire_media_type": adapter.wire_media_type,
            "canonical": None if wire == envelope else envelope,
            "body_sha256": hashlib.sha256(wire).hexdigest(), "signature": signature,
            "kid": kid, "updated_at": now,
        }
        push = partner.mode == "push"
        if push:
            row.update(kind="deliver", destination=partner.id, state="pending", attempts=0,
                       next_attempt_at=now, created_at=now,
                       ordering_key=f"{partner.id}:{correlation_id}" if correlation_id else None)
        if conn.dialect.name == "postgresql":
            # One statement: the message, its state and (push) its delivery task.
            result = await conn.execute(_PG_PUSH if push else _PG_PULL, row)
            pk = int(result.one()[-1])  # the task's ref / the state's message pk
            return OutboundMessage(pk, message_id, envelope)
        pk = (await conn.execute(_SQLITE_MESSAGE, row)).scalar_one()
        await conn.execute(_STATE, {"message_pk": pk, "updated_at": now})
        if push:
            await enqueue(conn, kind="deliver", destination=partner.id, ref=str(pk), now=now,
                          ordering_key=row["ordering_key"])
        return OutboundMessage(pk, message_id, envelope)


# Built once (constructing a 16-value INSERT costs more CPU than running it). On PostgreSQL
# the message row (with its inserting transaction, for the pull inbox's order), its state and
# its delivery task are one statement: one round trip instead of four, and the task's
# ordering-key lock is still taken before its pk is drawn (records.enqueue_from).
_OUT_COLS = ["direction", "partner_id", "message_id", "sender", "recipient", "type",
             "correlation_id", "sent_at", "received_at", "wire", "wire_media_type",
             "canonical", "body_sha256", "signature", "kid"]


def _message_values() -> dict[str, Any]:
    return {n: bindparam(n, type_=messages.c[n].type) for n in _OUT_COLS}


def _pg_statements() -> tuple[Any, Any]:
    m = (insert(messages).values(**_message_values(), xact_id=xact_id())
         .returning(messages.c.pk).cte("m"))
    state = (insert(message_state)
             .from_select(["message_pk", "state", "updated_at"],
                          select(m.c.pk, literal("queued", String),
                                 bindparam("updated_at", type_=message_state.c.updated_at.type)))
             .returning(message_state.c.message_pk))
    pull = state.add_cte(m)
    push = (enqueue_from(cast(m.c.pk, String)).add_cte(state.cte("s"))
            .returning(outbox.c.ref))
    return push, pull


_PG_PUSH, _PG_PULL = _pg_statements()
_SQLITE_MESSAGE = insert(messages).values(**_message_values()).returning(messages.c.pk)
_STATE = insert(message_state).values(
    message_pk=bindparam("message_pk"), state="queued", updated_at=bindparam("updated_at"))
