"""Processing of accepted inbound messages: the ``process_inbound`` outbox handler.

Intake only stores; the effects of a message (a claim recorded, a pension stopped, a hub
message acknowledged) happen here, after commit, with the outbox's retries. Each message type
has at most one processor, given by the routing table the composition root builds
(``gateway.composition.inbound_processors``); a type without a processor is simply recorded as
processed. A processor runs inside the task's unit of work: its changes, any hub messages it
sends and the task's completion commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import orjson
from sqlalchemy import select

from gateway.clock import Clock
from gateway.outbox.handlers import handle_each
from gateway.outbox.records import Task, complete
from gateway.ports.processing import (
    AccountCheck,
    OutboundSender,
    ProcessingContext,
    Processor,
    accept_any_account,
)
from gateway.protocol.envelope import Envelope
from gateway.storage.tables import messages
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["InboundProcessor"]

log = logging.getLogger(__name__)


class InboundProcessor:
    kind = "process_inbound"
    batch_size = 1

    def __init__(self, uow: UnitOfWorkFactory, outbound: OutboundSender, clock: Clock,
                 processors: Mapping[str, Processor],
                 check_account: AccountCheck = accept_any_account) -> None:
        self.uow = uow
        self.outbound = outbound
        self.clock = clock
        self.check_account = check_account
        self.processors = dict(processors)

    async def handle(self, tasks: Sequence[Task]) -> list[BaseException | None]:
        return await handle_each(tasks, self._one)

    async def _one(self, task: Task) -> None:
        async with self.uow() as uow:
            row = (await uow.conn.execute(
                select(messages.c.pk, messages.c.partner_id, messages.c.wire,
                       messages.c.canonical).where(messages.c.pk == int(task.ref))
            )).one()
            envelope = Envelope.model_validate(orjson.loads(row.canonical or row.wire))
            processor = self.processors.get(envelope.type)
            now = self.clock()
            if processor is not None:
                await processor(ProcessingContext(uow.conn, now, row.pk, row.partner_id,
                                                  self.outbound, self.check_account), envelope)
            await complete(uow.conn, task, now)
            await uow.commit()
        log.info("processed %s %s from %s", envelope.type, envelope.id, row.partner_id)
