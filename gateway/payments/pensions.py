"""Periodic pensions: a schedule (monthly amount, start, end) creates one payment per period.

A period is a calendar month ``YYYY-MM``; its payment is created on the period's first day (or
later, if the run is late: missed periods are caught up, each its own payment) with the id
``<pension_ref>.<YYYYMM>``, so running the job twice, or in two processes, can never create a
period twice. A period the schedule covers only in part (it starts after the 1st or ends before
the month's last day) pays only its days (``prorate``). States of a schedule:

    active ──▶ suspended (life certificate overdue) ──▶ active (certificate received)
    active | suspended ──▶ stopped (death notified)          active ──▶ ended (after end_on)

Periods are created on schedule by the dispatchers' housekeeping (``gateway.runtime.jobs``, every
``GATEWAY_PENSION_RUN_EVERY_SECONDS``, in ``serve`` on the embedded default and in ``dispatch``)
and on demand by the back office (``POST /v1/backoffice/pensions/run``); both call ``run_due``.
Several dispatchers may run it at once: on PostgreSQL each takes the schedules it works on with
``FOR UPDATE SKIP LOCKED`` (another run skips them, and re-reads their advanced
``next_period``), and a period's payment id is unique, so no period is created twice.

Every change is recorded in ``pension_events`` with its cause and reason, and with the digest
of the schedule after it (``_write``, the one way a schedule is changed): a schedule changed
beside the hub is held, its periods not created and nothing written over it, until it is
restored (``gateway.evidence.pensions``). A death stops the schedule and cancels the person's
payments not yet sent for periods after the death.

PERKESO works in Malaysian time: periods and due dates are dates in ``Asia/Kuala_Lumpur``
(``local_today``), never the UTC date. Each schedule's periods are created in their own
savepoint: a schedule that cannot be paid (its rail is not configured, a payment id is taken,
its amount is above the ceiling) keeps its state, gets the reason and a ``period_failed`` event,
and the run goes on with the others.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import (
    ConflictError,
    EvidenceMismatchError,
    InvalidMessageError,
    NotFoundError,
    ProblemError,
)
from gateway.evidence.pensions import EVIDENCED as evidence
from gateway.money import Money
from gateway.payments.domain import Cause, PaymentState
from gateway.payments.requests import PaymentIn, PensionIn, canonical_sha256
from gateway.payments.service import PaymentService, with_changes
from gateway.storage.bulk import one_of
from gateway.storage.tables import payments, pension_events, pension_schedules
from gateway.storage.uow import UnitOfWorkFactory

__all__ = [
    "BATCH",
    "LIFE_CERTIFICATE_MONTHS",
    "Batch",
    "PERKESO_TZ",
    "local_today",
    "create_schedule",
    "period_of",
    "prorate",
    "after_death",
    "certificate_refusal",
    "in_batches",
    "change_payout",
    "record_life_certificate",
    "run_due",
    "schedule_view",
    "stop_for_death",
    "suspend_overdue",
]

log = logging.getLogger(__name__)

# How long a life certificate is good for; configuration-like data, not logic.
LIFE_CERTIFICATE_MONTHS = 12
BATCH = 200  # schedules per transaction of a pension job
MAX_BATCHES = 50  # per run; the next run carries on


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _next_period(period: str) -> str:
    y, m = int(period[:4]), int(period[5:])
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"


def _previous_period(period: str) -> str:
    y, m = int(period[:4]), int(period[5:])
    return f"{y - 1:04d}-12" if m == 1 else f"{y:04d}-{m - 1:02d}"


def prorate(monthly_minor: int, period: str, start_on: date,
            end_on: date | None) -> tuple[int, date, date, int]:
    """The amount of ``period`` for a schedule running ``start_on``..``end_on`` (inclusive).

    Returns (minor units, first day paid, last day paid, days in the month). A period the
    schedule covers only in part pays ``monthly x covered days / days in the month``, computed
    on integers (minor units, never floats) and rounded half up to the minor unit: a half sen
    goes to the beneficiary.
    """
    y, m = int(period[:4]), int(period[5:])
    days = calendar.monthrange(y, m)[1]
    first, last = max(date(y, m, 1), start_on), date(y, m, days)
    if end_on is not None:
        last = min(last, end_on)
    covered = (last - first).days + 1
    return (2 * monthly_minor * covered + days) // (2 * days), first, last, days


def _add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


async def create_schedule(conn: AsyncConnection, service: PaymentService, req: PensionIn,
                          now: datetime) -> tuple[RowMapping, bool]:
    """Record a pension schedule; idempotent by ``pension_ref``.

    Raises:
        ConflictError: payment_conflict, the reference is taken by a different schedule.
        InvalidMessageError: schema_violation, the rail is not configured.
    """
    digest = canonical_sha256(req)
    existing = await _by_ref(conn, req.pension_ref)
    if existing is not None:
        if existing.request_sha256 != digest:
            raise ConflictError("payment_conflict", f"pension {req.pension_ref} already has a "
                                "different schedule")
        return existing, False
    if req.rail not in service.rails:
        raise InvalidMessageError("schema_violation", f"rail: {req.rail!r} is not configured")
    service.check_ceiling(req.monthly_amount.value(), "monthly_amount")
    pk = (await conn.execute(insert(pension_schedules).values(
        pension_ref=req.pension_ref, request_sha256=digest, state="active",
        partner_id=req.partner_id, benefit=req.benefit.value,
        beneficiary_name=req.beneficiary.name, beneficiary_id=req.beneficiary.id_text(),
        rail=req.rail, provider=req.payout.provider, account=req.payout.account,
        account_name=req.payout.account_name, monthly_minor=req.monthly_amount.value().minor,
        currency="MYR", start_on=req.start_on, end_on=req.end_on,
        next_period=period_of(req.start_on),
        life_certificate_due_on=req.life_certificate_due_on, created_at=now, updated_at=now,
        claim_ref=req.claim_ref,
    ).returning(pension_schedules.c.pk))).scalar_one()
    await _event(conn, pk, None, "active", "instructed", "schedule created", now)
    row = await _by_ref(conn, req.pension_ref)
    assert row is not None
    return row, True


PERKESO_TZ = ZoneInfo("Asia/Kuala_Lumpur")


def local_today(now: datetime) -> date:
    """The date in Malaysia at ``now`` (periods and due dates are Malaysian dates)."""
    return now.astimezone(PERKESO_TZ).date()


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch of a pension job: what it did, and where the next batch starts."""

    count: int  # payments created (run_due) or schedules suspended (suspend_overdue)
    after: int | None  # the last schedule pk it looked at; None: none was left


