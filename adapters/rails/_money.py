"""Statement amounts in currencies the gateway does not pay in (EUR, SEK, JPY ...).

``gateway.money.Money`` deliberately refuses currencies outside the gateway's six (and
``gateway.protocol.envelope`` asserts that table), so the table cannot simply grow. A bank statement
still carries other currencies (fees, FX legs, the public camt samples), and reconciliation must
see those lines to report them. ``StatementMoney`` is a ``Money`` that accepts any ISO 4217
currency listed below, exact in integer minor units; the gateway's own currencies keep using
plain ``Money`` (``statement_money`` picks).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from adapters.rails._statements import quoted
from gateway.money import MINOR_UNITS, Money

__all__ = ["ISO4217_MINOR_UNITS", "StatementMoney", "statement_money"]

_TWO = "AED AUD BGN BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF INR ILS LKR MXN NOK NZD PHP PLN RON"
_TWO += " SAR SEK SGD THB TRY TWD USD ZAR"
ISO4217_MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(_TWO.split(" "), 2),
    **dict.fromkeys(("CLP", "ISK", "JPY", "KRW", "VND"), 0),
    **dict.fromkeys(("BHD", "JOD", "KWD", "OMR", "TND"), 3),
    **MINOR_UNITS,
}


# The protocol's amounts have at most 15 whole digits (gateway.money.AMOUNT_PATTERN): no line
# can be a payout larger than that, and any such amount fits a 64-bit column in minor units.
_WHOLE_DIGITS = 15


@dataclass(frozen=True, slots=True)
class StatementMoney(Money):
    """A statement amount in a currency outside the gateway's payout currencies."""

    def __post_init__(self) -> None:
        if self.currency not in ISO4217_MINOR_UNITS:
            raise ValueError(f"unknown currency {self.currency!r}")

    @property
    def amount(self) -> Decimal:
        return Decimal(self.minor).scaleb(-ISO4217_MINOR_UNITS[self.currency])

    def amount_str(self) -> str:
        digits = ISO4217_MINOR_UNITS[self.currency]
        sign = "-" if self.minor < 0 else ""
        whole, frac = divmod(abs(self.minor), 10**digits)
        return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def statement_money(text: str, currency: str) -> Money:
    """Parse a statement decimal (any number of trailing zeros) exactly into minor units.

    Raises:
        ValueError: unknown currency, not a plain non-negative decimal, more than 15 whole
            digits, or a fraction of the currency's minor unit (never rounded: a statement
            that does not add up is reported).
    """
    value = text.strip()
    digits = ISO4217_MINOR_UNITS.get(currency)
    whole, _, frac = value.partition(".")
    if len(whole.lstrip("0")) > _WHOLE_DIGITS:
        raise ValueError(f"amount {quoted(text, 24)} has more than {_WHOLE_DIGITS} whole "
                         "digits (no payment is that large)")
    # The common case without Decimal (a million-line statement reads two amounts a line):
    # plain ASCII digits, at most 28 of them (Decimal's default precision, so the general path
    # below is exact too and both agree). Anything else takes the general path and its errors.
    if (
        digits is not None
        and value.isascii()
        and whole.isdigit()
        and (not frac or frac.isdigit())
        and len(whole) + len(frac) <= 28
        and not frac[digits:].strip("0")
    ):
        cls = Money if currency in MINOR_UNITS else StatementMoney
        return cls(int(whole + frac[:digits].ljust(digits, "0")), currency)
    if not value or any(ch not in "0123456789." for ch in value) or value.count(".") > 1:
        raise ValueError(f"amount {text!r} is not a non-negative decimal")
    if currency not in ISO4217_MINOR_UNITS:
        raise ValueError(f"unknown currency {currency!r}")
    try:
        scaled = Decimal(value).scaleb(ISO4217_MINOR_UNITS[currency])
    except InvalidOperation as exc:
        raise ValueError(f"amount {text!r} is not a decimal") from exc
    if scaled != scaled.to_integral_value():
        raise ValueError(f"amount {text!r} has a fraction of a minor unit of {currency}")
    cls = Money if currency in MINOR_UNITS else StatementMoney
    return cls(int(scaled), currency)
