"""Malaysian business days for settlement windows (T+N) and case due dates.

Holidays come from the ``holidays`` package (the Open World Holidays Framework,
https://github.com/vacanza/holidays: Malaysia's federal and state public holidays, including
the observed-day rules and the lunar holidays computed from its tables), for one state or
federal territory (``holiday_subdivision`` in the rails file; default ``KUL``, Kuala Lumpur,
where the payout accounts are held). A working day is the package's own ``is_working_day``:
it also knows each state's weekend and when it changed (Kedah, Kelantan and Terengganu rest on
Friday and Saturday; Johor did from 2014 to 2024).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

__all__ = ["KL", "BusinessCalendar", "calendar_for"]

KL = ZoneInfo("Asia/Kuala_Lumpur")


class BusinessCalendar:
    """Business days of one Malaysian state (weekends and public holidays excluded)."""

    def __init__(self, subdivision: str = "KUL") -> None:
        try:
            self._holidays = holidays.country_holidays("MY", subdiv=subdivision)
        except NotImplementedError:
            raise ValueError(f"holiday_subdivision: {subdivision!r} is not a Malaysian state "
                             "code (KUL, SGR, PNG, JHR...)") from None
        self.subdivision = subdivision
        # The holidays library answers in microseconds, asked once per payment by a run of a
        # million lines; a day's answer never changes, and a run asks about a handful of days.
        self._working: dict[date, bool] = {}

    def __eq__(self, other: object) -> bool:
        # Two calendars of one state are the same calendar (schedules compare by value).
        return isinstance(other, BusinessCalendar) and other.subdivision == self.subdivision

    def __hash__(self) -> int:
        return hash(self.subdivision)

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.subdivision!r})"

    def is_business_day(self, day: date) -> bool:
        """Is ``day`` neither a weekend day nor a public holiday of the state?"""
        known = self._working.get(day)
        if known is None:
            known = self._working[day] = bool(self._holidays.is_working_day(day))
        return known

    def next_business_day(self, day: date) -> date:
        """The first business day after ``day``."""
        day += timedelta(days=1)
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def add_business_days(self, day: date, n: int) -> date:
        """The ``n``-th business day after ``day`` (``day`` itself for 0)."""
        for _ in range(n):
            day = self.next_business_day(day)
        return day

    def business_days_between(self, start: date, end: date) -> int:
        """Business days after ``start`` up to and including ``end`` (0 if end <= start)."""
        n, day = 0, start
        while day < end:
            day += timedelta(days=1)
            if self.is_business_day(day):
                n += 1
        return n

    def settlement_day(self, moment: datetime, cutoff: time) -> date:
        """The business day a payout paid at ``moment`` counts from: its date in Kuala
        Lumpur, or the next business day if it was paid after the cut-off or on a day off."""
        local = moment.astimezone(KL)
        day = local.date()
        if local.time() >= cutoff or not self.is_business_day(day):
            return self.next_business_day(day)
        return day


@lru_cache(maxsize=32)
def calendar_for(subdivision: str) -> BusinessCalendar:
    """The (cached) calendar of a state.

    Raises:
        ValueError: not a Malaysian state code.
    """
    return BusinessCalendar(subdivision)
