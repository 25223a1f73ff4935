"""Push delivery of hub messages: the ``deliver`` outbox handler.

One task per stored hub message (``Outbound.send`` enqueues it in the business transaction).
The handler sends the *stored* wire bytes with the *stored* signature, never a re-encoding, so
what the partner verifies is byte for byte what the evidence log holds. No transaction is open
during the HTTP calls. The partner's answer counts as delivery only if it is a receipt signed
by one of that partner's keys that names this message id and the sha256 of the bytes sent;
then the receipt (evidence), the message's state and the task's completion commit together.
A batch (one partner's claimed tasks) is read at once, delivered side by side and recorded in
one transaction, only for the tasks whose lease it still holds; one message's failure is that
message's result, never its neighbours'.

Failures are classified and returned to the dispatcher, which alone decides about retries:
an answer that cannot be trusted (bad signature, wrong message) is ``OutcomeUnknownError``,
since the partner may well hold the message; it is sent again and the partner de-duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import NoResultFound

from gateway.clock import Clock
from gateway.errors import (
    AuthError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    ProblemError,
)
from gateway.messages.partner_keys import PartnerKeys
from gateway.outbox.records import LeaseLost, Task, complete_many, leased_by
from gateway.ports.partner import PartnerAdapter
from gateway.protocol.envelope import HUB_PARTY, Receipt
from gateway.protocol.partners import PartnerRegistry
from gateway.protocol.signing import verify_detached
from gateway.storage.bulk import one_of
from gateway.storage.tables import delivery_receipts, message_state, messages
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["DeliveryHandler"]

log = logging.getLogger(__name__)

# States after which a message is never sent again.
_FINAL = ("delivered", "acknowledged", "cancelled")


class DeliveryHandler:
    """Deliver stored hub messages to push partners and keep their signed receipts."""

    kind = "deliver"
    # Deliveries of one claimed batch to one partner: one read, the HTTP calls side by side,
    # and one commit for all the receipts. Per-message reads and commits cost more database
    # round trips (and CPU) than the delivery itself.
    batch_size = 50
    concurrency = 16  # HTTP calls in flight per batch, so a partner sees a bounded burst

    def __init__(self, uow: UnitOfWorkFactory, registry: PartnerRegistry,
                 adapters: Mapping[str, PartnerAdapter], client: httpx.AsyncClient,
                 clock: Clock, keys: PartnerKeys | None = None) -> None:
        self.uow = uow
        self.keys = keys
        self.registry = registry
        self.adapters = adapters
        self.client = client
        self.clock = clock

    async def handle(self, tasks: Sequence[Task]) -> list[BaseException | None]:
        results: dict[int, BaseException | None] = {}
        async with self.uow(read_only=True) as uow:
            rows = {r.pk: r for r in (await uow.conn.execute(
                select(messages.c.pk, messages.c.partner_id, messages.c.message_id,
                       messages.c.wire, messages.c.signature, messages.c.body_sha256,
                       message_state.c.state)
                .join(message_state, message_state.c.message_pk == messages.c.pk)
                .where(one_of(uow.conn, messages.c.pk, [int(t.ref) for t in tasks]))
            )).all()}
        finished: list[_Delivered | Task] = []  # to record: receipts, or tasks already final
        slots = asyncio.Semaphore(self.concurrency)

        async def deliver(task: Task) -> None:
            async with slots:
                await deliver_one(task)

        async def deliver_one(task: Task) -> None:
            try:
                row = rows.get(int(task.ref))
                if row is None:
                    raise NoResultFound(f"hub message {task.ref} does not exist")
                if row.state in _FINAL:  # cancelled meanwhile, or an earlier attempt got through
                    finished.append(task)
                    return
                finished.append(await self._send(task, row))
            except Exception as exc:
                results[task.pk] = exc

        await asyncio.gather(*(deliver(t) for t in tasks))
        if finished:
            try:
                lost = await self._record(finished)
            except Exception as exc:  # nothing recorded: every one is tried again
                for item in finished:
                    results[_task(item).pk] = exc
            else:
                for item in finished:
                    task = _task(item)
                    results[task.pk] = (LeaseLost(f"outbox task {task.pk} is no longer leased")
                                        if task.pk in lost else None)
        return [results.get(t.pk) for t in tasks]

    async def _send(self, task: Task, row: Any) -> _Delivered:
        partner = self.registry.get(row.partner_id)
        if partner is None or partner.endpoint is None:
            raise PermanentDeliveryError(f"{row.partner_id} has no endpoint in the registry")
        if partner.suspended:
            raise PermanentDeliveryError(f"{partner.id} is suspended")
        adapter = self.adapters[partner.adapter]
        answer = await adapter.deliver(self.client, partner.endpoint, row.wire, row.signature,
                                       timeout=partner.timeout_seconds)
        try:
            ring = await self.keys.ring() if self.keys is not None else self.registry.keys
            signed = verify_detached(answer.body, answer.signature, ring)
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
        log.info("delivered message %s to %s (attempt %d)", row.message_id, partner.id,
                 task.attempts)
        return _Delivered(task, row.pk, answer.body, answer.signature or "", signed.kid)

    async def _record(self, finished: Sequence[_Delivered | Task]) -> set[int]:
        """Store the receipts, mark the messages delivered and complete the tasks, in one
        transaction; return the pks of tasks whose lease was lost (nothing of theirs kept)."""
        now = self.clock()
        async with self.uow() as uow:
            owned = await leased_by(uow.conn, [_task(i) for i in finished])
            kept = [i for i in finished if _task(i).pk in owned]
            delivered = [i for i in kept if isinstance(i, _Delivered)]
            if delivered:
                ins = pg_insert if uow.conn.dialect.name == "postgresql" else sqlite_insert
                await uow.conn.execute(
                    ins(delivery_receipts).on_conflict_do_nothing(index_elements=["message_pk"]),
                    [{"message_pk": d.message_pk, "received_at": now, "body": d.body,
                      "signature": d.signature, "kid": d.kid} for d in delivered])
                await uow.conn.execute(
                    update(message_state)
                    .where(one_of(uow.conn, message_state.c.message_pk,
                                  [d.message_pk for d in delivered]),
                           message_state.c.state.not_in(["acknowledged", "cancelled"]))
                    .values(state="delivered", detail=None, updated_at=now))
            await complete_many(uow.conn, [_task(i) for i in kept], now, owned=owned)
            await uow.commit()
        return {_task(i).pk for i in finished} - owned


@dataclass(frozen=True, slots=True)
class _Delivered:
    """A delivery the partner's signed receipt confirmed, not yet recorded."""

    task: Task
    message_pk: int
    body: bytes
    signature: str
    kid: str


def _task(item: _Delivered | Task) -> Task:
    return item.task if isinstance(item, _Delivered) else item
