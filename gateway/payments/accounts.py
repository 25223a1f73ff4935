"""A rail's practice: which payout accounts it can pay, and in how many decimals.

Set per rail in the rails file (``gateway.payments.rails``), beside the adapter's own keys:

    [rails.merchantrade]
    account_kind = "mobile"        # "any" (default), "mobile" or "bank"
    wallet_country = "MY"          # mobile: the wallet's country (ISO 3166 alpha-2)
    minor_units = 0                # or {IDR = 0, MMK = 0}: decimals the rail pays (default:
                                   # the currency's ISO 4217 minor units)
    [rails.iso20022]
    account_kind = "bank"
    account_pattern = "[A-Z0-9]{5,34}"   # the whole account must match (default shown)

An e-wallet is reached by the holder's mobile number, so ``mobile`` accepts a number that
libphonenumber says is a valid mobile of ``wallet_country`` (or ``FIXED_LINE_OR_MOBILE`` where
that country's plan cannot tell the two apart) and refuses a landline: money sent to a number no
wallet can have is returned days later, or lost. ``any`` keeps the edge's character check only,
for rails (and development files) that say nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import phonenumbers
from phonenumbers import PhoneNumberType

from gateway.money import MINOR_UNITS

__all__ = ["DEFAULT_BANK_PATTERN", "PRACTICE_KEYS", "RailPractice"]

PRACTICE_KEYS = ("account_kind", "wallet_country", "account_pattern", "minor_units")
DEFAULT_BANK_PATTERN = "[A-Z0-9]{5,34}"  # IBAN's alphabet and its longest length
AccountKind = Literal["any", "mobile", "bank"]
_DIGITS = re.compile(r"\+?[0-9]{4,17}")  # E.164 with or without its +, or a national number
_MOBILE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_TYPE_NAMES = {PhoneNumberType.FIXED_LINE: "a landline", PhoneNumberType.VOIP: "a VoIP number",
               PhoneNumberType.TOLL_FREE: "a toll-free number",
               PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
               PhoneNumberType.PAGER: "a pager number"}


@dataclass(frozen=True, slots=True)
class RailPractice:
    """What one rail pays to and in how many decimals (the rails file's practice keys)."""

    account_kind: AccountKind = "any"
    wallet_country: str | None = None
    account_pattern: re.Pattern[str] | None = None
    minor_units: int | None = None  # every currency the rail pays
    currency_minor_units: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> RailPractice:
        """Read the practice keys of a ``[rails.NAME]`` table (others are ignored).

        Raises:
            ValueError: ``key: what is wrong``.
        """
        kind = section.get("account_kind", "any")
        if kind not in ("any", "mobile", "bank"):
            raise ValueError(f"account_kind: {kind!r} is not one of any, mobile, bank")
        country = section.get("wallet_country")
        if kind == "mobile":
            if not isinstance(country, str) or \
                    country not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"wallet_country: {country!r} is not a country code "
                                 "libphonenumber knows (e.g. \"MY\"), needed by a mobile rail")
        elif country is not None:
            raise ValueError("wallet_country: only for account_kind = \"mobile\"")
        pattern = section.get("account_pattern")
        compiled = None
        if kind == "bank":
            text = DEFAULT_BANK_PATTERN if pattern is None else pattern
            if not isinstance(text, str):
                raise ValueError("account_pattern: a regular expression string")
            try:
                compiled = re.compile(text)
            except re.error as exc:
                raise ValueError(f"account_pattern: {exc}") from None
        elif pattern is not None:
            raise ValueError("account_pattern: only for account_kind = \"bank\"")
        units = section.get("minor_units")
        every, per = None, {}
        if isinstance(units, Mapping):
            for currency, n in units.items():
                per[currency] = _digits(n, currency)
        elif units is not None:
            every = _digits(units, None)
        return cls(kind, country, compiled, every, MappingProxyType(per))

    def check_account(self, account: str) -> None:
        """Refuse an account this rail cannot pay.

        The message never repeats the account: problems are logged, account numbers are not.

        Raises:
            ValueError: what is wrong, in words.
        """
        if self.account_kind == "mobile":
            assert self.wallet_country is not None
            self._check_mobile(account, self.wallet_country)
        elif self.account_kind == "bank":
            assert self.account_pattern is not None
            if self.account_pattern.fullmatch(account) is None:
                raise ValueError(f"not a bank account this rail pays (it must match "
                                 f"{self.account_pattern.pattern})")

    @staticmethod
    def _check_mobile(account: str, country: str) -> None:
        # libphonenumber reads letters as a keypad's ("FAIL" is 3245): an account is digits.
        try:
            if _DIGITS.fullmatch(account) is None:
                raise phonenumbers.NumberParseException(
                    phonenumbers.NumberParseException.NOT_A_NUMBER, "not digits")
            number = phonenumbers.parse(account, country)
        except phonenumbers.NumberParseException:
            raise ValueError(f"not a phone number: an e-wallet is paid to the holder's mobile "
                             f"number of {country}") from None
        region = phonenumbers.region_code_for_number(number)
        if not phonenumbers.is_valid_number(number):
            raise ValueError(f"not a valid phone number of {region or country}")
        if region != country:
            raise ValueError(f"a number of {region}, not of {country} where the wallet is")
        kind = phonenumbers.number_type(number)
        if kind not in _MOBILE:
            raise ValueError(f"{_TYPE_NAMES.get(kind, 'not a mobile number')}: an e-wallet is "
                             f"paid to a mobile number of {country}")

    def digits(self, currency: str) -> int:
        """Decimals this rail pays ``currency`` in (never more than ISO 4217 gives it)."""
        iso = MINOR_UNITS[currency]
        n = self.currency_minor_units.get(currency, self.minor_units)
        return iso if n is None else min(n, iso)


def _digits(value: object, currency: str | None) -> int:
    where = f"minor_units.{currency}" if currency else "minor_units"
    if currency is not None and currency not in MINOR_UNITS:
        raise ValueError(f"{where}: unsupported currency (one of "
                         f"{', '.join(sorted(MINOR_UNITS))})")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 4:
        raise ValueError(f"{where}: an integer 0..4")
    return value