async def in_batches(uow_factory: UnitOfWorkFactory,
                     job: Callable[[AsyncConnection, int, int], Awaitable[Batch]],
                     batch: int | None = None, max_batches: int = MAX_BATCHES) -> int:
    """Run ``job(conn, after, limit)`` batch after batch, each in its own transaction, by
    schedule pk; return the total count. Keyset, not "until a batch does nothing": a schedule
    that is held or keeps failing stays due, and must never hold up those after it."""
    total, after = 0, 0
    for _ in range(max_batches):
        async with uow_factory() as uow:
            done = await job(uow.conn, after, batch or BATCH)
            await uow.commit()
        total += done.count
        if done.after is None:
            break
        after = done.after
    return total


def _due_page(q: Select[Any], conn: AsyncConnection, after: int, limit: int) -> Select[Any]:
    q = q.where(pension_schedules.c.pk > after).order_by(pension_schedules.c.pk).limit(limit)
    return q.with_for_update(skip_locked=True) if conn.dialect.name == "postgresql" else q


def _next(rows: list[RowMapping], limit: int) -> int | None:
    return rows[-1].pk if len(rows) == limit else None


async def run_due(conn: AsyncConnection, service: PaymentService, today: date, now: datetime,
                  limit: int = BATCH, after: int = 0) -> Batch:
    """Create the payments of every due period of the next ``limit`` active schedules after
    pk ``after``; return how many, and where to go on.

    Suspends a schedule whose life certificate is overdue instead of paying it.
    """
    current = period_of(today)
    rows = list((await conn.execute(_due_page(
        select(pension_schedules).where(pension_schedules.c.state == "active",
                                        pension_schedules.c.next_period <= current),
        conn, after, limit))).mappings())
    created = 0
    for s in await _unheld(conn, rows):
        due = s.life_certificate_due_on
        if due is not None and today > due:
            await _set_state(conn, s, "suspended", "life_certificate_overdue",
                             f"life certificate was due on {due.isoformat()}", now)
            continue
        try:
            async with conn.begin_nested():  # one schedule's failure never aborts the run
                created += await _create_periods(conn, service, s, current, now)
        except (ConflictError, InvalidMessageError, EvidenceMismatchError) as exc:
            why = exc.detail if isinstance(exc, ProblemError) else f"evidence_mismatch: {exc}"
            reason = f"period not created: {why}"
            log.warning("pension %s: %s", s.pension_ref, reason)
            if s.reason != reason:  # once per distinct cause, not once per run
                await _write(conn, s, "period_failed", reason, now, reason=reason)
    return Batch(created, _next(rows, limit))


