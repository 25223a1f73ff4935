"""The scheduler on a real database's job locks (SQLite and PostgreSQL) with a fake runner:
several instances run each (rail, date) once, a late statement is retried and then runs, the
give-up deadline records a final run, and a stop request ends it between runs; and with the
real reconciliation service, a rail's dates run in date order so that each is checked against
the run of the date before it."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.composition import Hub, reconciler_for
from gateway.errors import TransientDeliveryError
from gateway.reconciliation.schedule import RailSchedule, RetryPlan
from gateway.reconciliation.scheduler import Outcome, Scheduler
from gateway.reconciliation.service import ReconciliationService
from gateway.storage.engine import create_engine
from gateway.storage.job_locks import job_locks_for
from gateway.storage.uow import factory_for
from tests.support.recon import ScriptedRail, record, statement

pytestmark = pytest.mark.anyio

RAIL = "merchantrade"
SCHEDULES = {RAIL: RailSchedule(RAIL, time(23, 30), "daily")}
RETRY = RetryPlan(initial=timedelta(minutes=5), ceiling=timedelta(hours=1),
                  give_up_after=timedelta(hours=24))
# A give-up 30 hours after the cut-off: a date's statement can still be late when the next
# date is due (with 24 hours, the one's deadline is the other's cut-off).
SLOW = RetryPlan(initial=timedelta(minutes=5), ceiling=timedelta(hours=1),
                 give_up_after=timedelta(hours=30))
D1, D2, D3 = date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)
BEFORE = (date(2026, 11, 29), date(2026, 11, 30))  # reconciled before the tests' dates
# 3 December 23:40 in Kuala Lumpur: the three days' cut-offs have passed.
AFTER_D3 = datetime(2026, 12, 3, 15, 40, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeReconciler:
    """Records runs in memory (the recorded runs are shared by every scheduler given it);
    ``late`` answers "no statement yet" that many times per date (of ``late_rails`` only, if
    given); ``gate`` holds a run of a date until it is set."""

    def __init__(self, late: int = 0, *, recorded: tuple[date, ...] = (),
                 late_rails: frozenset[str] | None = None) -> None:
        self.late = late
        self.late_rails = late_rails
        self.recorded: dict[tuple[str, date], str] = {(RAIL, d): "balanced" for d in recorded}
        self.calls: list[tuple[str, date, bool]] = []
        self.gates: dict[date, asyncio.Event] = {}
        self.running: set[date] = set()
        self.completed: list[tuple[str, date]] = []

    async def done(self, rail: str, day: date) -> bool:
        return (rail, day) in self.recorded

    async def run(self, rail: str, day: date, *, final: bool = False) -> str:
        self.calls.append((rail, day, final))
        self.running.add(day)
        try:
            if day in self.gates:
                await asyncio.wait_for(self.gates[day].wait(), 10)
            if not final and (self.late_rails is None or rail in self.late_rails) \
                    and sum(1 for c in self.calls if c[:2] == (rail, day)) <= self.late:
                raise TransientDeliveryError("statement not available yet")
            verdict = "incomplete" if final else "balanced"
            self.recorded[(rail, day)] = verdict
            self.completed.append((rail, day))
            return verdict
        finally:
            self.running.discard(day)

    def runs(self) -> Counter[tuple[str, date]]:
        return Counter(self.completed)


@pytest.fixture
async def engines(db_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one database: two scheduler instances, as two processes would be."""
    a, b = create_engine(db_url), create_engine(db_url)
    yield a, b
    await a.dispose()
    await b.dispose()


def scheduler(engine: AsyncEngine, fake: FakeReconciler, clock: Clock) -> Scheduler:
    locks = job_locks_for(engine, factory_for(engine), "reconcile")
    return Scheduler(fake, SCHEDULES, locks, retry=RETRY, lookback_days=2, clock=clock)


def on_d1(outcomes: list[Outcome]) -> list[str]:
    return [o.result for o in outcomes if o.day == D1]


