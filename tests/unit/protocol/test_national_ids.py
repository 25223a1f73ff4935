"""Canonical identity validation: valid spellings pass unchanged, invalid ones say what is wrong."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocol.national_ids import (
    _DISTRICTS_BY_PROVINCE,
    NEPAL_DISTRICTS,
    SCHEMES,
    normalise_national_id,
    validate_passport_no,
    validate_phone,
)


def _error(scheme: str, value: str) -> str:
    with pytest.raises(ValueError) as info:
        normalise_national_id(scheme, value)
    return str(info.value)


@pytest.mark.parametrize(
    ("scheme", "value"),
    [
        ("ID-NIK", "3171011708450001"),
        ("ID-NIK", "3171015708450001"),  # woman: day 17 + 40
        ("ID-NIK", "3273012902000001"),  # 29 Feb 2000 exists (1900 had none)
        ("MM-NRC", "12/OUKAMA(N)123456"),
        ("MM-NRC", "1/MAKANA(E)12345"),
        ("MM-NRC", "14/HATHATA(S)000001"),
        ("NP-CTZ", "KATHMANDU:27-01-71-12345"),
        ("NP-CTZ", "NAWALPARASI_WEST:123456"),
        ("NP-CTZ", "MAKWANPUR:1234/5".replace("/", "-")),
        ("PK-CNIC", "3520112345671"),
        ("PK-CNIC", "7120112345678"),
        ("BD-NID", "1234567890"),
        ("BD-NID", "2612345678901"),
        ("BD-NID", "19902612345678901"),
    ],
)
def test_valid_canonical_ids_are_returned_unchanged(scheme: str, value: str) -> None:
    assert normalise_national_id(scheme, value) == value


@pytest.mark.parametrize(
    ("scheme", "value", "message"),
    [
        ("ID-NIK", "317101170845000", "must be 16 digits, got 15"),
        ("ID-NIK", "3171-01170845000", "ASCII digits only; found '-'"),
        ("ID-NIK", "３１７１０１１７０８４５０００１", "ASCII digits only"),
        ("ID-NIK", "3171010008450001", "birth day '00' (digits 7-8) must be 01-31, or 41-71"),
        ("ID-NIK", "3171013508450001", "birth day '35'"),
        ("ID-NIK", "3171018108450001", "birth day '81'"),  # stdnum alone accepts this
        ("ID-NIK", "3171011713450001", "birth month '13' (digits 9-10) must be 01-12"),
        ("ID-NIK", "3171013102450001", "birth date 31-02-45 (digits 7-12) is not a real date"),
        ("ID-NIK", "3171016902010001", "birth date 29-02-01"),  # woman, no 29 Feb in 1901/2001
        ("ID-NIK", "3171011708450000", "serial (last 4 digits) starts at 0001"),
        ("ID-NIK", "9971011708450001", "region code '9971'"),
        ("MM-NRC", "12/OUKAMA(N)12345６", "must be ASCII"),
        ("MM-NRC", "၁၂/ဥကမ(နိုင်)၁၂၃၄၅၆", "must be ASCII"),
        ("MM-NRC", "12-OUKAMA-N-123456", "must look like 12/OUKAMA(N)123456"),
        ("MM-NRC", "15/OUKAMA(N)123456", "state '15' must be a number 1-14"),
        ("MM-NRC", "0/OUKAMA(N)123456", "state '0'"),
        ("MM-NRC", "012/OUKAMA(N)123456", "without leading zero"),
        ("MM-NRC", "12/OuKaMa(N)123456", "township code 'OuKaMa' must be 3-12 upper-case"),
        ("MM-NRC", "12/OK(N)123456", "township code 'OK'"),
        ("MM-NRC", "12/OUKAMA(X)123456", "type 'X' must be one of N, E, P, T, R, S"),
        ("MM-NRC", "12/OUKAMA(NAING)123456", "type 'NAING'"),
        ("MM-NRC", "12/OUKAMA(N)1234", "serial '1234' must be 5 or 6 ASCII digits"),
        ("MM-NRC", "12/OUKAMA(N)1234567", "serial '1234567'"),
        ("MM-NRC", "12/OUKAMA(N)123456\n", "serial '123456\\n'"),
        ("NP-CTZ", "27-01-71-12345", "must be DISTRICT:NUMBER"),
        ("NP-CTZ", "Kathmandu:27-01-71-12345", "district 'Kathmandu' is not one of Nepal's 77"),
        ("NP-CTZ", "KATHMANDOO:12345", "(did you mean KATHMANDU?)"),
        ("NP-CTZ", "KAVRE:12345", "is not one of Nepal's 77 districts"),
        ("NP-CTZ", "KATHMANDU:27/01/71/12345", "digit groups joined by single '-'"),
        ("NP-CTZ", "KATHMANDU:27--01", "joined by single '-'"),
        ("NP-CTZ", "KATHMANDU:-2701", "joined by single '-'"),
        ("NP-CTZ", "KATHMANDU:२७०१", "digit groups"),
        ("NP-CTZ", "KATHMANDU:" + "1" * 21, "has 21 digits, at most 20"),
        ("PK-CNIC", "35201-1234567-1", "ASCII digits only; found '-'"),
        ("PK-CNIC", "352011234567", "must be 13 digits, got 12"),
        ("PK-CNIC", "9520112345671", "first digit '9' must be a region code 1-8"),
        ("PK-CNIC", "0520112345671", "first digit '0'"),
        ("PK-CNIC", "3520112345670", "last digit '0' must be 1-9"),
        ("BD-NID", "12345678901", "must be 10, 13 or 17 digits, got 11"),
        ("BD-NID", "১২৩৪৫৬৭৮৯০", "ASCII digits only"),
        ("BD-NID", "18902612345678901", "'1890' is not between 1900 and"),
        ("BD-NID", "99992612345678901", "starts with the birth year"),
        ("ID-NIK", "", "ID-NIK value is empty"),
    ],
)
def test_invalid_ids_say_what_is_wrong(scheme: str, value: str, message: str) -> None:
    assert message in _error(scheme, value)


def test_unknown_scheme_lists_the_known_ones() -> None:
    assert "unknown national id scheme 'MY-IC' (one of ID-NIK, MM-NRC" in _error("MY-IC", "1")


def test_bd_nid_birth_year_may_be_this_year_but_not_next() -> None:
    this_year = datetime.now(timezone(timedelta(hours=6))).year
    assert normalise_national_id("BD-NID", f"{this_year}2612345678901")
    assert "is not between" in _error("BD-NID", f"{this_year + 1}2612345678901")


def test_nepal_has_77_districts_in_7_provinces() -> None:
    sizes = {province: len(d) for province, d in _DISTRICTS_BY_PROVINCE.items()}
    assert sizes == {
        "KOSHI": 14, "MADHESH": 8, "BAGMATI": 13, "GANDAKI": 11,
        "LUMBINI": 12, "KARNALI": 10, "SUDURPASHCHIM": 9,
    }  # fmt: skip
    assert len(NEPAL_DISTRICTS) == 77
    assert all(d.isascii() and d == d.upper() and " " not in d for d in NEPAL_DISTRICTS)
    assert {"KATHMANDU", "MAKWANPUR", "NAWALPARASI_EAST", "RUKUM_WEST"} <= NEPAL_DISTRICTS
    assert not {"NAWALPARASI", "RUKUM"} & NEPAL_DISTRICTS


def test_every_district_is_accepted() -> None:
    for district in NEPAL_DISTRICTS:
        assert normalise_national_id("NP-CTZ", f"{district}:1-2") == f"{district}:1-2"


def test_schemes_are_the_envelope_literals() -> None:
    assert SCHEMES == ("ID-NIK", "MM-NRC", "NP-CTZ", "PK-CNIC", "BD-NID")


@given(
    province=st.sampled_from("1234567"),
    middle=st.from_regex(r"\A[0-9]{11}\Z"),
    gender=st.sampled_from("123456789"),
)
def test_any_well_formed_cnic_is_valid(province: str, middle: str, gender: str) -> None:
    value = province + middle + gender
    assert normalise_national_id("PK-CNIC", value) == value


@given(st.text(min_size=1, max_size=20).filter(lambda s: not s.isascii() or not s.isdigit()))
def test_non_digit_text_is_never_a_bd_nid(value: str) -> None:
    with pytest.raises(ValueError, match="BD-NID"):
        normalise_national_id("BD-NID", value)


# --- phones -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    ["+60123456789", "+6281234567890", "+959250123456", "+9779841234567", "+923001234567",
     "+8801712345678"],
)  # fmt: skip
def test_valid_e164_phones(phone: str) -> None:
    assert validate_phone(phone) == phone


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        ("0123456789", "must be E.164, starting with '+'"),
        ("60123456789", "starting with '+'"),
        ("+60 12-345 6789", "is not in E.164 form ('+', country code, digits only): "
                            "write +60123456789"),
        ("+600123456789", "write +60123456789"),  # national trunk prefix kept
        ("+95925012345", "is not a valid number for MM"),
        ("+6012", "is not a valid number for MY"),
        ("+", "is not a phone number"),
        ("+abc", "is not a phone number"),
    ],
)  # fmt: skip
def test_invalid_phones_say_what_is_wrong(phone: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_phone(phone)
    assert message in str(info.value)


# --- passports --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "nationality"),
    [("A1234567", None), ("123456789", None), ("X", None), ("B1234567", "ID"),
     ("C7654321", "IDN"), ("MA1234567", "MM"), ("AB1234567", "pk")],
)  # fmt: skip
def test_valid_passport_numbers(number: str, nationality: str | None) -> None:
    assert validate_passport_no(number, nationality) == number


def test_single_argument_call_still_works() -> None:
    assert validate_passport_no("EA1234567") == "EA1234567"


@pytest.mark.parametrize(
    ("number", "nationality", "message"),
    [
        ("", None, "must be 1-9 characters of A-Z and 0-9 (ICAO 9303)"),
        ("A12345678X", None, "must be 1-9 characters"),
        ("a1234567", None, "upper case"),
        ("A 1234567", None, "no spaces"),
        ("A1234567<", None, "'<' fillers"),
        ("D1234567", "ID", "issued by ID must be a letter A-C followed by 7 digits"),
        ("A123456", "IDN", "issued by ID must be"),
        ("AB123456", "ID", "issued by ID must be"),
    ],
)
def test_invalid_passport_numbers(number: str, nationality: str | None, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_passport_no(number, nationality)
    assert message in str(info.value)