async def _unheld(conn: AsyncConnection, schedules: list[RowMapping]) -> list[RowMapping]:
    """``schedules`` less those changed beside the hub: nothing is created from or written
    over those, and each run says so again (an alert until someone restores the row)."""
    held = await evidence.mismatched(conn, [s.pk for s in schedules])
    for why in held.values():
        log.error("ALERT pension schedule held: %s; %s", why, evidence.held)
    return [s for s in schedules if s.pk not in held]


async def _create_periods(conn: AsyncConnection, service: PaymentService, s: RowMapping,
                          current: str, now: datetime) -> int:
    period = s.next_period
    end = period_of(s.end_on) if s.end_on else None
    created = 0
    while period <= current and (end is None or period <= end):
        minor, first, last, days = prorate(s.monthly_minor, period, s.start_on, s.end_on)
        covered = (last - first).days + 1
        if minor == 0:  # a few days of a tiny pension: there is nothing to pay
            await _write(conn, s, "period_not_paid",
                         f"{period}: {covered}/{days} days round to 0", now)
            period = _next_period(period)
            continue
        req = PaymentIn.model_validate({
            "payment_id": f"{s.pension_ref}.{period.replace('-', '')}",
            "partner_id": s.partner_id,
            "beneficiary": {"name": s.beneficiary_name,
                            "national_id": _nid(s.beneficiary_id)},
            "benefit": s.benefit, "pension_ref": s.pension_ref,
            "amount": Money(minor, s.currency).wire(), "rail": s.rail,
            "payout": {"provider": s.provider, "account": s.account,
                       "account_name": s.account_name},
        })
        row, new = await service.instruct(conn, req, now, period=period)
        if new and covered < days:
            await service.note(conn, row, Cause.pension_prorated,
                               f"{period}: {Money(s.monthly_minor, s.currency)} x "
                               f"{covered}/{days} days ({first} to {last}) = "
                               f"{Money(minor, s.currency)}, sen rounded half up", now)
        created += int(new)
        period = _next_period(period)
    await _write(conn, s, "periods_created",
                 f"{s.next_period} to {_previous_period(period)}: {created} payment(s)", now,
                 next_period=period)
    if end is not None and period > end:
        await _set_state(conn, s, "ended", "schedule_ended", f"last period {end} created", now)
    return created


async def suspend_overdue(conn: AsyncConnection, today: date, now: datetime,
                          limit: int = BATCH, after: int = 0) -> Batch:
    """Suspend the next ``limit`` active schedules after pk ``after`` whose life certificate
    is overdue; return how many, and where to go on.

    ``run_due`` also suspends an overdue schedule when its next period falls due; this does it
    as soon as the certificate is late, so the schedule's state says so at once.
    """
    rows = list((await conn.execute(_due_page(
        select(pension_schedules).where(pension_schedules.c.state == "active",
                                        pension_schedules.c.life_certificate_due_on < today),
        conn, after, limit))).mappings())
    n = 0
    for s in await _unheld(conn, rows):
        await _set_state(conn, s, "suspended", "life_certificate_overdue",
                         f"life certificate was due on {s.life_certificate_due_on.isoformat()}",
                         now)
        n += 1
    return Batch(n, _next(rows, limit))


# Payments whose outcome is not known yet: a death stops them (or asks the rail to).
_STOPPABLE = [PaymentState.instructed.value, PaymentState.sending.value,
              PaymentState.unknown.value, PaymentState.submitted.value]


