"""Processing of accepted inbound messages: the ``process_inbound`` outbox handler.

Intake only stores; the effects of a message (a claim recorded, a pension stopped, a hub
message acknowledged) happen here, after commit, with the outbox's retries. Each message type
has at most one processor, given by the routing table the composition root builds
(``gateway.composition.inbound_processors``); a type without a processor is simply recorded as
processed. A processor runs inside the task's unit of work: its changes, any hub messages it
sends and the task's completion commit together. A claimed batch shares one unit of work (see
``InboundProcessor.batch_size``); claiming gives a batch at most one task per ordering key, so
sharing a transaction never reorders a case.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import Clock
from gateway.outbox.handlers import handle_each
from gateway.outbox.records import LeaseLost, Task, complete, complete_many, leased_by
from gateway.ports.processing import (
    AccountCheck,
    OutboundSender,
    ProcessingContext,
    Processor,
    accept_any_account,
)
from gateway.protocol.envelope import Envelope
from gateway.storage.bulk import one_of
from gateway.storage.tables import messages
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["InboundProcessor"]

log = logging.getLogger(__name__)


class InboundProcessor:
    kind = "process_inbound"
    # Tasks of one claimed batch are processed in one transaction (one read of their messages,
    # one completion, one commit) rather than one each: per-task transactions cost more
    # database round trips than the processing itself. If anything in the batch fails, it is
    # rolled back whole and its tasks are done again one by one, so a poison message is only
    # its own task's failure and the others commit as before.
    batch_size = 50

    def __init__(self, uow: UnitOfWorkFactory, outbound: OutboundSender, clock: Clock,
                 processors: Mapping[str, Processor],
                 check_account: AccountCheck = accept_any_account) -> None:
        self.uow = uow
        self.outbound = outbound
        self.clock = clock
        self.check_account = check_account
        self.processors = dict(processors)

    async def handle(self, tasks: Sequence[Task]) -> list[BaseException | None]:
        if len(tasks) > 1:
            try:
                return await self._together(tasks)
            except Exception as exc:
                log.info("processing %d task(s) together failed (%s); one by one now",
                         len(tasks), type(exc).__name__)
        return await handle_each(tasks, self._one)

    async def _together(self, tasks: Sequence[Task]) -> list[BaseException | None]:
        """Process ``tasks`` in one unit of work; raise (nothing kept) if any of them fails."""
        async with self.uow() as uow:
            owned = await leased_by(uow.conn, tasks)
            mine = [t for t in tasks if t.pk in owned]
            rows = {r.pk: r for r in (await uow.conn.execute(
                select(messages.c.pk, messages.c.partner_id, messages.c.wire,
                       messages.c.canonical)
                .where(one_of(uow.conn, messages.c.pk, [int(t.ref) for t in mine])))).all()}
            now = self.clock()
            done = []
            for task in mine:
                row = rows[int(task.ref)]
                done.append(await self._apply(uow.conn, row, now))
            await complete_many(uow.conn, mine, now, owned=owned)
            await uow.commit()
        for envelope, partner_id in done:
            log.info("processed %s %s from %s", envelope.type, envelope.id, partner_id)
        return [None if t.pk in owned else LeaseLost(f"outbox task {t.pk} is no longer leased")
                for t in tasks]

    async def _apply(self, conn: AsyncConnection, row: Any,
                     now: datetime) -> tuple[Envelope, str]:
        envelope = Envelope.model_validate(orjson.loads(row.canonical or row.wire))
        processor = self.processors.get(envelope.type)
        if processor is not None:
            await processor(ProcessingContext(conn, now, row.pk, row.partner_id,
                                              self.outbound, self.check_account), envelope)
        return envelope, row.partner_id

    async def _one(self, task: Task) -> None:
        async with self.uow() as uow:
            row = (await uow.conn.execute(
                select(messages.c.pk, messages.c.partner_id, messages.c.wire,
                       messages.c.canonical).where(messages.c.pk == int(task.ref))
            )).one()
            now = self.clock()
            envelope, _ = await self._apply(uow.conn, row, now)
            await complete(uow.conn, task, now)
            await uow.commit()
        log.info("processed %s %s from %s", envelope.type, envelope.id, row.partner_id)
