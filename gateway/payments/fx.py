"""Currency conversion of a benefit (computed in MYR) into the rail's currency.

The rate, its source and its time are recorded with the payment; rounding is explicit:
half-even to the currency's ISO 4217 minor units, or down to fewer decimals where the rail pays
fewer (its ``minor_units`` in the rails file: whole rupiah, kyat or rupees on a rail whose
practice that is, domain.md), and the difference paid minus exact is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext

from gateway.money import MINOR_UNITS, Money

__all__ = ["Conversion", "convert"]

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


def convert(base: Money, currency: str, rate: Decimal, source: str, at: datetime, *,
            digits: int | None = None) -> Conversion:
    """Convert ``base`` at ``rate``; round to the rail's ``digits`` and record the difference.

    ``digits`` is the decimals the rail pays ``currency`` in (default: ISO 4217's).

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
    iso = MINOR_UNITS[currency]
    digits = iso if digits is None else min(digits, iso)
    # Fewer decimals than the currency's are rounded down: never pay more than the benefit.
    mode = ROUND_DOWN if digits < iso else ROUND_HALF_EVEN
    paid_amount = exact.quantize(Decimal(1).scaleb(-digits), rounding=mode)
    paid = Money.of(paid_amount, currency)
    diff = (paid_amount - exact).scaleb(MINOR_UNITS[currency])
    rounding_minor = int(diff.to_integral_value(rounding=ROUND_HALF_EVEN))
    return Conversion(base, paid, rate, source, at, exact, rounding_minor)
