"""What partners read from the hub (receipts, the pull inbox, tracking), one unit of work each.

Every read authenticates the caller's bearer token first; recording the token's ``jti``
(replay protection) is a write, so each call commits it together with nothing else. The PX/1
endpoints (``gateway.messages.api``, ``gateway.messages.partner_api``) only translate HTTP to
these calls and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.clock import Clock
from gateway.messages.inbox import InboxPage, read_inbox
from gateway.messages.partner_keys import PartnerKeys
from gateway.messages.receipts import StoredReceipt, find_receipt
from gateway.messages.suspensions import Suspensions
from gateway.messages.tokens import authenticate_partner
from gateway.messages.tracking import track
from gateway.ports.processing import PaymentSource
from gateway.protocol.partners import PartnerRegistry
from gateway.protocol.signing import KeyRing
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["PartnerReads"]


class PartnerReads:
    """Authenticated reads for partners."""

    def __init__(self, uow: UnitOfWorkFactory, registry: PartnerRegistry,
                 payment_sources: Sequence[PaymentSource], clock: Clock,
                 suspensions: Suspensions | None = None,
                 keys: PartnerKeys | None = None) -> None:
        self.uow = uow
        self.keys = keys
        self.suspensions = suspensions
        self.registry = registry
        self.payment_sources = payment_sources
        self.clock = clock

    async def _ring(self) -> KeyRing:
        # Before the unit of work: the ring's refresh reads the key table in its own.
        return await self.keys.ring() if self.keys is not None else self.registry.keys

    async def receipt(self, authorization: str | None, message_id: str) -> StoredReceipt:
        """Return the receipt the hub gave for one of the caller's messages."""
        ring = await self._ring()
        async with self.uow() as uow:
            partner_id = await authenticate_partner(uow.conn, self.registry, authorization,
                                                    self.clock, self.suspensions, ring)
            receipt = await find_receipt(uow.conn, partner_id, message_id)
            await uow.commit()
        return receipt

    async def inbox(self, authorization: str | None, after: str | None,
                    limit: int) -> InboxPage:
        """Return a page of the hub messages waiting for the (pull) caller."""
        ring = await self._ring()
        async with self.uow() as uow:
            partner_id = await authenticate_partner(uow.conn, self.registry, authorization,
                                                    self.clock, self.suspensions, ring)
            page = await read_inbox(uow.conn, self.registry, partner_id, after, limit)
            await uow.commit()
        return page

    async def tracking(self, authorization: str | None, correlation_id: str) -> dict[str, Any]:
        """Return the caller's thread ``correlation_id``: messages and payments."""
        ring = await self._ring()
        async with self.uow() as uow:
            partner_id = await authenticate_partner(uow.conn, self.registry, authorization,
                                                    self.clock, self.suspensions, ring)
            result = await track(uow.conn, partner_id, correlation_id, self.payment_sources)
            await uow.commit()
        return result
