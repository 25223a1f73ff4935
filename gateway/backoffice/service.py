"""The back office's use cases: each opens its unit of work, and commits it when it writes.

The endpoints in ``gateway.backoffice.api`` only translate HTTP to these calls and back; the
service is built by the composition root with the hub's unit-of-work factory.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import sqlalchemy.exc
from sqlalchemy.engine import RowMapping

from gateway.clock import Clock
from gateway.errors import InvalidMessageError, NotFoundError
from gateway.outbox import records
from gateway.payments import pensions
from gateway.payments import repository as repo
from gateway.payments.callbacks import handle_callback
from gateway.payments.domain import Cause
from gateway.payments.requests import PaymentIn, PensionIn
from gateway.payments.service import PaymentService, discrepancy_view, payment_view
from gateway.ports.processing import OutboundSender
from gateway.ports.rail import RailAdapter
from gateway.protocol.partners import PartnerRegistry
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["BackofficeService", "Page"]

Page = dict[str, Any]


class BackofficeService:
    """Payments, pensions, hub messages, dead letters and rail callbacks for the back office."""

    def __init__(self, uow: UnitOfWorkFactory, payments: PaymentService,
                 rails: Mapping[str, RailAdapter], outbound: OutboundSender,
                 clock: Clock, registry: PartnerRegistry) -> None:
        self.uow = uow
        self.registry = registry
        self.payments = payments
        self.rails = rails
        self.outbound = outbound
        self.clock = clock

    def _known_partner(self, partner_id: str | None) -> None:
        # The partner is told of the payment (payment.notice, claim.status): one the
        # registry does not know would be paid with no notice to anyone.
        if partner_id is not None and self.registry.get(partner_id) is None:
            raise InvalidMessageError("schema_violation", f"partner_id: {partner_id!r} is not a "
                                      "partner in the registry")

    # -- payments --------------------------------------------------------------------------------

    async def instruct(self, req: PaymentIn) -> tuple[dict[str, Any], bool]:
        """Instruct a payment (idempotent by id); return its view and whether it is new."""
        self._known_partner(req.partner_id)
        for attempt in (1, 2):
            try:
                async with self.uow() as uow:
                    row, created = await self.payments.instruct(uow.conn, req, self.clock())
                    await uow.commit()
                return payment_view(row), created
            except sqlalchemy.exc.IntegrityError:
                # A concurrent identical request won the insert: the retry finds and compares
                # it (the same content is the same payment, other content a conflict).
                if attempt == 2:  # pragma: no cover - a second race on the same id is impossible
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def payment(self, payment_id: str) -> dict[str, Any]:
        """Return a payment with every state change and cause.

        Raises:
            NotFoundError: there is no such payment.
        """
        async with self.uow(read_only=True) as uow:
            row = (await repo.by_ids(uow.conn, [payment_id])).get(payment_id)
            if row is None:
                raise NotFoundError("not_found", f"no payment {payment_id}")
            return payment_view(row, await repo.events_of(uow.conn, row.pk))

    async def payments_page(self, where: repo.PaymentFilter, *, before: int | None,
                            limit: int) -> Page:
        """Return matching payments newest first, with the cursor of the next page."""
        async with self.uow(read_only=True) as uow:
            rows = await repo.newest(uow.conn, where, before=before, limit=limit)
        return {"payments": [payment_view(r) for r in rows],
                "next": rows[-1].pk if len(rows) == limit else None}

    async def cancel(self, payment_id: str, detail: str) -> dict[str, Any]:
        """Cancel a payment never attempted, or ask its rail to cancel it; return it."""
        async with self.uow() as uow:
            row = await self.payments.stop(uow.conn, payment_id, Cause.cancelled, detail,
                                           self.clock())
            await uow.commit()
        return payment_view(row)

    # -- pensions --------------------------------------------------------------------------------

    async def create_pension(self, req: PensionIn) -> tuple[dict[str, Any], bool]:
        """Instruct a pension schedule; return its view and whether it is new."""
        self._known_partner(req.partner_id)
        # Checked here, not per period: a schedule its rail can never pay is refused at once.
        self.payments.check_payout(req.rail, req.payout, req.monthly_amount.value(),
                                   "monthly_amount")
        async with self.uow() as uow:
            row, created = await pensions.create_schedule(uow.conn, self.payments, req,
                                                          self.clock())
            await uow.commit()
        return pensions.schedule_view(row), created

    async def pension(self, pension_ref: str) -> dict[str, Any]:
        """Return a pension schedule with its history."""
        async with self.uow(read_only=True) as uow:
            return await pensions.get_schedule(uow.conn, pension_ref)

    async def run_pensions(self, today: date | None) -> int:
        """Create the payments of every pension period due ``today``; return how many.

        Raises:
            InvalidMessageError: schema_violation, ``today`` is after today in Malaysia (a
                run for the future would create and pay periods not yet due).
        """
        now = self.clock()
        local = pensions.local_today(now)
        if today is not None and today > local:
            raise InvalidMessageError("schema_violation", f"today: {today.isoformat()} is in "
                                      f"the future (it is {local.isoformat()} in Malaysia)")
        return await pensions.in_batches(
            self.uow, lambda conn, after, limit: pensions.run_due(
                conn, self.payments, today or local, now, limit=limit, after=after))

    # -- hub messages ----------------------------------------------------------------------------

    async def send_message(self, *, partner_id: str, type_: str, payload: dict[str, Any],
                           correlation_id: str | None) -> str:
        """Store and queue a hub message to a partner; return its id."""
        async with self.uow() as uow:
            msg = await self.outbound.send(uow.conn, partner_id=partner_id, type_=type_,
                                           payload=payload, now=self.clock(),
                                           correlation_id=correlation_id)
            await uow.commit()
        return msg.message_id

    # -- operations: dead letters ----------------------------------------------------------------

    async def dead_letters(self, kind: str | None, limit: int) -> list[dict[str, Any]]:
        """Return outbox work that was given up, with its last error."""
        async with self.uow(read_only=True) as uow:
            rows = await records.dead_letters(uow.conn, kind=kind, limit=limit)
        return [task_view(r) for r in rows]

    async def discrepancies(self, state: str | None, payment_id: str | None,
                            limit: int) -> list[dict[str, Any]]:
        """Return payment discrepancies (rail reports that contradicted the record)."""
        async with self.uow(read_only=True) as uow:
            rows = await repo.discrepancies(uow.conn, state=state, payment_id=payment_id,
                                            limit=limit)
        return [discrepancy_view(r) for r in rows]

    async def retry_dead_letter(self, task_id: int) -> dict[str, Any]:
        """Make a dead letter pending again now; return it.

        Raises:
            NotFoundError: there is no dead letter ``task_id``.
        """
        async with self.uow() as uow:
            row = await records.revive_dead(uow.conn, task_id, self.clock())
            if row is None:
                raise NotFoundError("not_found", f"no dead letter {task_id}")
            await uow.commit()
        return task_view(row) | {"state": "pending"}

    # -- rail callbacks --------------------------------------------------------------------------

    def rail(self, name: str) -> RailAdapter:
        """Return the configured rail ``name``.

        Raises:
            NotFoundError: no such rail.
        """
        adapter = self.rails.get(name)
        if adapter is None:
            raise NotFoundError("not_found", f"no rail {name!r}")
        return adapter

    async def rail_callback(self, rail: str, headers: Mapping[str, str],
                            body: bytes) -> dict[str, Any]:
        """Verify and apply a rail's callback; return what the hub made of it.

        Raises:
            NotFoundError: no such rail, or no payment with the callback's key.
        """
        adapter = self.rail(rail)
        async with self.uow() as uow:
            result = await handle_callback(uow.conn, self.payments, rail, adapter, headers,
                                           body, self.clock())
            await uow.commit()
        return result


def task_view(r: RowMapping) -> dict[str, Any]:
    """An outbox task as the operators see it."""
    return {"id": r.pk, "kind": r.kind, "destination": r.destination, "ref": r.ref,
            "ordering_key": r.ordering_key, "attempts": r.attempts, "last_error": r.last_error,
            "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat(),
            # Later work of the same case held back by this task while it is dead.
            "blocking": r.get("blocking", 0)}
