"""Bikram Sambat (BS) dates, as NP-FEB writes them (``2081-08-06``), <-> Gregorian dates.

BS months do not follow a rule: their lengths (29-32 days) are published year by year, so an
exact conversion is a table lookup. The table is ``nepali-datetime``'s (BS 1975..2100) with the
corrections below where Nepal's published calendar says otherwise; this module supports
BS 1975-01-01 .. 2095-12-30 (AD 1918-04-13 .. 2039-04-14), because the table's year 2096 is one
day short of any possible solar year. Dates outside the range are refused, never extrapolated.
Years after the current one are the library's projection, not a published calendar: they may
shift by a day when Nepal publishes them, which a correction here or a library update fixes.

The library is used only inside this module and its errors are translated here, so adapters
see one small API: ``BsDate``, ``parse_bs``/``format_bs``, ``bs_to_ad``/``ad_to_bs``,
``days_in_bs_month`` and the range constants ``BS_MIN``/``BS_MAX``/``AD_MIN``/``AD_MAX``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass
from functools import cache

import nepali_datetime

__all__ = [
    "AD_MAX",
    "AD_MIN",
    "BS_MAX",
    "BS_MIN",
    "BS_MONTH_NAMES",
    "BsDate",
    "ad_to_bs",
    "bs_to_ad",
    "days_in_bs_month",
    "format_bs",
    "parse_bs",
]

BS_MONTH_NAMES: tuple[str, ...] = (
    "Baisakh", "Jestha", "Asar", "Shrawan", "Bhadau", "Aswin",
    "Kartik", "Mangsir", "Poush", "Magh", "Falgun", "Chaitra",
)  # fmt: skip

_BS_MIN_YEAR: int = nepali_datetime.MINYEAR
# The library's table runs to 2100, but its year 2096 has 364 days, which a solar BS year never
# has, so dates from there on are not trustworthy. Refuse them rather than convert wrongly.
_BS_MAX_YEAR: int = min(nepali_datetime.MAXYEAR, 2095)
_BS_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")

# Month lengths where the library's table disagrees with Nepal's published calendar, by
# (BS year, month); none at present. 2083 was checked against the calendar of the Nepal
# Panchanga Nirnayak Vikas Samiti as reported on 2026-02-08 (newsofnepal.com/2026/02/08/752612,
# read 2026-12-02): Dashain runs 11 days from Asoj 25 to Kartik 4, so Asoj has 31 days and
# Kartik 1 is 2026-10-18 (Asoj 1 is 2026-09-17 in every table), as nepali-datetime says. Magh 1
# is 2027-01-15 there too: the Sun enters Makara at 21:25 NPT on 2027-01-14 (Swiss Ephemeris,
# Lahiri), and Magh never began on the day of a Makara ingress after 15:06 in BS 1990-2082.
# An earlier overlay here (Asoj 30, Mangsir 30 days, from a website whose Gregorian dates
# contradict its own month grid) gave 2026-10-17..2026-12-15 the next BS day; it was removed.
_CORRECTIONS: dict[tuple[int, int], int] = {}


@cache
def days_in_bs_month(year: int, month: int) -> int:
    """Return the number of days of a BS month in the supported range."""
    if not _BS_MIN_YEAR <= year <= _BS_MAX_YEAR:
        raise ValueError(
            f"BS year {year} is outside the supported range {_BS_MIN_YEAR}..{_BS_MAX_YEAR}"
        )
    if not 1 <= month <= 12:
        raise ValueError(f"BS month {month} must be 1-12")
    corrected = _CORRECTIONS.get((year, month))
    if corrected is not None:
        return corrected
    # Only the public constructor is used: it knows the table and refuses days past the end.
    for day in range(32, 27, -1):
        try:
            nepali_datetime.date(year, month, day)
        except ValueError:
            continue
        return day
    raise AssertionError(f"no month length for BS {year}-{month:02d}")  # pragma: no cover


@dataclass(frozen=True, order=True, slots=True)
class BsDate:
    """A valid Bikram Sambat calendar date within the supported range."""

    year: int
    month: int
    day: int

    def __post_init__(self) -> None:
        text = f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
        if not _BS_MIN_YEAR <= self.year <= _BS_MAX_YEAR:
            raise ValueError(
                f"BS date {text}: year is outside the supported range "
                f"{_BS_MIN_YEAR}..{_BS_MAX_YEAR}"
            )
        if not 1 <= self.month <= 12:
            raise ValueError(f"BS date {text}: month must be 01-12")
        length = days_in_bs_month(self.year, self.month)
        if not 1 <= self.day <= length:
            raise ValueError(
                f"BS date {text} does not exist: "
                f"{BS_MONTH_NAMES[self.month - 1]} {self.year} has {length} days"
            )

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"


BS_MIN = BsDate(_BS_MIN_YEAR, 1, 1)
BS_MAX = BsDate(_BS_MAX_YEAR, 12, days_in_bs_month(_BS_MAX_YEAR, 12))
# The table's anchor: its first day, as the library dates it (the corrections are all later).
AD_MIN: dt.date = nepali_datetime.date(BS_MIN.year, BS_MIN.month, BS_MIN.day).to_datetime_date()


@cache
def _month_starts() -> tuple[tuple[int, int], ...]:
    """(days from AD_MIN to the month's first day, year * 12 + month - 1) of every month."""
    starts: list[tuple[int, int]] = []
    offset = 0
    for year in range(_BS_MIN_YEAR, _BS_MAX_YEAR + 1):
        for month in range(1, 13):
            starts.append((offset, year * 12 + month - 1))
            offset += days_in_bs_month(year, month)
    starts.append((offset, (_BS_MAX_YEAR + 1) * 12))  # the day after the range
    return tuple(starts)


AD_MAX: dt.date = AD_MIN + dt.timedelta(days=_month_starts()[-1][0] - 1)


def parse_bs(text: str) -> BsDate:
    """Parse a strict ``YYYY-MM-DD`` BS date (ASCII digits, zero-padded) or raise ValueError."""
    match = _BS_TEXT.fullmatch(text)
    if match is None:
        raise ValueError(f"BS date {text!r} must be YYYY-MM-DD with ASCII digits, e.g. 2081-08-06")
    year, month, day = (int(g) for g in match.groups())
    return BsDate(year, month, day)


def format_bs(value: BsDate) -> str:
    """Format a BS date as ``YYYY-MM-DD``."""
    return str(value)


def bs_to_ad(value: BsDate) -> dt.date:
    """Convert a BS date to the Gregorian date of the same day."""
    index = (value.year - _BS_MIN_YEAR) * 12 + value.month - 1
    return AD_MIN + dt.timedelta(days=_month_starts()[index][0] + value.day - 1)


def ad_to_bs(value: dt.date) -> BsDate:
    """Convert a Gregorian date to the BS date of the same day, if in the supported range."""
    if isinstance(value, dt.datetime):
        # A datetime's calendar day depends on its zone; make the caller choose it.
        raise TypeError("ad_to_bs takes a date, not a datetime: convert to Nepal's date first")
    if not AD_MIN <= value <= AD_MAX:
        raise ValueError(
            f"date {value.isoformat()} is outside the supported range "
            f"{AD_MIN.isoformat()}..{AD_MAX.isoformat()} (BS {BS_MIN}..{BS_MAX})"
        )
    days = (value - AD_MIN).days
    starts = _month_starts()
    i = bisect.bisect_right(starts, (days, 1 << 62)) - 1
    start, serial = starts[i]
    return BsDate(serial // 12, serial % 12 + 1, days - start + 1)