async def _until(condition: object, what: str) -> None:
    for _ in range(500):  # bounded: 5 s
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_two_instances_at_once_run_each_rail_and_date_exactly_once(
        engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    fake = FakeReconciler()
    fake.gates[D1] = asyncio.Event()
    clock = Clock(AFTER_D3)
    a, b = scheduler(engines[0], fake, clock), scheduler(engines[1], fake, clock)
    first = asyncio.create_task(a.tick())
    await _until(lambda: D1 in fake.running, "instance A to be running 1 December")
    # B finds 1 December locked by A, and holds the later dates: they run in date order.
    second = await asyncio.wait_for(b.tick(), 10)
    assert [(o.day, o.result) for o in second] == [(D1, "busy"), (D2, "held"), (D3, "held")]
    fake.gates[D1].set()
    outcomes = [*second, *await asyncio.wait_for(first, 10)]
    # And a second round of both changes nothing.
    outcomes += [*await a.tick(), *await b.tick()]
    assert fake.runs() == Counter({(RAIL, D1): 1, (RAIL, D2): 1, (RAIL, D3): 1})
    assert sorted(o.day for o in outcomes if o.result == "run") == [D1, D2, D3]
    assert [c[1] for c in fake.calls] == [D1, D2, D3]  # A ran them all, in date order


async def test_a_held_lock_is_released_after_the_run(
        engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    locks = job_locks_for(engines[0], factory_for(engines[0]), "reconcile")
    other = job_locks_for(engines[1], factory_for(engines[1]), "reconcile")
    async with locks.hold("reconcile:r:2026-12-01") as got:
        assert got
        async with other.hold("reconcile:r:2026-12-01") as got_too:
            assert not got_too
    async with other.hold("reconcile:r:2026-12-01") as got_after:
        assert got_after


async def test_a_late_statement_is_retried_with_backoff_then_runs(
        engines: tuple[AsyncEngine, AsyncEngine], caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeReconciler(late=2, recorded=BEFORE)
    due = SCHEDULES[RAIL].due_at(D1)
    clock = Clock(due + timedelta(seconds=1))
    sched = Scheduler(fake, SCHEDULES, job_locks_for(engines[0], factory_for(engines[0]),
                                                     "reconcile"),
                      retry=RETRY, lookback_days=2, clock=clock)
    caplog.set_level(logging.INFO, "gateway.reconciliation")
    assert on_d1(await sched.tick()) == ["late"]
    clock.now = due + timedelta(minutes=4)
    assert on_d1(await sched.tick()) == []  # the first wait (5 min) has not passed
    clock.now = due + timedelta(minutes=5, seconds=1)
    assert on_d1(await sched.tick()) == ["late"]
    clock.now = due + timedelta(minutes=14)
    assert on_d1(await sched.tick()) == []  # then 10 min
    clock.now = due + timedelta(minutes=15, seconds=2)
    (ran,) = [o for o in await sched.tick() if o.day == D1]
    assert (ran.result, ran.verdict, ran.final) == ("run", "balanced", False)
    assert fake.calls == [(RAIL, D1, False)] * 3
    assert on_d1(await sched.tick()) == []
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.reconciliation.scheduler"]
    assert sum("statement not available yet" in m for m in lines) == 2
    assert [m for m in lines if "verdict=" in m] == [
        f"reconciliation rail={RAIL} date={D1} verdict=balanced"]


async def test_past_the_deadline_a_final_run_records_the_statement_missing(
        engines: tuple[AsyncEngine, AsyncEngine], caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeReconciler(late=10_000, recorded=BEFORE)  # the statement never comes
    due = SCHEDULES[RAIL].due_at(D1)
    clock = Clock(due)
    sched = scheduler(engines[0], fake, clock)
    caplog.set_level(logging.INFO, "gateway.reconciliation")
    for _ in range(200):  # bounded: the deadline is a day of hourly waits away
        step = next(s for s in sched.due() if s.day == D1)
        clock.now = max(clock.now, step.at)
        outcomes = [o for o in await sched.tick() if o.day == D1]
        if outcomes and outcomes[0].final:
            break
    assert outcomes[0].result == "run" and outcomes[0].verdict == "incomplete"
    assert clock.now == RETRY.deadline(due)
    calls = [c for c in fake.calls if c[1] == D1]
    assert calls[-1] == (RAIL, D1, True)
    assert [c[2] for c in calls].count(True) == 1
    assert 20 < len(calls) < 40  # 5, 10, 20, 40 min, then hourly for a day
    assert fake.recorded[(RAIL, D1)] == "incomplete"
    assert all(o.day != D1 for o in await sched.tick())
    assert any(f"date={D1} verdict=incomplete (final" in r.getMessage()
               for r in caplog.records)


async def test_a_runner_failure_is_logged_and_backed_off_not_fatal(
        engines: tuple[AsyncEngine, AsyncEngine], caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeReconciler):
        async def run(self, rail: str, day: date, *, final: bool = False) -> str:
            self.calls.append((rail, day, final))
            raise RuntimeError("boom")

    fake = Broken(recorded=BEFORE)
    due = SCHEDULES[RAIL].due_at(D1)
    clock = Clock(due)
    sched = scheduler(engines[0], fake, clock)
    assert on_d1(await sched.tick()) == ["failed"]
    assert on_d1(await sched.tick()) == []  # backed off, not retried every tick
    assert any("failed (attempt 1): RuntimeError: boom" in r.getMessage()
               for r in caplog.records)


async def test_a_stop_request_ends_the_scheduler_between_runs(
        engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    fake = FakeReconciler(recorded=BEFORE)
    fake.gates[D1] = asyncio.Event()
    stop = asyncio.Event()
    sched = scheduler(engines[0], fake, Clock(AFTER_D3))
    loop = asyncio.create_task(sched.run_forever(stop, every=30))
    await _until(lambda: D1 in fake.running, "the first run")
    stop.set()  # as SIGTERM does, in the middle of a run
    fake.gates[D1].set()
    await asyncio.wait_for(loop, 10)
    assert set(fake.recorded) - {(RAIL, d) for d in BEFORE} == {(RAIL, D1)}  # and no other


async def test_a_rail_late_on_a_date_holds_only_its_own_later_dates(
        engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    other = "iso20022"
    schedules = {**SCHEDULES, other: RailSchedule(other, time(23, 30), "daily")}
    fake = FakeReconciler(late=1, recorded=BEFORE, late_rails=frozenset({RAIL}))
    fake.recorded.update({(other, d): "balanced" for d in BEFORE})
    clock = Clock(SCHEDULES[RAIL].due_at(D2) + timedelta(minutes=1))
    sched = Scheduler(fake, schedules, job_locks_for(engines[0], factory_for(engines[0]),
                                                     "reconcile"),
                      retry=SLOW, lookback_days=2, clock=clock)
    outcomes = {(o.rail, o.day): o.result for o in await sched.tick() if o.day >= D1}
    assert outcomes == {(RAIL, D1): "late", (RAIL, D2): "held",
                        (other, D1): "run", (other, D2): "run"}
    # 1 December runs, which releases 2 December in the same tick (late once too, as every
    # date of this rail is here).
    clock.now += timedelta(minutes=5)
    outcomes = {(o.rail, o.day): o.result for o in await sched.tick()}
    assert outcomes == {(RAIL, D1): "run", (RAIL, D2): "late"}
    assert [c[1] for c in fake.calls if c[0] == RAIL] == [D1, D1, D2]


# -- with the reconciliation service: each date is checked against the run of the date before

FAKE = "fake"  # the scripted rail of the reconciliation conftest
NOV30 = date(2026, 11, 30)


def _statement(day: date, sequence: int) -> bytes:
    return statement([record(sequence=sequence, day=day.isoformat())])


def _scheduler(hub: Hub, clock: Clock, retry: RetryPlan = SLOW) -> Scheduler:
    return Scheduler(reconciler_for(hub), {FAKE: RailSchedule(FAKE, time(23, 30), "daily")},
                     job_locks_for(hub.engine, hub.uow, "reconcile"), retry=retry,
                     lookback_days=2, clock=clock)


async def _runs(recon: ReconciliationService) -> dict[date, dict[str, object]]:
    """The current run of each business date: its verdict and problems."""
    out: dict[date, dict[str, object]] = {}
    for day in (NOV30, D1, D2):
        page = (await recon.runs(FAKE, day, None, 10))["runs"]
        if page:
            detail = await recon.run_detail(page[0]["run_id"])
            out[day] = {"verdict": detail["verdict"],
                        "problems": detail["summary"]["problems"]}
    return out


async def test_a_date_waits_for_the_late_date_before_it_and_its_sequence_then_follows(
        hub: Hub, recon: ReconciliationService, scripted: ScriptedRail,
        caplog: pytest.LogCaptureFixture) -> None:
    # 30 November is reconciled (its statement's sequence number 41); 1 December's statement
    # (42) is late; 2 December's (43) is there at its cut-off.
    await recon.run(FAKE, NOV30, _statement(NOV30, 41))
    scripted.served[D2] = _statement(D2, 43)
    clock = Clock(SCHEDULES[RAIL].due_at(D2) + timedelta(minutes=1))
    caplog.set_level(logging.INFO, "gateway.reconciliation")
    sched = _scheduler(hub, clock)
    assert [(o.day, o.result) for o in await sched.tick()] == [
        (NOV30, "done"), (D1, "late"), (D2, "held")]
    # Run before 1 December, 2 December would be checked against 30 November (a gap) and
    # recorded incomplete, moving nothing.
    assert set(await _runs(recon)) == {NOV30}
    clock.now += timedelta(minutes=2)
    assert [(o.day, o.result) for o in await sched.tick()] == [(D2, "held")]
    held = [r.getMessage() for r in caplog.records
            if r.name == "gateway.reconciliation.scheduler" and "held" in r.getMessage()]
    assert held == [f"reconciliation rail={FAKE} date={D2} held: waits for the run of {D1} "
                    "(a rail's dates run in date order)"]  # once, not every tick
    # The statement arrives and the scheduler restarts (nothing in memory): it runs 1
    # December and then, in the same tick, 2 December.
    scripted.served[D1] = _statement(D1, 42)
    clock.now += timedelta(minutes=5)
    outcomes = await _scheduler(hub, clock).tick()
    assert [(o.day, o.result, o.verdict) for o in outcomes] == [
        (NOV30, "done", None), (D1, "run", "balanced"), (D2, "run", "balanced")]
    runs = await _runs(recon)
    assert runs[D2] == {"verdict": "balanced", "problems": []}


async def test_after_the_give_up_of_a_date_the_next_runs_and_reports_the_gap_it_leaves(
        hub: Hub, recon: ReconciliationService, scripted: ScriptedRail) -> None:
    # 2 December is due 6 hours before 1 December's final run, and is held until it is
    # recorded.
    retry = SLOW
    await recon.run(FAKE, NOV30, _statement(NOV30, 41))
    scripted.served[D2] = _statement(D2, 43)
    deadline = retry.deadline(SCHEDULES[RAIL].due_at(D1))
    clock = Clock(SCHEDULES[RAIL].due_at(D2))
    sched = _scheduler(hub, clock, retry)
    for _ in range(20):  # bounded: six hours of hourly waits
        outcomes = {o.day: o for o in await sched.tick()}
        if D1 in outcomes and outcomes[D1].final:
            break
        assert outcomes.get(D2) in (None, Outcome(FAKE, D2, "held"))
        assert set(await _runs(recon)) == {NOV30}
        clock.now = max(clock.now, *(s.at for s in sched.due() if s.day == D1))
    assert clock.now == deadline
    assert (outcomes[D1].result, outcomes[D1].verdict) == ("run", "incomplete")
    # Released by the give-up in the same tick, 2 December runs against the last statement
    # there is (30 November's): the numbers of the missing one are a gap, and it says so.
    assert (outcomes[D2].result, outcomes[D2].verdict, outcomes[D2].final) == (
        "run", "incomplete", False)
    runs = await _runs(recon)
    assert "account ACC-1: sequence 43 does not follow 41" in runs[D2]["problems"]  # type: ignore[operator]
    assert "no statement: scripted statement 2026-12-01: not available yet" in runs[D1]["problems"]  # type: ignore[operator]


def test_an_in_memory_database_has_no_job_locks() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    with pytest.raises(ValueError, match="in-memory"):
        job_locks_for(engine, factory_for(engine), "reconcile")
