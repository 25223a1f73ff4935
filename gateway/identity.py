"""Canonical identity documents and phone numbers: strict validation that says what is wrong.

These check the *canonical* spellings used inside PX/1 envelopes (ASCII digits, one spelling per
scheme). Partner-native spellings (Burmese digits, dashed CNICs, Bikram Sambat dates) are turned
into canonical ones by the partner's adapter before they reach here.
"""

from __future__ import annotations

import re

import phonenumbers
from stdnum import exceptions as stdnum_exc
from stdnum.id import nik as stdnum_nik
from stdnum.pk import cnic as stdnum_cnic

__all__ = ["SCHEMES", "normalise_national_id", "validate_passport_no", "validate_phone"]

SCHEMES = ("ID-NIK", "MM-NRC", "NP-CTZ", "PK-CNIC", "BD-NID")

_NRC = re.compile(r"^(1[0-4]|[1-9])/([A-Z]{3,9})\((N|E|P|T|R|S)\)([0-9]{5,6})$")
_NP_CTZ = re.compile(r"^([A-Z]+(?:_[A-Z]+)*):([0-9]+(?:-[0-9]+)*)$")
_DIGITS = re.compile(r"^[0-9]+$")
_PASSPORT = re.compile(r"^[A-Z0-9]{1,9}$")


def _nik(value: str) -> str:
    if not _DIGITS.match(value) or len(value) != 16:
        raise ValueError("ID-NIK must be exactly 16 ASCII digits")
    try:
        return str(stdnum_nik.validate(value))
    except stdnum_exc.ValidationError as exc:
        raise ValueError(f"ID-NIK {value!r} is not valid: {exc.message}") from exc


def _nrc(value: str) -> str:
    if not _NRC.match(value):
        raise ValueError(
            "MM-NRC must look like 12/OUKAMA(N)123456: state 1-14, township code, "
            "type N/E/P/T/R/S in brackets, 5-6 ASCII digits"
        )
    return value


def _np_ctz(value: str) -> str:
    if not _NP_CTZ.match(value):
        raise ValueError(
            "NP-CTZ must be DISTRICT:NUMBER, e.g. KATHMANDU:27-01-71-12345 "
            "(issuing district in capitals, digits separated by '-')"
        )
    return value


def _cnic(value: str) -> str:
    if not _DIGITS.match(value) or len(value) != 13:
        raise ValueError("PK-CNIC must be exactly 13 ASCII digits without dashes")
    try:
        return str(stdnum_cnic.validate(value))
    except stdnum_exc.ValidationError as exc:
        raise ValueError(f"PK-CNIC {value!r} is not valid: {exc.message}") from exc


def _bd_nid(value: str) -> str:
    if not _DIGITS.match(value) or len(value) not in (10, 13, 17):
        raise ValueError("BD-NID must be 10, 13 or 17 ASCII digits")
    return value


_VALIDATORS = {
    "ID-NIK": _nik,
    "MM-NRC": _nrc,
    "NP-CTZ": _np_ctz,
    "PK-CNIC": _cnic,
    "BD-NID": _bd_nid,
}


def normalise_national_id(scheme: str, value: str) -> str:
    """Return the canonical value of a national id, or raise ValueError saying what is wrong."""
    try:
        validator = _VALIDATORS[scheme]
    except KeyError:
        raise ValueError(f"unknown national id scheme {scheme!r} (one of {', '.join(SCHEMES)})")
    return validator(value)


def validate_phone(value: str) -> str:
    """Return the E.164 number unchanged if it is a valid E.164 number."""
    if not value.startswith("+"):
        raise ValueError("phone must be E.164, starting with '+' and the country code")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone {value!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"phone {value!r} is not a valid number for its country")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if e164 != value:
        raise ValueError(f"phone {value!r} is not in E.164 form (expected {e164})")
    return value


def validate_passport_no(value: str) -> str:
    """Check an ICAO 9303 document number: up to 9 of A-Z and 0-9."""
    if not _PASSPORT.match(value):
        raise ValueError("passport_no must be 1-9 characters of A-Z and 0-9 (ICAO 9303)")
    return value
