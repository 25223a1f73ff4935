"""Issue 13 (money): conversion is exact for large values, and an absurd rate is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, localcontext

import pytest

from gateway.money import Money
from gateway.payments.fx import convert

AT = datetime(2026, 11, 21, tzinfo=UTC)


def test_large_exact_values_are_not_truncated_by_decimal_precision() -> None:
    # 16 + 13 significant digits: the default 28-digit context would round the product.
    base = Money.parse("98765432109876.57", "MYR")
    fx = convert(base, "NPR", Decimal("9.876543210987"), "test", AT)
    with localcontext() as ctx:
        ctx.prec = 60
        expected = Decimal("98765432109876.57") * Decimal("9.876543210987")
    assert fx.exact == expected
    assert len(fx.exact.as_tuple().digits) > 28


def test_a_huge_rate_is_a_value_error_not_an_overflow() -> None:
    base = Money.parse("100000.00", "MYR")
    with pytest.raises(ValueError, match="more than 15 integer digits: check the rate"):
        convert(base, "IDR", Decimal("999999999999.999999999999"), "test", AT)


def test_money_convert_is_exact_before_rounding_at_any_precision() -> None:
    # 245853202590160.64500000000001 exactly: 29 significant digits, which the default 28-digit
    # context rounds to the half ...64500, and half-even then pays ...64 instead of ...65.
    base = Money.parse("123456789012345.67", "MYR")
    rate = Decimal("1.991410958903")
    with localcontext() as ctx:
        ctx.prec = 60
        assert base.amount * rate == Decimal("245853202590160.64500000000001")
    assert base.convert(rate, "NPR") == Money.parse("245853202590160.65", "NPR")
