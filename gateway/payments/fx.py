"""Currency conversion of a benefit (computed in MYR) into the rail's currency.

The rate, its source and its time are recorded with the payment; rounding is explicit: first
half-even to the currency's ISO 4217 minor units, then down to the rail's practice (whole
rupiah, kyat and rupees, domain.md), and the difference paid minus exact is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext

from gateway.money import MINOR_UNITS, Money

__all__ = ["WHOLE_UNITS", "Conversion", "convert"]

# Currencies paid in whole units in practice (domain.md); data, not logic.
WHOLE_UNITS = frozenset({"IDR", "MMK", "PKR"})
_MAX_INTEGER_DIGITS = 15


@dataclass(frozen=True, slots=True)
class Conversion:
    base: Money  # MYR, as decided
    paid: Money  # what the rail pays
    rate: Decimal  # units of paid.currency per MYR
    source: str
    at: datetime
    exact: Decimal  # base * rate, unrounded
    rounding_minor: int  # paid - exact, in minor units of paid.currency (<= 0 when rounded down)


def convert(base: Money, currency: str, rate: Decimal, source: str, at: datetime) -> Conversion:
    """Convert ``base`` at ``rate``; round to the rail's practice and record the difference.

    Raises:
        ValueError: the rate is not positive or the currency is not supported.
    """
    if currency not in MINOR_UNITS:
        raise ValueError(f"unsupported currency {currency!r}")
    if not rate.is_finite() or rate <= 0:
        raise ValueError("fx rate must be a positive decimal")
    # The default context keeps 28 significant digits, which would round a 15-digit amount
    # times a 24-digit rate silently; the product of two exact decimals needs at most the sum.
    with localcontext() as ctx:
        ctx.prec = len(base.amount.as_tuple().digits) + len(rate.as_tuple().digits) + 2
        exact = base.amount * rate
    # The wire carries at most 15 integer digits (gateway.money): refuse what cannot be paid.
    if exact.adjusted() >= _MAX_INTEGER_DIGITS:
        raise ValueError(
            f"converted amount {exact:.0f} {currency} has more than {_MAX_INTEGER_DIGITS} integer "
            "digits: check the rate"
        )
    digits = 0 if currency in WHOLE_UNITS else MINOR_UNITS[currency]
    # Whole-unit currencies are rounded down: never pay more than the benefit is worth.
    mode = ROUND_DOWN if currency in WHOLE_UNITS else ROUND_HALF_EVEN
    paid_amount = exact.quantize(Decimal(1).scaleb(-digits), rounding=mode)
    paid = Money.of(paid_amount, currency)
    diff = (paid_amount - exact).scaleb(MINOR_UNITS[currency])
    rounding_minor = int(diff.to_integral_value(rounding=ROUND_HALF_EVEN))
    return Conversion(base, paid, rate, source, at, exact, rounding_minor)
