"""Statement amounts: the Decimal-free common case and the general path agree on every input."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.rails._money import StatementMoney, statement_money
from gateway.money import Money


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("100.00", "MYR", 10000),
        (" 1. ", "MYR", 100),  # Decimal reads "1." as 1
        ("0001.50", "MYR", 150),
        ("1.5000000", "MYR", 150),  # trailing zeros below the minor unit are exact
        ("7", "JPY", 7),
        ("1.234", "KWD", 1234),
        (".5", "EUR", 50),  # not plain digits before the point: the general path
        ("9" * 15 + ".5", "EUR", int("9" * 15 + "50")),  # the largest whole part
        ("0" * 20 + "1.00", "MYR", 100),  # leading zeros are no size
    ],
)
def test_amounts_read_exactly(text: str, currency: str, minor: int) -> None:
    money = statement_money(text, currency)
    assert (money.minor, money.currency) == (minor, currency)
    assert type(money) is (Money if currency == "MYR" else StatementMoney)


@pytest.mark.parametrize(
    ("text", "currency", "reason"),
    [
        ("1.001", "MYR", "fraction of a minor unit"),
        ("", "MYR", "not a non-negative decimal"),
        ("1.2.3", "MYR", "not a non-negative decimal"),
        ("\u0663", "MYR", "not a non-negative decimal"),  # a non-ASCII digit
        ("-1.00", "MYR", "not a non-negative decimal"),
        # No payment is larger (the protocol's amounts have at most 15 whole digits), and the
        # database's 64-bit amounts hold any such amount in minor units, 3 decimals too.
        ("1" + "0" * 15 + ".00", "MYR", "more than 15 whole digits"),
        ("12345678901234567.000", "KWD", "more than 15 whole digits"),
        ("9" * 5000, "MYR", "more than 15 whole digits"),
        (".", "MYR", "is not a decimal"),
        ("1.00", "XXX", "unknown currency"),
    ],
)
def test_bad_amounts_name_the_reason(text: str, currency: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        statement_money(text, currency)


def test_more_digits_than_decimal_precision_take_the_general_path() -> None:
    # 35 digits (trailing zeros): the general path (Decimal, 28 digits of precision) decides,
    # as it always did.
    text = "1" * 15 + "." + "0" * 20
    expected = Decimal(text).scaleb(2)
    assert statement_money(text, "EUR").minor == int(expected) == int("1" * 15 + "00")
