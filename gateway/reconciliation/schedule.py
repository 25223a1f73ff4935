"""When each rail's statement is reconciled: cut-offs, due dates, catch-up and late statements.

Plain Python over a clock, with no I/O; ``gateway.reconciliation.scheduler`` runs it.

The statement of business date D is due once D's cut-off has passed (the rail's ``cutoff``,
``HH:MM`` in ``Asia/Kuala_Lumpur``, whatever the server's zone). A rail with
``statement_days = "business"`` issues none for weekends and Malaysian public holidays (of its
``holiday_subdivision``, whose weekend may be Friday-Saturday); ``"daily"`` rails issue one for
every calendar day. Every due date within the lookback that has no recorded run is due, oldest
first, so the days a stopped scheduler missed are caught up when it comes back.

A rail's dates run in date order: a run checks each statement's sequence numbers against the
run of the latest earlier date, so a date run before the late one ahead of it would be checked
against the wrong statement, find a gap and move nothing. While an earlier date of the same
rail within the lookback has no recorded run, a later one is held; the earlier one's run, or
its give-up, releases it. The first date of the lookback waits for nothing (the scheduler
never runs a date before it), so the oldest date without a run is never held and the dates
always move on. Rails never hold each other.

A late statement (the runner raises ``TransientDeliveryError``) is asked for again with
exponential backoff up to a ceiling; at the give-up deadline (cut-off + ``give_up_after``) the
runner is called once more with ``final=True`` and records the run as incomplete if the
statement is still missing::

    day D ......... cut-off(D)  try  wait  try  wait×2 ... ceiling ...  deadline: final run
                       due ────────────────────────────────────────────────▶ incomplete

The lookback must be longer than the give-up deadline, or a date could leave the window before
its final run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Protocol, get_args
from zoneinfo import ZoneInfo

from tenacity import RetryCallState, wait_exponential

from gateway.config import read_toml
from gateway.errors import ConfigError
from gateway.reconciliation.calendar import BusinessCalendar, calendar_for

__all__ = [
    "DEFAULT_CUTOFF", "DEFAULT_SUBDIVISION", "KL", "SCHEDULE_KEYS", "Action", "Attempts",
    "BusinessCalendar", "RailSchedule", "Reconciler", "RetryPlan", "Step", "load_schedules",
    "plan",
]

KL = ZoneInfo("Asia/Kuala_Lumpur")
DEFAULT_CUTOFF = time(23, 30)
# PERKESO's head office is in Kuala Lumpur: its federal-territory holidays are the default.
DEFAULT_SUBDIVISION = "KUL"
# The keys of a rails file's [rails.NAME] table that this module reads.
SCHEDULE_KEYS = ("cutoff", "statement_days", "holiday_subdivision")

StatementDays = Literal["daily", "business"]
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class Reconciler(Protocol):
    """The reconciliation engine as the scheduler sees it (wired in ``gateway.composition``).

    Both methods must be safe when several processes call them for the same rail and date.
    """

    async def run(self, rail: str, day: date, *, final: bool = False) -> str:
        """Reconcile ``rail``'s statement of ``day``, record the run and return its verdict.

        Args:
            rail: the rail's name in the rails file.
            day: the business date (Malaysian) whose statement is reconciled.
            final: the give-up deadline has passed: if the statement is still not available,
                record the run as ``incomplete`` (statement missing) instead of raising, so
                that ``done`` is true afterwards.

        Returns:
            The verdict: ``balanced``, ``discrepancies`` or ``incomplete``.

        Raises:
            TransientDeliveryError: the rail has no statement for ``day`` yet (only when not
                ``final``); nothing was recorded.
        """
        ...

    async def done(self, rail: str, day: date) -> bool:
        """Whether a run of ``rail`` and ``day`` is recorded (any verdict, final or not)."""
        ...


@dataclass(frozen=True, slots=True)
class RailSchedule:
    """One rail's statement calendar."""

    rail: str
    cutoff: time = DEFAULT_CUTOFF
    statement_days: StatementDays = "daily"
    calendar: BusinessCalendar = field(default_factory=lambda: calendar_for(DEFAULT_SUBDIVISION))

    def due_at(self, day: date) -> datetime:
        """The moment (UTC) the statement of ``day`` becomes due: ``day``'s cut-off in KL."""
        return datetime.combine(day, self.cutoff, KL).astimezone(UTC)

    def has_statement(self, day: date) -> bool:
        return self.statement_days == "daily" or self.calendar.is_business_day(day)

    def due_days(self, now: datetime, lookback_days: int) -> list[date]:
        """The dates whose statement is due at ``now``, oldest first: today (in KL) and the
        ``lookback_days`` before it, those the rail issues a statement for and whose cut-off
        has passed."""
        today = now.astimezone(KL).date()
        days = (today - timedelta(days=n) for n in range(lookback_days, -1, -1))
        return [d for d in days if self.has_statement(d) and self.due_at(d) <= now]


