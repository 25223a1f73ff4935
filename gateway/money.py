"""Money: integer minor units plus an ISO 4217 code; a decimal string only on the wire."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

__all__ = ["AMOUNT_PATTERN", "MINOR_UNITS", "Money"]

# ISO 4217 minor units of the currencies the gateway handles (domain.md). A currency missing
# here is refused rather than guessed.
MINOR_UNITS: dict[str, int] = {"MYR": 2, "IDR": 2, "MMK": 2, "NPR": 2, "PKR": 2, "BDT": 2}

AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,14})(\.[0-9]+)?$"  # the published schemas use it too
_AMOUNT = re.compile(AMOUNT_PATTERN)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of one currency, held exactly as integer minor units."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unsupported currency {self.currency!r}")

    @classmethod
    def parse(cls, amount: str, currency: str) -> Money:
        """Parse a wire decimal string that has exactly the currency's minor-unit digits."""
        if currency not in MINOR_UNITS:
            raise ValueError(
                f"unsupported currency {currency!r} (one of {', '.join(sorted(MINOR_UNITS))})"
            )
        if not isinstance(amount, str) or not _AMOUNT.match(amount):
            raise ValueError(f"amount {amount!r} is not a non-negative decimal string")
        digits = MINOR_UNITS[currency]
        _, _, frac = amount.partition(".")
        if len(frac) != digits:
            raise ValueError(
                f"amount {amount!r} must have exactly {digits} decimals for {currency}"
            )
        return cls(int(amount.replace(".", "")), currency)

    @classmethod
    def of(cls, value: Decimal | str | int, currency: str) -> Money:
        """Build from a Decimal that must already be exact in minor units."""
        exp = MINOR_UNITS[currency]
        d = Decimal(value)
        scaled = d.scaleb(exp)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {exp} decimals for {currency}")
        return cls(int(scaled), currency)

    @property
    def amount(self) -> Decimal:
        return Decimal(self.minor).scaleb(-MINOR_UNITS[self.currency])

    def wire(self) -> dict[str, str]:
        """Return the PX/1 wire form ``{"amount": "1250.00", "currency": "MYR"}``."""
        return {"amount": self.amount_str(), "currency": self.currency}

    def amount_str(self) -> str:
        digits = MINOR_UNITS[self.currency]
        sign = "-" if self.minor < 0 else ""
        whole, frac = divmod(abs(self.minor), 10**digits)
        return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"

    def convert(self, rate: Decimal, currency: str) -> Money:
        """Convert at ``rate`` (units of ``currency`` per unit of self), rounding half-even."""
        exp = MINOR_UNITS[currency]
        amount = self.amount
        # Exact product first: the default 28 digits would round it before the half-even step
        # (a double rounding that can cost a minor unit); a product needs at most the sum.
        with localcontext() as ctx:
            ctx.prec = len(amount.as_tuple().digits) + len(rate.as_tuple().digits) + 2
            exact = amount * rate
        target = exact.quantize(Decimal(1).scaleb(-exp), rounding=ROUND_HALF_EVEN)
        return Money.of(target, currency)

    def __str__(self) -> str:
        return f"{self.amount_str()} {self.currency}"
