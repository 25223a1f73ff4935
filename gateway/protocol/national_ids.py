"""Canonical identity documents and phone numbers: strict validation that says what is wrong.

These check the *canonical* spellings used inside PX/1 envelopes: ASCII only, one spelling per
scheme, nothing normalised silently. Partner-native spellings (Burmese digits, dashed CNICs,
district names in mixed case) are turned into canonical ones by the partner's adapter
(``adapters/partners/common``) before they reach here, so a non-canonical value here is a bug
in an adapter or a bad message, and the error says which part is wrong.

Canonical spellings::

    ID-NIK   3171015708450001         16 digits PPRRSS DDMMYY XXXX (day + 40 for women)
    MM-NRC   12/OUKAMA(N)123456       state 1-14 / township code (type) 5-6 digits; the
                                      township one of the state's (see mm_townships)
    NP-CTZ   KATHMANDU:27-01-71-12345 issuing district : digit groups joined by single '-'
    PK-CNIC  3520112345671            13 digits, first digit the region 1-8 (see _CNIC_REGIONS)
    BD-NID   1234567890               10, 13 or 17 digits (17 = birth year + the old 13); a
                                      13-digit one starts with a BBS district code (see
                                      data/bd_districts.json)

Every public function returns its input unchanged when valid, so callers can compare the result
with the input to detect a non-canonical spelling, and raises ``ValueError`` otherwise.
``python-stdnum`` and ``phonenumbers`` do the checks they are good at; their exceptions are
translated here into messages that name the failing part.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from functools import cache
from importlib import resources
from typing import Any

import phonenumbers
from stdnum import numdb
from stdnum.pk import cnic as stdnum_cnic

from gateway.protocol import mm_townships

__all__ = [
    "NEPAL_DISTRICTS",
    "NEPAL_FORMER_DISTRICTS",
    "NEPAL_ISSUING_DISTRICTS",
    "SCHEMES",
    "check_nik_matches_worker",
    "nik_region",
    "normalise_national_id",
    "validate_passport_no",
    "validate_phone",
]

SCHEMES: tuple[str, ...] = ("ID-NIK", "MM-NRC", "NP-CTZ", "PK-CNIC", "BD-NID")

# The 77 districts since the 2015 constitution, grouped by province. Nawalparasi and Rukum were
# each split in two, so the bare old names are not districts any more. Spellings follow the
# romanisation most used by Nepal's District Administration Offices; adapters map variants.
_DISTRICTS_BY_PROVINCE: dict[str, tuple[str, ...]] = {
    "KOSHI": (
        "BHOJPUR", "DHANKUTA", "ILAM", "JHAPA", "KHOTANG", "MORANG", "OKHALDHUNGA",
        "PANCHTHAR", "SANKHUWASABHA", "SOLUKHUMBU", "SUNSARI", "TAPLEJUNG", "TERHATHUM",
        "UDAYAPUR",
    ),
    "MADHESH": (
        "BARA", "DHANUSHA", "MAHOTTARI", "PARSA", "RAUTAHAT", "SAPTARI", "SARLAHI", "SIRAHA",
    ),
    "BAGMATI": (
        "BHAKTAPUR", "CHITWAN", "DHADING", "DOLAKHA", "KATHMANDU", "KAVREPALANCHOK",
        "LALITPUR", "MAKWANPUR", "NUWAKOT", "RAMECHHAP", "RASUWA", "SINDHULI", "SINDHUPALCHOK",
    ),
    "GANDAKI": (
        "BAGLUNG", "GORKHA", "KASKI", "LAMJUNG", "MANANG", "MUSTANG", "MYAGDI",
        "NAWALPARASI_EAST", "PARBAT", "SYANGJA", "TANAHUN",
    ),
    "LUMBINI": (
        "ARGHAKHANCHI", "BANKE", "BARDIYA", "DANG", "GULMI", "KAPILVASTU", "NAWALPARASI_WEST",
        "PALPA", "PYUTHAN", "ROLPA", "RUKUM_EAST", "RUPANDEHI",
    ),
    "KARNALI": (
        "DAILEKH", "DOLPA", "HUMLA", "JAJARKOT", "JUMLA", "KALIKOT", "MUGU", "RUKUM_WEST",
        "SALYAN", "SURKHET",
    ),
    "SUDURPASHCHIM": (
        "ACHHAM", "BAITADI", "BAJHANG", "BAJURA", "DADELDHURA", "DARCHULA", "DOTI", "KAILALI",
        "KANCHANPUR",
    ),
}  # fmt: skip

NEPAL_DISTRICTS: frozenset[str] = frozenset(
    d for districts in _DISTRICTS_BY_PROVINCE.values() for d in districts
)
assert len(NEPAL_DISTRICTS) == 77, "Nepal has 77 districts"

# Pre-2015 districts that were split (2015 constitution; the 75 -> 77 districts in force since
# 2017). A certificate issued before the split names the old district, and its number is unique
# within that old district, so the old name stays a valid *issuing* district in NP-CTZ: the key
# (number, issuing district) loses nothing. It is never rewritten to one half, which the number
# alone cannot decide.
NEPAL_FORMER_DISTRICTS: dict[str, tuple[str, str]] = {
    "NAWALPARASI": ("NAWALPARASI_EAST", "NAWALPARASI_WEST"),
    "RUKUM": ("RUKUM_EAST", "RUKUM_WEST"),
}
NEPAL_ISSUING_DISTRICTS: frozenset[str] = NEPAL_DISTRICTS | frozenset(NEPAL_FORMER_DISTRICTS)

# Passport patterns stricter than ICAO's, per issuing state (ISO 3166 alpha-2). Data, not logic:
# add a state here when its format is confirmed.
_PASSPORT_BY_NATIONALITY: dict[str, tuple[re.Pattern[str], str]] = {
    "ID": (re.compile(r"[A-C][0-9]{7}"), "a letter A-C followed by 7 digits, e.g. B1234567"),
}
_ALPHA3_TO_ALPHA2 = {"IDN": "ID", "MMR": "MM", "NPL": "NP", "PAK": "PK", "BGD": "BD", "MYS": "MY"}

# Patterns are used with fullmatch: re's '$' also matches before a trailing newline.
_ASCII_DIGITS = re.compile(r"[0-9]+")
_NRC_SHAPE = re.compile(
    r"(?P<state>[^/]*)/(?P<township>[^(]*)\((?P<type>[^)]*)\)(?P<serial>.*)", re.DOTALL
)
_NRC_TOWNSHIP = re.compile(r"[A-Z]{3,12}")
_NRC_TYPES = "NEPTRS"
_CTZ_NUMBER = re.compile(r"[0-9]+(?:-[0-9]+)*")
_CTZ_MAX_DIGITS = 20
_PASSPORT = re.compile(r"[A-Z0-9]{1,9}")
_BD_TZ = timezone(timedelta(hours=6))

# First digit of a CNIC: the region of the issuing NADRA office. Codes 1-7 as python-stdnum 2.2
# (stdnum/pk/cnic.py, PROVINCES) lists them; 8 for Azad Jammu and Kashmir as independent
# implementations use it (domain.md, "unconfirmed": NADRA publishes no table). Checked 2026-11.
_CNIC_REGIONS: dict[str, str] = {
    **stdnum_cnic.PROVINCES,
    "8": "Azad Jammu and Kashmir",
}
_BD_FIRST_BIRTH_YEAR = 1900


def _require_ascii_digits(scheme: str, value: str, lengths: tuple[int, ...]) -> None:
    if not _ASCII_DIGITS.fullmatch(value):
        bad = sorted({c for c in value if not ("0" <= c <= "9")})
        raise ValueError(
            f"{scheme} must be ASCII digits only; found {', '.join(map(repr, bad))}"
        )
    if len(value) not in lengths:
        *most, last = (str(n) for n in lengths)
        wanted = f"{', '.join(most)} or {last}" if most else last
        raise ValueError(f"{scheme} must be {wanted} digits, got {len(value)}")


def _nik(value: str) -> str:
    _require_ascii_digits("ID-NIK", value, (16,))
    day, month, yy = int(value[6:8]), int(value[8:10]), int(value[10:12])
    # stdnum takes the day modulo 40, which would accept 81..91; only 1-31 and 41-71 exist.
    if not (1 <= day <= 31 or 41 <= day <= 71):
        raise ValueError(
            f"ID-NIK birth day {value[6:8]!r} (digits 7-8) must be 01-31, or 41-71 for women"
        )
    if not 1 <= month <= 12:
        raise ValueError(f"ID-NIK birth month {value[8:10]!r} (digits 9-10) must be 01-12")
    real_day = day - 40 if day > 40 else day
    # The year has two digits, so the date is real if it exists in either century.
    if not any(_is_date(century + yy, month, real_day) for century in (1900, 2000)):
        raise ValueError(
            f"ID-NIK birth date {real_day:02d}-{month:02d}-{yy:02d} (digits 7-12) "
            "is not a real date"
        )
    if value[12:] == "0000":
        raise ValueError("ID-NIK serial (last 4 digits) starts at 0001, got 0000")
    nik_region(value)
    return value


@cache
def _id_regions() -> dict[str, Any]:
    # protocol/data/id_regions.json names its source and date (Kepmendagri 300.2.2-2138/2025).
    raw = resources.files("gateway.protocol").joinpath("data", "id_regions.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    data["district_sets"] = {k: frozenset(v.split()) for k, v in data["districts"].items()}
    return data


def _legacy_regency(code4: str) -> str | None:
    # python-stdnum's table (stdnum/id/loc.dat, from perlancar's Locale-ID-Locality) is an older
    # numbering: 94 for Papua, 91 for Papua Barat, Tarakan and Nunukan under 64. It is kept only
    # so that NIKs accepted before keep being accepted; its province+regency digits are all it
    # can check.
    found = numdb.get("id/loc").info(code4)
    if len(found) < 2 or not found[1][1]:
        return None
    name: str = found[1][1].get("name_id", code4)
    return name


def nik_region(value: str) -> str:
    """Return the region a NIK's first six digits name, or raise ValueError naming the digits.

    Current codes (Kepmendagri 2025) are checked on all six digits (a district number in a gap
    of its regency's numbering is taken for a retired one, see below). A NIK keeps its code when its
    region later splits, so regency codes retired by a split (Papua 2022, see the data file) and
    the older numbering python-stdnum carries are accepted on their first four digits; the
    district digits of those can only be checked to be 01-99.
    """
    data = _id_regions()
    prov, reg, dist = value[:2], f"{value[:2]}.{value[2:4]}", value[4:6]
    if reg in data["regencies"]:
        known = data["district_sets"].get(reg, frozenset())
        # Kecamatan numbers are not reused: one moved to a new regency leaves a gap (64.07.01
        # went to Mahakam Ulu in 2013) and older NIKs keep it. A number in a gap may be such a
        # retired code, which this table cannot confirm; one above the highest is never valid.
        if dist not in known and (dist == "00" or dist > max(known, default="00")):
            raise ValueError(
                f"ID-NIK district code {value[:6]!r} (digits 1-6) is not a kecamatan of "
                f"{data['regencies'][reg]} in the Kepmendagri 2025 region list"
            )
        return f"{reg}.{dist}"
    former = data["former_regencies"].get(reg)
    legacy = None if former else _legacy_regency(value[:4])
    if former is None and legacy is None:
        where = data["provinces"].get(prov)
        what = (f"a regency of {where}" if where else f"a province ({prov!r} is unknown)")
        raise ValueError(
            f"ID-NIK region code {value[:4]!r} (province and regency, digits 1-4) is not "
            f"{what} in the Kepmendagri 2025 list nor a former code kept by older NIKs"
        )
    if dist == "00":
        raise ValueError(f"ID-NIK district code {value[4:6]!r} (digits 5-6) must be 01-99")
    return f"{reg}.{dist}"


def check_nik_matches_worker(nik: str, date_of_birth: date, sex: str | None = None) -> None:
    """Raise ValueError if a NIK's birth date (and +40 rule) disagree with the worker's."""
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    female = day > 40
    real_day = day - 40 if female else day
    if (real_day, month, yy) != (date_of_birth.day, date_of_birth.month,
                                 date_of_birth.year % 100):
        raise ValueError(
            f"national_id ID-NIK encodes the birth date {real_day:02d}-{month:02d}-{yy:02d} "
            f"(digits 7-12, DD-MM-YY{', day + 40 for women' if female else ''}), but "
            f"date_of_birth is {date_of_birth.isoformat()}"
        )
    if sex is not None and sex in ("F", "M") and (sex == "F") != female:
        raise ValueError(
            f"national_id ID-NIK birth day {nik[6:8]!r} says "
            f"{'female (day + 40)' if female else 'male (day 01-31)'}, but sex is {sex!r}"
        )


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _nrc(value: str) -> str:
    if not value.isascii():
        raise ValueError(
            "MM-NRC must be ASCII, e.g. 12/OUKAMA(N)123456; Burmese digits and type words "
            "are converted by the partner adapter"
        )
    shape = _NRC_SHAPE.fullmatch(value)
    if shape is None:
        raise ValueError(
            "MM-NRC must look like 12/OUKAMA(N)123456: state, '/', township code, "
            "type in brackets, serial"
        )
    state, township = shape["state"], shape["township"]
    nrc_type, serial = shape["type"], shape["serial"]
    if not (_ASCII_DIGITS.fullmatch(state) and state[0] != "0" and 1 <= int(state) <= 14):
        raise ValueError(f"MM-NRC state {state!r} must be a number 1-14 without leading zero")
    if not _NRC_TOWNSHIP.fullmatch(township):
        raise ValueError(
            f"MM-NRC township code {township!r} must be 3-12 upper-case letters A-Z"
        )
    if mm_townships.by_canonical(int(state), township) is None:
        raise ValueError(
            f"MM-NRC township code {township!r} is not the canonical spelling of a township "
            f"of state {state} in the NRC township table"
        )
    if len(nrc_type) != 1 or nrc_type not in _NRC_TYPES:
        raise ValueError(f"MM-NRC type {nrc_type!r} must be one of N, E, P, T, R, S")
    if not (_ASCII_DIGITS.fullmatch(serial) and len(serial) in (5, 6)):
        raise ValueError(f"MM-NRC serial {serial!r} must be 5 or 6 ASCII digits")
    return value


def _np_ctz(value: str) -> str:
    district, sep, number = value.partition(":")
    if not sep:
        raise ValueError(
            "NP-CTZ must be DISTRICT:NUMBER, e.g. KATHMANDU:27-01-71-12345 (the number is "
            "only unique within its issuing district)"
        )
    if district not in NEPAL_ISSUING_DISTRICTS:
        raise ValueError(_unknown_district_message(district))
    if not _CTZ_NUMBER.fullmatch(number):
        raise ValueError(
            f"NP-CTZ number {number!r} must be ASCII digit groups joined by single '-', "
            "e.g. 27-01-71-12345 ('/' separators are converted by the partner adapter)"
        )
    digits = len(number.replace("-", ""))
    if digits > _CTZ_MAX_DIGITS:
        raise ValueError(f"NP-CTZ number has {digits} digits, at most {_CTZ_MAX_DIGITS}")
    return value


def _unknown_district_message(district: str) -> str:
    hint = ""
    close = difflib.get_close_matches(
        district.upper().replace(" ", "_"), NEPAL_ISSUING_DISTRICTS, n=1
    )
    if close:
        hint = f" (did you mean {close[0]}?)"
    return (
        f"NP-CTZ district {district!r} is not one of Nepal's 77 districts (or the pre-2015 "
        f"NAWALPARASI, RUKUM) in canonical spelling (upper-case ASCII, '_' for spaces){hint}"
    )


def _cnic(value: str) -> str:
    _require_ascii_digits("PK-CNIC", value, (13,))
    if value[0] not in _CNIC_REGIONS:
        raise ValueError(
            f"PK-CNIC first digit {value[0]!r} must be a region code 1-8 "
            "(1 KP, 2 former FATA, 3 Punjab, 4 Sindh, 5 Balochistan, 6 Islamabad, "
            "7 Gilgit-Baltistan, 8 AJK)"
        )
    if value[-1] == "0":
        # stdnum objects only to this once region and length are checked; it does not know 8.
        raise ValueError(
            f"PK-CNIC last digit {value[-1]!r} must be 1-9 (odd for men, even for women)"
        )
    return value


@cache
def _bd_districts() -> dict[str, Any]:
    # protocol/data/bd_districts.json names its source and date (OCHA COD-AB v03, BBS geocodes).
    raw = resources.files("gateway.protocol").joinpath("data", "bd_districts.json")
    data: dict[str, Any] = json.loads(raw.read_text("utf-8"))
    return data


def _bd_nid(value: str) -> str:
    _require_ascii_digits("BD-NID", value, (10, 13, 17))
    if len(value) == 13 and value[:2] not in _bd_districts()["districts"]:
        # District, RMO, upazila and union/ward digits, then a 6-digit serial. Only the district
        # is checked: the RMO values are listed only by secondary sources that disagree (with
        # or without 4), and refusing a real number on a guess is worse than accepting a typo.
        raise ValueError(
            f"BD-NID district code {value[:2]!r} (digits 1-2 of 13) is not one of "
            "Bangladesh's 64 district geocodes (BBS zila codes 01-94)"
        )
    if len(value) == 17:
        year = int(value[:4])
        # Bangladesh's calendar year, so a number issued on 1 January local time is accepted.
        this_year = datetime.now(_BD_TZ).year
        if not _BD_FIRST_BIRTH_YEAR <= year <= this_year:
            raise ValueError(
                f"BD-NID of 17 digits starts with the birth year; {value[:4]!r} is not "
                f"between {_BD_FIRST_BIRTH_YEAR} and {this_year}"
            )
    return value


_VALIDATORS: dict[str, Callable[[str], str]] = {
    "ID-NIK": _nik,
    "MM-NRC": _nrc,
    "NP-CTZ": _np_ctz,
    "PK-CNIC": _cnic,
    "BD-NID": _bd_nid,
}
assert tuple(_VALIDATORS) == SCHEMES


def normalise_national_id(scheme: str, value: str) -> str:
    """Return the canonical value of a national id, or raise ValueError saying what is wrong."""
    try:
        validator = _VALIDATORS[scheme]
    except KeyError:
        raise ValueError(
            f"unknown national id scheme {scheme!r} (one of {', '.join(SCHEMES)})"
        ) from None
    if not value:
        raise ValueError(f"{scheme} value is empty")
    return validator(value)


def validate_phone(value: str) -> str:
    """Return the phone number unchanged if it is a valid number written in strict E.164."""
    if not value.startswith("+"):
        raise ValueError("phone must be E.164, starting with '+' and the country code")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone {value!r} is not a phone number: {exc}") from exc
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if e164 != value:
        raise ValueError(
            f"phone {value!r} is not in E.164 form ('+', country code, digits only): "
            f"write {e164}"
        )
    if not phonenumbers.is_valid_number(number):
        region = phonenumbers.region_code_for_number(number) or "its country code"
        raise ValueError(f"phone {value!r} is not a valid number for {region}")
    return value


def validate_passport_no(value: str, nationality: str | None = None) -> str:
    """Return an ICAO 9303 document number unchanged, checked against the issuer's format."""
    if not _PASSPORT.fullmatch(value):
        raise ValueError(
            f"passport_no {value!r} must be 1-9 characters of A-Z and 0-9 (ICAO 9303), "
            "upper case, no spaces or '<' fillers"
        )
    if nationality is not None:
        code = _ALPHA3_TO_ALPHA2.get(nationality.upper(), nationality.upper())
        rule = _PASSPORT_BY_NATIONALITY.get(code)
        if rule is not None and not rule[0].fullmatch(value):
            raise ValueError(f"passport_no {value!r} issued by {code} must be {rule[1]}")
    return value