@dataclass(frozen=True, slots=True)
class Attempts:
    """The attempts a scheduler made at one (rail, date) that found no statement."""

    count: int = 0
    last_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """Backoff for a late statement: ``initial``, doubling up to ``ceiling``, until
    ``give_up_after`` past the cut-off."""

    initial: timedelta = timedelta(minutes=5)
    ceiling: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.initial <= self.ceiling:
            raise ValueError("the first retry wait must be > 0 and at most the ceiling")
        if self.give_up_after < timedelta(0):
            raise ValueError("the give-up deadline must not be before the cut-off")

    def wait(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1-based)."""
        # tenacity's wait functions read only the attempt number of their state.
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = max(1, attempts)
        wait = wait_exponential(multiplier=self.initial.total_seconds(),
                                max=self.ceiling.total_seconds())
        return timedelta(seconds=wait(state))

    def deadline(self, due_at: datetime) -> datetime:
        return due_at + self.give_up_after

    def next_attempt(self, due_at: datetime, attempts: Attempts) -> datetime:
        """When the next attempt is due: at once the first time, then after the backoff, but
        never later than the deadline (where the final run is)."""
        if attempts.count == 0 or attempts.last_at is None:
            return due_at
        after = attempts.last_at + self.wait(attempts.count)
        deadline = self.deadline(due_at)
        # The final run comes at the deadline; a final run that failed backs off as any other.
        return min(after, deadline) if attempts.last_at < deadline else after


class Action(Enum):
    RUN = "run"  # reconcile; a missing statement is retried later
    FINAL = "final"  # the deadline has passed: reconcile, or record the statement missing
    WAIT = "wait"  # not yet: the next attempt is at Step.at
    HELD = "held"  # an earlier date of the rail (Step.waits_for) has no recorded run yet


@dataclass(frozen=True, slots=True)
class Step:
    rail: str
    day: date
    action: Action
    at: datetime  # when the action is (or was) due; for HELD, as if nothing held it
    waits_for: date | None = None  # HELD: the nearest earlier date of the rail without a run


def plan(now: datetime, schedules: Mapping[str, RailSchedule], retry: RetryPlan,
         lookback_days: int, attempts: Mapping[tuple[str, date], Attempts],
         done: frozenset[tuple[str, date]] | set[tuple[str, date]]) -> list[Step]:
    """What to do at ``now`` for every due (rail, date) not ``done``: oldest date first, then
    by rail name; a date is HELD while an earlier date of its rail is not ``done``."""
    steps: list[Step] = []
    for name in sorted(schedules):
        schedule = schedules[name]
        pending: date | None = None  # the latest date so far of this rail without a run
        for day in schedule.due_days(now, lookback_days):
            if (name, day) in done:
                continue
            due = schedule.due_at(day)
            at = retry.next_attempt(due, attempts.get((name, day), Attempts()))
            if pending is not None:
                # Its deadline may pass while held: released, it then gets its final run at
                # once, as a date the scheduler was down for would.
                action = Action.HELD
            elif now < at:
                action = Action.WAIT
            elif now >= retry.deadline(due):
                action = Action.FINAL
            else:
                action = Action.RUN
            steps.append(Step(name, day, action, at, pending))
            pending = day
    steps.sort(key=lambda s: (s.day, s.rail))
    return steps


def _cutoff(value: Any) -> time:
    if not isinstance(value, str) or not (m := _HHMM.fullmatch(value)):
        raise ValueError(f"cutoff: {value!r} is not a time HH:MM (24-hour, Asia/Kuala_Lumpur)")
    return time(int(m.group(1)), int(m.group(2)))


def schedule_of(rail: str, section: Mapping[str, Any]) -> RailSchedule:
    """Read the schedule keys of one ``[rails.NAME]`` table (others are ignored).

    Raises:
        ValueError: ``key: what is wrong``.
    """
    days = section.get("statement_days", "daily")
    if days not in get_args(StatementDays):
        raise ValueError(f"statement_days: {days!r} is not one of daily, business")
    subdivision = section.get("holiday_subdivision", DEFAULT_SUBDIVISION)
    if not isinstance(subdivision, str):
        raise ValueError(f"holiday_subdivision: {subdivision!r} is not a state code")
    return RailSchedule(rail, _cutoff(section.get("cutoff", "23:30")), days,
                        calendar_for(subdivision))


def load_schedules(path: Path | None) -> dict[str, RailSchedule]:
    """Every rail's schedule from the rails file (``GATEWAY_RAILS_FILE``); none without one.

    Raises:
        ConfigError: the file cannot be read, or a rail's schedule key is invalid.
    """
    if path is None:
        return {}
    out: dict[str, RailSchedule] = {}
    for name, section in read_toml(path, "GATEWAY_RAILS_FILE").get("rails", {}).items():
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: rails.{name} must be a table")
        try:
            out[name] = schedule_of(name, section)
        except ValueError as exc:
            raise ConfigError(f"{path}: rails.{name}.{exc}") from None
    return out
