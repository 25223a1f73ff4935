"""The processing seam: what a processor of inbound messages gets, and what it may call.

Intake only stores; the effects of an accepted message (a claim recorded, a pension stopped, a
hub message acknowledged) are done by a **processor**, after commit, inside the
``process_inbound`` outbox task's unit of work. Which processor handles which message type is
one explicit table, built by the composition root (``gateway.composition.inbound_processors``);
this module only defines the shapes, so the domain packages (claims, payments, messages) depend
on it and never on each other's modules or on the dispatcher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.protocol.envelope import Envelope
from gateway.protocol.partners import PartnerRegistry

__all__ = [
    "AccountCheck", "OutboundMessage", "OutboundSender", "PaymentSource", "ProcessingContext",
    "Processor", "accept_any_account",
]

AccountCheck = Callable[[str, str], None]
"""``check(rail, account)``: raises ``InvalidMessageError`` naming what is wrong when ``rail``
cannot pay ``account`` (the rails file's practice, gateway.payments.accounts)."""


def accept_any_account(rail: str, account: str) -> None:
    """No rail practice configured: every account the edge admitted is payable."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A hub message stored and queued for its partner."""

    pk: int
    message_id: str
    envelope: bytes


class OutboundSender(Protocol):
    """Creates hub messages to partners inside the caller's transaction (the outbox rule)."""

    registry: PartnerRegistry

    async def send(
        self, conn: AsyncConnection, *, partner_id: str, type_: str, payload: dict[str, Any],
        now: datetime, correlation_id: str | None = None, message_id: str | None = None,
    ) -> OutboundMessage:
        """Store a signed hub message for ``partner_id`` and queue its delivery.

        Args:
            conn: the caller's unit of work connection; nothing is committed here.
            partner_id: a registered partner.
            type_: a hub-to-partner message type (protocol.md).
            payload: the message's payload, validated against the type's model.
            now: the hub's time of sending.
            correlation_id: the case the message belongs to (its delivery is ordered by it).
            message_id: a deterministic id, so a second attempt collides instead of doubling.

        Returns:
            The stored message.

        Raises:
            NotFoundError: the partner is not registered.
            InvalidMessageError: unknown_type, or schema_violation of the payload.
        """
        ...


@dataclass(frozen=True, slots=True)
class ProcessingContext:
    """What a processor works with: the task's connection, time, message and sender."""

    conn: AsyncConnection
    now: datetime
    message_pk: int
    partner_id: str
    outbound: OutboundSender
    check_account: AccountCheck = field(default=accept_any_account)


Processor = Callable[[ProcessingContext, Envelope], Awaitable[None]]
"""Applies one accepted inbound message; raises to have the task retried (nothing commits)."""

PaymentSource = Callable[[AsyncConnection, str, str], Awaitable[list[dict[str, Any]]]]
"""(conn, partner_id, correlation_id) -> the partner's payments in that thread, oldest first."""