async def stop_for_death(conn: AsyncConnection, service: PaymentService, partner_id: str,
                         pension_ref: str | None, claim_ref: str | None, person_id: str,
                         died_on: date, now: datetime) -> tuple[int, int]:
    """Stop the periodic benefits of the person who died; return (schedules, payments).

    Only pension schedules stop (lump sums such as a funeral benefit are owed to the family),
    and only those whose beneficiary is the person (``person_id``, "scheme:value"): the
    schedule named by ``pension_ref``, or those awarded on ``claim_ref``. Their payments of
    periods after the death are stopped (cancelled if never sent, else a cancel asked of the
    rail).
    """
    detail = f"death on {died_on.isoformat()} notified by {partner_id}"
    q = select(pension_schedules).where(pension_schedules.c.partner_id == partner_id)
    q = q.where(pension_schedules.c.pension_ref == pension_ref) if pension_ref is not None \
        else q.where(pension_schedules.c.claim_ref == claim_ref)
    refs = [s.pension_ref for s in (await conn.execute(q)).mappings()]
    if not refs:
        log.warning("death.notify from %s names no pension of its own; nothing stopped",
                    partner_id)
    stopped, cancelled = 0, 0
    for ref in refs:
        s = await _by_ref(conn, ref, lock=True)
        if s is None:
            continue
        if s.beneficiary_id is not None and s.beneficiary_id != person_id:
            log.warning("death.notify from %s: pension %s belongs to another person; kept",
                        partner_id, ref)
            continue
        if s.state != "stopped":
            await _set_state(conn, s, "stopped", "death_notified", detail, now, died_on=died_on)
            stopped += 1
        ids = (await conn.execute(select(payments.c.payment_id).where(
            payments.c.pension_ref == ref, payments.c.partner_id == partner_id,
            payments.c.state.in_(_STOPPABLE), payments.c.period > period_of(died_on))
            .order_by(payments.c.pk))).scalars()
        for payment_id in list(ids):
            try:
                await service.stop(conn, payment_id, Cause.death_notified, detail, now)
                cancelled += 1
            except ConflictError:
                pass  # its outcome became known meanwhile: nothing left to stop
            except EvidenceMismatchError as exc:
                # Held, so not sent; once restored, the payout worker finds the death
                # recorded here and stops it then (``after_death``). Refusing the whole
                # death instead would leave the schedule and its other payments running.
                log.error("ALERT death of pension %s: payment %s not stopped now: %s",
                          ref, payment_id, exc)
    return stopped, cancelled


async def after_death(conn: AsyncConnection, rows: Iterable[RowMapping]) -> dict[str, str]:
    """The pension payments among ``rows`` whose schedule records a death before their
    period, each with why: the payout worker stops them instead of sending them (the last
    check before money leaves, whatever kept the death from stopping them at the time)."""
    rows = [r for r in rows if r.pension_ref is not None and r.period is not None]
    if not rows:
        return {}
    died = dict((await conn.execute(
        select(pension_schedules.c.pension_ref, pension_schedules.c.died_on).where(
            one_of(conn, pension_schedules.c.pension_ref, sorted({r.pension_ref for r in rows})),
            pension_schedules.c.died_on.is_not(None)))).all())
    return {r.payment_id: f"death on {died[r.pension_ref].isoformat()} recorded on pension "
            f"{r.pension_ref}; period {r.period} is after it"
            for r in rows
            if r.pension_ref in died and r.period > period_of(died[r.pension_ref])}


def certificate_refusal(s: RowMapping, person_id: str | None, certified_on: date,
                        today: date) -> str | None:
    """Why a life certificate must not extend schedule ``s`` (None: it may).

    ``today`` is the Malaysian date. A certificate proves the beneficiary was alive on
    ``certified_on``: a date after today or before the pension began proves nothing about the
    period being paid, and one older than the interval would already have expired. A
    certificate of another person (by national id) is never proof of this beneficiary's life.
    """
    if certified_on > today:
        return f"dated after today ({today} in Malaysia)"
    if certified_on < s.start_on:
        return f"dated before the pension's start on {s.start_on}"
    valid_until = _add_months(certified_on, LIFE_CERTIFICATE_MONTHS)
    if valid_until < today:
        return (f"older than the {LIFE_CERTIFICATE_MONTHS}-month interval (valid until "
                f"{valid_until}, today {today})")
    if person_id is not None and s.beneficiary_id is not None and person_id != s.beneficiary_id:
        return f"the certificate's beneficiary {person_id} is not the pension's"
    return None


async def record_life_certificate(conn: AsyncConnection, partner_id: str, pension_ref: str,
                                  person_id: str | None, certified_on: date,
                                  now: datetime) -> bool:
    """Extend the certificate's validity and resume a schedule suspended for lack of it.

    A certificate ``certificate_refusal`` refuses changes nothing but a
    ``life_certificate_refused`` event with the reason; returns whether it was applied.
    """
    s = await _by_ref(conn, pension_ref, lock=True)
    if s is None or s.partner_id != partner_id:
        log.warning("life certificate from %s for unknown pension ignored", partner_id)
        return False
    refusal = certificate_refusal(s, person_id, certified_on, local_today(now))
    if refusal is not None:
        log.warning("life certificate for pension %s refused: %s", pension_ref, refusal)
        await _write(conn, s, "life_certificate_refused",
                     f"certified on {certified_on.isoformat()}: {refusal}", now)
        return False
    due = _add_months(certified_on, LIFE_CERTIFICATE_MONTHS)
    detail = f"certified on {certified_on.isoformat()}; next due {due}"
    if s.beneficiary_id is None:
        detail += "; the schedule has no national id, the beneficiary was not compared"
    if s.state == "suspended":
        await _set_state(conn, s, "active", "life_certificate_received", detail, now,
                         life_certificate_due_on=due)
    else:
        await _write(conn, s, "life_certificate_received", detail, now,
                     life_certificate_due_on=due)
    return True


