"""Malaysian business days for settlement windows (T+N) and case due dates.

Holidays come from the ``holidays`` package (the Open World Holidays Framework,
https://github.com/vacanza/holidays: Malaysia's federal and state public holidays, including
the observed-day rules and the lunar holidays computed from its tables), for one state or
federal territory (``holiday_subdivision`` in the rails file; default ``KUL``, Kuala Lumpur,
where the payout accounts are held). The package gives every state a Saturday-Sunday weekend;
Kedah, Kelantan and Terengganu rest on Friday and Saturday (their state governments' gazettes),
which ``_FRI_SAT`` sets here.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

__all__ = ["KL", "BusinessCalendar", "calendar_for"]

KL = ZoneInfo("Asia/Kuala_Lumpur")
_FRI_SAT = frozenset({"KDH", "KTN", "TRG", "02", "03", "11"})


class BusinessCalendar:
    """Business days of one Malaysian state (weekends and public holidays excluded)."""

    def __init__(self, subdivision: str = "KUL") -> None:
        try:
            self._holidays = holidays.country_holidays("MY", subdiv=subdivision)
        except NotImplementedError:
            raise ValueError(f"holiday_subdivision: {subdivision!r} is not a Malaysian state "
                             "code (KUL, SGR, PNG, JHR...)") from None
        self.subdivision = subdivision
        self._weekend = frozenset({4, 5}) if subdivision in _FRI_SAT else frozenset({5, 6})

    def is_business_day(self, day: date) -> bool:
        """Is ``day`` neither a weekend day nor a public holiday of the state?"""
        return day.weekday() not in self._weekend and day not in self._holidays

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
