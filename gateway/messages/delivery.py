"""Push delivery of hub messages: the ``deliver`` outbox handler.

One task per stored hub message (``Outbound.send`` enqueues it in the business transaction).
The handler sends the *stored* wire bytes with the *stored* signature, never a re-encoding, so
what the partner verifies is byte for byte what the evidence log holds. No transaction is open
during the HTTP call. The partner's answer counts as delivery only if it is a receipt signed
by one of that partner's keys that names this message id and the sha256 of the bytes sent;
then the receipt (evidence), the message's state and the task's completion commit together.

Failures are classified and returned to the dispatcher, which alone decides about retries:
an answer that cannot be trusted (bad signature, wrong message) is ``OutcomeUnknownError``,
since the partner may well hold the message; it is sent again and the partner de-duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import httpx
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.clock import Clock
from gateway.errors import (
    AuthError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    ProblemError,
)
from gateway.outbox.handlers import handle_each
from gateway.outbox.records import Task, complete
from gateway.ports.partner import PartnerAdapter
from gateway.protocol.envelope import HUB_PARTY, Receipt
from gateway.protocol.partners import PartnerRegistry
from gateway.protocol.signing import verify_detached
from gateway.storage.tables import delivery_receipts, message_state, messages
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["DeliveryHandler"]

log = logging.getLogger(__name__)

# States after which a message is never sent again.
_FINAL = ("delivered", "acknowledged", "cancelled")


class DeliveryHandler:
    """Deliver stored hub messages to push partners and keep their signed receipts."""

    kind = "deliver"
    batch_size = 1

    def __init__(self, uow: UnitOfWorkFactory, registry: PartnerRegistry,
                 adapters: Mapping[str, PartnerAdapter], client: httpx.AsyncClient,
                 clock: Clock) -> None:
        self.uow = uow
        self.registry = registry
        self.adapters = adapters
        self.client = client
        self.clock = clock

    async def handle(self, tasks: Sequence[Task]) -> list[BaseException | None]:
        return await handle_each(tasks, self._one)

    async def _one(self, task: Task) -> None:
        pk = int(task.ref)
        async with self.uow() as uow:
            row = (await uow.conn.execute(
                select(messages.c.partner_id, messages.c.message_id, messages.c.wire,
                       messages.c.signature, messages.c.body_sha256, message_state.c.state)
                .join(message_state, message_state.c.message_pk == messages.c.pk)
                .where(messages.c.pk == pk)
            )).one()
            if row.state in _FINAL:  # cancelled meanwhile, or an earlier attempt got through
                await complete(uow.conn, task, self.clock())
                await uow.commit()
                return
        partner = self.registry.get(row.partner_id)
        if partner is None or partner.endpoint is None:
            raise PermanentDeliveryError(f"{row.partner_id} has no endpoint in the registry")
        if partner.suspended:
            raise PermanentDeliveryError(f"{partner.id} is suspended")
        adapter = self.adapters[partner.adapter]
        answer = await adapter.deliver(self.client, partner.endpoint, row.wire, row.signature,
                                       timeout=partner.timeout_seconds)
        try:
            signed = verify_detached(answer.body, answer.signature, self.registry.keys)
        except AuthError as exc:
            raise OutcomeUnknownError(f"{partner.id}'s receipt: {exc.detail}") from None
        if signed.party != partner.id:
            raise OutcomeUnknownError(
                f"the receipt is signed by {signed.party}, not {partner.id}")
        try:
            receipt = Receipt.model_validate(adapter.parse_receipt(answer.body))
        except (ProblemError, ValidationError) as exc:
            raise OutcomeUnknownError(f"{partner.id}'s answer is not a receipt: {exc}") from None
        if (receipt.message_id.lower() != row.message_id.lower()
                or receipt.body_sha256 != row.body_sha256 or receipt.sender != HUB_PARTY):
            raise OutcomeUnknownError(
                f"{partner.id}'s receipt names message {receipt.message_id} / sha256 "
                f"{receipt.body_sha256[:12]}..., not {row.message_id} / {row.body_sha256[:12]}...")
        now = self.clock()
        async with self.uow() as uow:
            ins = pg_insert if uow.conn.dialect.name == "postgresql" else sqlite_insert
            await uow.conn.execute(
                ins(delivery_receipts).values(
                    message_pk=pk, received_at=now, body=answer.body,
                    signature=answer.signature or "", kid=signed.kid)
                .on_conflict_do_nothing(index_elements=["message_pk"]))
            await uow.conn.execute(
                update(message_state)
                .where(message_state.c.message_pk == pk,
                       message_state.c.state.not_in(["acknowledged", "cancelled"]))
                .values(state="delivered", detail=None, updated_at=now))
            await complete(uow.conn, task, now)
            await uow.commit()
        log.info("delivered message %s to %s (attempt %d)", row.message_id, partner.id,
                 task.attempts)