async def change_payout(conn: AsyncConnection, s: RowMapping, payout: dict[str, str] | None,
                        cause: str, detail: str, now: datetime) -> None:
    """Change schedule ``s``'s payout account to ``payout`` (None: record ``detail`` only,
    a refused change), as an event naming each changed column.

    Raises:
        EvidenceMismatchError: the schedule was changed beside the hub (nothing written).
    """
    if payout is None:
        await _write(conn, s, cause, detail, now)
        return
    await _write(conn, s, cause, with_changes(detail, s, {**s, **payout}) or detail, now,
                 **payout)


async def get_schedule(conn: AsyncConnection, pension_ref: str) -> dict[str, Any]:
    s = await _by_ref(conn, pension_ref)
    if s is None:
        raise NotFoundError("not_found", f"no pension schedule {pension_ref}")
    events = (await conn.execute(select(pension_events).where(
        pension_events.c.schedule_pk == s.pk).order_by(pension_events.c.pk))).mappings()
    return schedule_view(s, list(events))


def schedule_view(s: RowMapping, events: list[RowMapping] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "pension_ref": s.pension_ref, "state": s.state, "reason": s.reason,
        "partner_id": s.partner_id, "benefit": s.benefit,
        "monthly_amount": Money(s.monthly_minor, s.currency).wire(),
        "start_on": s.start_on.isoformat(),
        "end_on": s.end_on.isoformat() if s.end_on else None, "next_period": s.next_period,
        "life_certificate_due_on": s.life_certificate_due_on.isoformat()
        if s.life_certificate_due_on else None,
        "died_on": s.died_on.isoformat() if s.died_on else None, "rail": s.rail,
        "claim_ref": s.claim_ref,
    }
    if events is not None:
        view["events"] = [{"from": e.from_state, "to": e.to_state, "cause": e.cause,
                           "detail": e.detail, "at": e.at.isoformat()} for e in events]
    return view


async def _by_ref(conn: AsyncConnection, ref: str, lock: bool = False) -> RowMapping | None:
    q = select(pension_schedules).where(pension_schedules.c.pension_ref == ref)
    if lock:
        q = q.with_for_update()
    return (await conn.execute(q)).mappings().first()


async def _set_state(conn: AsyncConnection, s: RowMapping, state: str, cause: str, detail: str,
                     now: datetime, **values: Any) -> None:
    await _write(conn, s, cause, detail, now, state=state, reason=f"{cause}: {detail}",
                 **values)
    log.info("pension %s: %s -> %s (%s)", s.pension_ref, s.state, state, cause)


async def _write(conn: AsyncConnection, s: RowMapping, cause: str, detail: str, now: datetime,
                 **values: Any) -> None:
    """Change schedule ``s`` by ``values`` (none: an event only) and record it as an event
    with the schedule's digest after it: every change of a schedule but its creation.

    Raises:
        EvidenceMismatchError: the schedule was changed beside the hub; nothing is written
            (an event over it would take the changed row's digest as the hub's own).
    """
    await evidence.require_unchanged(conn, [s.pk])
    if values:
        await conn.execute(update(pension_schedules).where(pension_schedules.c.pk == s.pk)
                           .values(**values, updated_at=now))
    await _event(conn, s.pk, s.state, values.get("state", s.state), cause, detail, now)


async def _event(conn: AsyncConnection, pk: int, from_state: str | None, to_state: str,
                 cause: str, detail: str, now: datetime) -> None:
    """Record an event of schedule ``pk`` whose change is already written, with the digest
    of the schedule as this transaction now sees it."""
    sha = (await evidence.digests(conn, [pk]))[pk]
    await conn.execute(insert(pension_events).values(schedule_pk=pk, from_state=from_state,
                                                     to_state=to_state, cause=cause,
                                                     detail=detail, at=now,
                                                     schedule_sha256=sha))


def _nid(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    scheme, _, value = text.partition(":")
    return {"scheme": scheme, "value": value}
