"""Issue 13, Nepal: every month start of every BS year NP-FEB may send, against two tables
independent of nepali-datetime (the library the adapter's table starts from), and the dates
Nepal published for 2083.

- ``nepali`` 1.2.0 (opensource-nepal), its own month table, BS 2000-2099;
- ``bsdatetime`` 1.0.1 (Rajendra Katuwal, MIT), ``data/calendar_bs.csv``, BS 1975-2100.

Where the tables disagree the disagreement is listed here exactly, so a release of the library
that moves any month start (as 1.0.8.1-1.0.8.4 did in 2081-2083) fails this test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from importlib import metadata, resources

from nepali.date_converter import converter as nepali_converter

from adapters.partners.common.bikram_sambat import (
    AD_MAX,
    AD_MIN,
    BS_MAX,
    BS_MIN,
    BsDate,
    ad_to_bs,
    bs_to_ad,
)

# Months whose first day differs between tables: (year, month) -> (ours, other).
# 2062 Jestha: nepali alone says 2005-05-14; nepali-datetime and bsdatetime say 05-15.
DISAGREES_WITH_NEPALI = {
    (2062, 2): ("2005-05-15", "2005-05-14"),
}
# 2083 Kartik, Mangsir and Magh: bsdatetime starts each a day before the dates Nepal published
# (test_2083_follows_the_published_calendar) and the Sun's ingress gives.
DISAGREES_WITH_BSDATETIME = {
    (2083, 7): ("2026-10-18", "2026-10-17"),
    (2083, 8): ("2026-11-17", "2026-11-16"),
    (2083, 10): ("2027-01-15", "2027-01-14"),
}


def test_2083_follows_the_published_calendar() -> None:
    # The Nepal Panchanga Nirnayak Vikas Samiti's 2083 calendar (newsofnepal.com, 2026-02-08):
    # Ghatasthapana Asoj 25, Ashtami on Kartik 1 and 2, Vijaya Dashami Kartik 4, 11 days of
    # Dashain. Shukla Pratipada is at sunrise on 2026-10-11 and the Ashtami tithi runs from
    # 08:45 on 10-18 to 11:15 on 10-19 (NPT), so Asoj 25 is 10-11 and Kartik 1 is 10-18.
    assert bs_to_ad(BsDate(2083, 6, 25)) == dt.date(2026, 10, 11)
    assert bs_to_ad(BsDate(2083, 7, 1)) == dt.date(2026, 10, 18)
    assert bs_to_ad(BsDate(2083, 7, 4)) == dt.date(2026, 10, 21)
    assert (bs_to_ad(BsDate(2083, 7, 4)) - bs_to_ad(BsDate(2083, 6, 25))).days + 1 == 11
    assert ad_to_bs(dt.date(2026, 10, 17)) == BsDate(2083, 6, 31)
    # Magh 1 (Maghe Sankranti): the Sun enters Makara at 21:25 NPT on 2027-01-14; Magh has
    # started on the next day after every evening ingress since BS 1990.
    assert bs_to_ad(BsDate(2083, 10, 1)) == dt.date(2027, 1, 15)
    assert ad_to_bs(dt.date(2027, 1, 14)) == BsDate(2083, 9, 30)


def test_every_day_in_range_converts_both_ways() -> None:
    day = AD_MIN
    while day <= AD_MAX:
        assert bs_to_ad(ad_to_bs(day)) == day
        day += dt.timedelta(days=1)


def _month_starts() -> dict[tuple[int, int], dt.date]:
    return {(y, m): bs_to_ad(BsDate(y, m, 1))
            for y in range(BS_MIN.year, BS_MAX.year + 1) for m in range(1, 13)}


def test_the_calendar_library_is_at_least_the_verified_release() -> None:
    version = tuple(int(p) for p in metadata.version("nepali-datetime").split("."))
    assert version >= (1, 0, 8, 5)


def test_accepted_years_are_1975_to_2095() -> None:
    assert (BS_MIN.year, BS_MAX.year) == (1975, 2095)


def test_month_starts_agree_with_nepali_for_every_year_it_covers() -> None:
    ours = _month_starts()
    theirs = {(y, m): dt.date(*nepali_converter.nepali_to_english(y, m, 1))
              for y in range(2000, BS_MAX.year + 1) for m in range(1, 13)}
    differ = {k: (str(ours[k]), str(v)) for k, v in theirs.items() if ours[k] != v}
    # After 2083 both are projections, not published calendars: compared up to the present.
    assert {k: v for k, v in differ.items() if k[0] <= 2083} == DISAGREES_WITH_NEPALI


def test_month_starts_agree_with_bsdatetime_for_every_accepted_year() -> None:
    text = resources.files("bsdatetime").joinpath("data", "calendar_bs.csv").read_text("utf-8")
    rows = {int(r["Year"]): [int(v) for k, v in r.items() if k != "Year"]
            for r in csv.DictReader(io.StringIO(text))}
    theirs: dict[tuple[int, int], dt.date] = {}
    start = bs_to_ad(BsDate(1975, 1, 1))
    assert start == dt.date(1918, 4, 13)
    for year in range(1975, BS_MAX.year + 1):
        for month, days in enumerate(rows[year], start=1):
            theirs[(year, month)] = start
            start += dt.timedelta(days=days)
    ours = _month_starts()
    differ = {k: (str(ours[k]), str(v)) for k, v in theirs.items() if ours[k] != v}
    assert differ == DISAGREES_WITH_BSDATETIME
