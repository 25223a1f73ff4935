"""A pension's part periods: days covered over days in the month, integer sen, half up."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.payments.pensions import prorate


@pytest.mark.parametrize(("period", "start", "end", "expected"), [
    ("2026-08", date(2026, 8, 1), None, (55000, date(2026, 8, 1), date(2026, 8, 31), 31)),
    ("2026-08", date(2026, 8, 15), None, (30161, date(2026, 8, 15), date(2026, 8, 31), 31)),
    ("2028-02", date(2028, 2, 15), None, (28448, date(2028, 2, 15), date(2028, 2, 29), 29)),
    ("2027-02", date(2027, 2, 15), None, (27500, date(2027, 2, 15), date(2027, 2, 28), 28)),
    ("2026-10", date(2026, 1, 1), date(2026, 10, 10),
     (17742, date(2026, 10, 1), date(2026, 10, 10), 31)),
    ("2026-09", date(2026, 9, 10), date(2026, 9, 10),
     (1833, date(2026, 9, 10), date(2026, 9, 10), 30)),  # one day: 55000/30 = 1833.3
])
def test_prorate(period: str, start: date, end: date | None,
                 expected: tuple[int, date, date, int]) -> None:
    assert prorate(55000, period, start, end) == expected


def test_half_a_sen_goes_up_and_less_goes_down() -> None:
    assert prorate(101, "2026-09", date(2026, 9, 16), None)[0] == 51  # 50.5
    assert prorate(1, "2026-09", date(2026, 9, 16), None)[0] == 1  # 0.5
    assert prorate(1, "2026-09", date(2026, 9, 17), None)[0] == 0  # 0.47
