"""The pull partners' inbox: hub messages waiting for a ``receipt.ack``, in a stable order.

The cursor is the position of the last message returned; it is opaque to the partner. On SQLite
it is the message pk (writers are serialised, so pk order is commit order). On PostgreSQL a
message can commit after a message with a higher pk, so the inbox is read in (inserting
transaction, pk) order and only below the visibility horizon (``gateway.storage.commit_order``):
the cursor is ``<transaction>.<pk>``, and a message still being committed, and any after it,
appear on a later read instead of being skipped. A plain pk (a cursor given out before this
order) reads as transaction 0, the one messages stored before it were given, so it goes on
where it was. A message stays in the inbox until it is acknowledged (or cancelled), so a
partner that starts again without a cursor sees every unacknowledged message again: delivery
is at least once and partners de-duplicate by id. Bodies are served as the exact stored bytes
(base64url) with the signature made over them, never re-serialised.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import ForbiddenError, InvalidMessageError
from gateway.protocol.partners import PartnerRegistry
from gateway.protocol.signing import b64url_encode
from gateway.storage.commit_order import visible_horizon
from gateway.storage.tables import message_state, messages

__all__ = ["MAX_LIMIT", "InboxPage", "read_inbox"]

MAX_LIMIT = 500
_WAITING = ("queued", "delivered")


@dataclass(frozen=True, slots=True)
class InboxPage:
    messages: list[dict[str, str]]
    next: str


def _cursor(after: str | None) -> tuple[int, int]:
    """(transaction, pk) of a cursor; a plain pk has transaction 0."""
    if after is None or after == "":
        return 0, 0
    head, dot, tail = after.partition(".")
    parts = [head, tail] if dot else ["0", head]
    if not all(p.isdigit() and len(p) <= 18 for p in parts):
        raise InvalidMessageError("schema_violation",
                                  f"after {after!r} is not a cursor this inbox returned")
    return int(parts[0]), int(parts[1])


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
    xact, pk = _cursor(after)
    query = (select(messages.c.pk, messages.c.xact_id, messages.c.wire, messages.c.signature)
             .join(message_state, message_state.c.message_pk == messages.c.pk)
             .where(messages.c.partner_id == partner_id, messages.c.direction == "out",
                    message_state.c.state.in_(_WAITING)))
    pg = conn.dialect.name == "postgresql"
    if pg:
        query = (query.where(tuple_(messages.c.xact_id, messages.c.pk) > tuple_(xact, pk),
                             messages.c.xact_id < visible_horizon())
                 .order_by(messages.c.xact_id, messages.c.pk))
    else:
        query = query.where(messages.c.pk > pk).order_by(messages.c.pk)
    rows = (await conn.execute(query.limit(limit))).all()
    if not rows:
        return InboxPage([], after or "0")
    last = rows[-1]
    return InboxPage(
        [{"body_b64": b64url_encode(r.wire), "signature": r.signature} for r in rows],
        f"{last.xact_id}.{last.pk}" if pg else str(last.pk),
    )
