"""The pull partners' inbox: hub messages waiting for a ``receipt.ack``, in a stable order.

The cursor is the position (message pk) of the last message returned; it is opaque to the
partner. A message stays in the inbox until it is acknowledged (or cancelled), so a partner that
starts again without a cursor sees every unacknowledged message again: delivery is at least
once and partners de-duplicate by id. Bodies are served as the exact stored bytes (base64url)
with the signature made over them, never re-serialised.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import ForbiddenError, InvalidMessageError
from gateway.protocol.partners import PartnerRegistry
from gateway.protocol.signing import b64url_encode
from gateway.storage.tables import message_state, messages

__all__ = ["MAX_LIMIT", "InboxPage", "read_inbox"]

MAX_LIMIT = 500
_WAITING = ("queued", "delivered")


@dataclass(frozen=True, slots=True)
class InboxPage:
    messages: list[dict[str, str]]
    next: str


def _cursor(after: str | None) -> int:
    if after is None or after == "":
        return 0
    if not after.isdigit() or len(after) > 18:
        raise InvalidMessageError("schema_violation",
                                  f"after {after!r} is not a cursor this inbox returned")
    return int(after)


async def read_inbox(conn: AsyncConnection, registry: PartnerRegistry, partner_id: str,
                     after: str | None, limit: int) -> InboxPage:
    """Return up to ``limit`` unacknowledged hub messages to ``partner_id`` after ``after``.

    Raises:
        ForbiddenError: the partner is configured push (its messages go to its endpoint).
        InvalidMessageError: schema_violation for a bad cursor or limit.
    """
    partner = registry.get(partner_id)
    assert partner is not None
    if partner.mode != "pull":
        raise ForbiddenError("forbidden", f"{partner_id} is a push partner: hub messages are "
                             "delivered to its endpoint, not kept in an inbox")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidMessageError("schema_violation",
                                  f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    start = _cursor(after)
    rows = (await conn.execute(
        select(messages.c.pk, messages.c.wire, messages.c.signature)
        .join(message_state, message_state.c.message_pk == messages.c.pk)
        .where(messages.c.partner_id == partner_id, messages.c.direction == "out",
               messages.c.pk > start, message_state.c.state.in_(_WAITING))
        .order_by(messages.c.pk).limit(limit)
    )).all()
    return InboxPage(
        [{"body_b64": b64url_encode(r.wire), "signature": r.signature} for r in rows],
        str(rows[-1].pk) if rows else str(start),
    )
