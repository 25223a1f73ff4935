"""Partner-native spellings <-> canonical ones: examples, refusals and round-trip properties."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.partners.common.bikram_sambat import (
    AD_MAX,
    AD_MIN,
    BS_MAX,
    BS_MIN,
    BsDate,
    ad_to_bs,
    bs_to_ad,
    days_in_bs_month,
    format_bs,
    parse_bs,
)
from adapters.partners.common.cnic import format_cnic_dashed, parse_cnic
from adapters.partners.common.ctz import canonical_district, parse_ctz, split_ctz
from adapters.partners.common.dates import (
    format_at_offset,
    format_ddmmyyyy,
    local_date,
    parse_ddmmyyyy,
    parse_offset,
    to_utc,
)
from adapters.partners.common.digits import from_ascii_digits, to_ascii_digits
from adapters.partners.common.nrc import (
    NRC_TYPES,
    format_nrc_burmese,
    parse_nrc,
)
from gateway.protocol import mm_townships
from gateway.protocol.national_ids import NEPAL_DISTRICTS


def _message(func: Callable[..., object], *args: object) -> str:
    with pytest.raises(ValueError) as info:
        func(*args)
    return str(info.value)


# --- digits -----------------------------------------------------------------------------------


def test_digits_of_each_script_become_ascii() -> None:
    assert to_ascii_digits("၀၁၂၃၄၅၆၇၈၉") == "0123456789"
    assert to_ascii_digits("०१२३४५६७८९") == "0123456789"
    assert to_ascii_digits("০১২৩৪৫৬৭৮৯") == "0123456789"
    assert from_ascii_digits("2081-08-06", "devanagari") == "२०८१-०८-०६"
    assert from_ascii_digits("17", "bengali") == "১৭"


def test_names_are_left_untouched() -> None:
    for name in ("মোহাম্মদ রহিম", "राम बहादुर", "အောင်ဆန်း", "Siti Nurhaliza"):
        assert to_ascii_digits(name) == name


def test_unknown_digit_script_is_refused() -> None:
    assert "unknown digit script 'thai'" in _message(from_ascii_digits, "1", "thai")


# --- Myanmar NRC ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("12/OUKAMA(N)123456", "12/OUKAMA(N)123456"),
        ("၁၂/ဥကမ(နိုင်)၁၂၃၄၅၆", "12/OUKAMA(N)123456"),
        ("12/OUKAMA(N)၁၂၃၄၅၆", "12/OUKAMA(N)123456"),
        ("၁၂/OUKAMA(နိုင်)123456", "12/OUKAMA(N)123456"),
        ("12/OuKaMa(n)12345", "12/OUKAMA(N)12345"),
        (" 9/MAHAMA(E)012345 ", "9/MAHAMA(E)012345"),
        ("၁၂/ဗဟန(ဧည့်)၀၀၀၀၀၁", "12/BAHANA(E)000001"),
        ("၁၂/ကမရ(ပြု)၁၂၃၄၅", "12/KAMAYA(P)12345"),
        ("၁၂/ဒဂန(သာသနာ)၁၂၃၄၅", "12/DAGANA(T)12345"),
        ("၁၂/တမန(ယာယီ)၁၂၃၄၅", "12/TAMANA(R)12345"),
        ("၁၄/ဟသတ(စ)၁၂၃၄၅", "14/HATHATA(S)12345"),
        ("၁၂/ဥကမ(နုိင်)၁၂၃၄၅၆", "12/OUKAMA(N)123456"),  # vowel signs typed in the other order
    ],
)
def test_nrc_parses_ascii_and_burmese(text: str, canonical: str) -> None:
    assert parse_nrc(text) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12 OUKAMA N 123456", "must look like 12/OUKAMA(N)123456 or ၁၂/ဥကမ(နိုင်)၁၂၃၄၅၆"),
        ("၁၂/ကကဇ(နိုင်)၁၂၃၄၅၆", "township code 'ကကဇ' in Burmese script is not a township code"),
        ("၁၂/ဥကမ(နိုင်)၁၂၃ဝ၅၆", "contains the Burmese letter ဝ (U+101D) where a digit is expected"),
        ("၁ရ/ဥကမ(နိုင်)၁၂၃၄၅၆", "NRC state '၁ရ' contains the Burmese letter ရ (U+101B)"),
        ("၁၂/ဥကမ(နိုင်)12a456", "NRC serial '12a456' must be ASCII or Burmese digits only"),
        ("၁၂/ဥကမ(ဗမာ)၁၂၃၄၅၆", "NRC type 'ဗမာ' must be one of"),
        ("၁၅/ဥကမ(နိုင်)၁၂၃၄၅၆", "MM-NRC state '15' must be a number 1-14"),
        ("12/OUKAMA(N)1234", "MM-NRC serial '1234' must be 5 or 6"),
        ("12/OUKAMA(Q)123456", "MM-NRC type 'Q'"),
    ],
)
def test_nrc_refusals_say_what_is_wrong(text: str, message: str) -> None:
    assert message in _message(parse_nrc, text)


def test_nrc_formats_canonical_in_burmese() -> None:
    assert format_nrc_burmese("12/OUKAMA(N)123456") == "၁၂/ဥကမ(နိုင်)၁၂၃၄၅၆"


def test_nrc_outside_the_township_table_cannot_be_formatted() -> None:
    assert "'MAHAMA' is not the canonical spelling of a township of state 12" in _message(
        format_nrc_burmese, "12/MAHAMA(N)123456"
    )
    assert "MM-NRC" in _message(format_nrc_burmese, "12/OUKAMA(N)1234")


_township = st.integers(1, 14).flatmap(
    lambda state: st.sampled_from(sorted(
        f"{state}/{t.canonical}" for t in mm_townships.townships(state).values()))
)
_canonical_nrc = st.builds(
    lambda township, kind, serial: f"{township}({kind}){serial}",
    _township,
    st.sampled_from(sorted(NRC_TYPES.values())),
    st.from_regex(r"\A[0-9]{5,6}\Z"),
)


@given(_canonical_nrc)
def test_nrc_ascii_to_burmese_to_ascii_is_identity(canonical: str) -> None:
    burmese = format_nrc_burmese(canonical)
    assert burmese.count("/") == 1 and not any("0" <= c <= "9" for c in burmese)
    assert parse_nrc(burmese) == canonical


# --- Nepal citizenship ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("district", "number", "canonical"),
    [
        ("Kathmandu", "27-01-71-12345", "KATHMANDU:27-01-71-12345"),
        ("kathmandu", "27/01/71/12345", "KATHMANDU:27-01-71-12345"),
        ("Kavre", "२७/०१/७१/१२३४५", "KAVREPALANCHOK:27-01-71-12345"),
        ("Nawalparasi East", "123", "NAWALPARASI_EAST:123"),
        ("Rukum-Paschim", "123", "RUKUM_WEST:123"),
        ("SINDHUPALCHOWK", " 1234 ", "SINDHUPALCHOK:1234"),
    ],
)
def test_ctz_parses_partner_spellings(district: str, number: str, canonical: str) -> None:
    assert parse_ctz(district, number) == canonical


@pytest.mark.parametrize(
    ("district", "number", "message"),
    [
        ("Kathmandoo", "123", "did you mean KATHMANDU?"),
        ("Delhi", "123", "'DELHI' is not one of Nepal's 77 districts"),
        ("Kathmandu", "27//01", "must be digit groups separated by single '-' or '/'"),
        ("Kathmandu", "27-01-", "must be digit groups"),
        ("Kathmandu", "", "must be digit groups"),
    ],
)
def test_ctz_refusals_say_what_is_wrong(district: str, number: str, message: str) -> None:
    assert message in _message(parse_ctz, district, number)


def test_every_canonical_district_maps_to_itself_and_splits_back() -> None:
    for district in NEPAL_DISTRICTS:
        assert canonical_district(district.replace("_", " ").title()) == district
        assert split_ctz(f"{district}:1-2") == (district, "1-2")


# --- Pakistan CNIC ----------------------------------------------------------------------------


def test_cnic_dashed_and_plain() -> None:
    assert parse_cnic("35201-1234567-1") == "3520112345671"
    assert parse_cnic("3520112345671") == "3520112345671"
    assert format_cnic_dashed("3520112345671") == "35201-1234567-1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3520-11234567-1", "must be written 12345-1234567-1 or as 13 digits"),
        ("35201 1234567 1", "must be written 12345-1234567-1"),
        ("35201-1234567-1\n", "must be written 12345-1234567-1"),
        ("95201-1234567-1", "PK-CNIC first digit '9' must be a region code 1-8"),
        ("35201-1234567-0", "PK-CNIC last digit '0' must be 1-9"),
    ],
)
def test_cnic_refusals_say_what_is_wrong(text: str, message: str) -> None:
    assert message in _message(parse_cnic, text)


@given(st.from_regex(r"\A[1-7][0-9]{4}-[0-9]{7}-[1-9]\Z"))
def test_cnic_dashed_to_canonical_to_dashed_is_identity(dashed: str) -> None:
    canonical = parse_cnic(dashed)
    assert len(canonical) == 13 and canonical.isdigit()
    assert format_cnic_dashed(canonical) == dashed
    assert parse_cnic(format_cnic_dashed(canonical)) == canonical


# --- Bikram Sambat ----------------------------------------------------------------------------


def test_supported_range() -> None:
    assert (format_bs(BS_MIN), format_bs(BS_MAX)) == ("1975-01-01", "2095-12-30")
    assert (bs_to_ad(BS_MIN), bs_to_ad(BS_MAX)) == (date(1918, 4, 13), date(2039, 4, 14))
    assert bs_to_ad(BS_MIN) == AD_MIN and bs_to_ad(BS_MAX) == AD_MAX
    assert ad_to_bs(AD_MIN) == BS_MIN and ad_to_bs(AD_MAX) == BS_MAX


@pytest.mark.parametrize(
    ("bs", "ad"),
    [
        ("2080-01-01", date(2023, 4, 14)),  # BS new year, 1 Baisakh
        ("2081-01-01", date(2024, 4, 13)),
        ("2082-01-01", date(2025, 4, 14)),
        ("2083-01-01", date(2026, 4, 14)),
        ("2081-08-06", date(2024, 11, 21)),  # the example in partners.md
        ("2082-08-05", date(2025, 11, 21)),
    ],
)
def test_known_dates(bs: str, ad: date) -> None:
    assert bs_to_ad(parse_bs(bs)) == ad
    assert format_bs(ad_to_bs(ad)) == bs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2081-02-33", "BS date 2081-02-33 does not exist: Jestha 2081 has 32 days"),
        ("2081-01-32", "BS date 2081-01-32 does not exist: Baisakh 2081 has 31 days"),
        ("2081-12-32", "Chaitra 2081 has 31 days"),
        ("2081-01-00", "does not exist"),
        ("2081-13-01", "BS date 2081-13-01: month must be 01-12"),
        ("2081-00-01", "month must be 01-12"),
        ("1974-12-30", "year is outside the supported range 1975..2095"),
        ("2096-01-01", "year is outside the supported range 1975..2095"),
        ("2081-8-6", "must be YYYY-MM-DD with ASCII digits"),
        ("2081/08/06", "must be YYYY-MM-DD"),
        ("२०८१-०८-०६", "must be YYYY-MM-DD with ASCII digits"),
        ("2081-08-06\n", "must be YYYY-MM-DD"),
    ],
)
def test_invalid_bs_dates_say_what_is_wrong(text: str, message: str) -> None:
    assert message in _message(parse_bs, text)


def test_devanagari_bs_date_parses_after_digit_normalisation() -> None:
    assert parse_bs(to_ascii_digits("२०८१-०८-०६")) == BsDate(2081, 8, 6)


@pytest.mark.parametrize("ad", [AD_MIN - timedelta(days=1), AD_MAX + timedelta(days=1)])
def test_ad_outside_range_is_refused(ad: date) -> None:
    assert "is outside the supported range 1918-04-13..2039-04-14" in _message(ad_to_bs, ad)


def test_ad_to_bs_refuses_datetimes() -> None:
    with pytest.raises(TypeError, match="takes a date, not a datetime"):
        ad_to_bs(datetime(2024, 4, 13, tzinfo=UTC))


def test_month_lengths_are_29_to_32_and_years_365_or_366() -> None:
    for year in range(BS_MIN.year, BS_MAX.year + 1):
        lengths = [days_in_bs_month(year, month) for month in range(1, 13)]
        assert all(29 <= n <= 32 for n in lengths), year
        assert sum(lengths) in (365, 366), year


def test_every_day_in_range_converts_to_the_next_ad_day() -> None:
    """Walk the whole table: consecutive BS days are consecutive AD days, both ways."""
    ad = AD_MIN
    for year in range(BS_MIN.year, BS_MAX.year + 1):
        for month in range(1, 13):
            for day in range(1, days_in_bs_month(year, month) + 1):
                bs = BsDate(year, month, day)
                assert bs_to_ad(bs) == ad
                assert ad_to_bs(ad) == bs
                ad += timedelta(days=1)
    assert ad == AD_MAX + timedelta(days=1)


@pytest.mark.parametrize("year", [1975, 2000, 2045, 2080, 2081, 2082, 2083, 2095])
def test_month_boundaries(year: int) -> None:
    for month in range(1, 13):
        first = BsDate(year, month, 1)
        last = BsDate(year, month, days_in_bs_month(year, month))
        for bs in (first, last):
            assert ad_to_bs(bs_to_ad(bs)) == bs
            assert parse_bs(format_bs(bs)) == bs
        assert (bs_to_ad(last) - bs_to_ad(first)).days == last.day - 1
        if (year, month) != (BS_MAX.year, 12):
            following = BsDate(year + month // 12, month % 12 + 1, 1)
            assert bs_to_ad(last) + timedelta(days=1) == bs_to_ad(following)
    if year > BS_MIN.year:
        new_year = BsDate(year, 1, 1)
        eve = BsDate(year - 1, 12, days_in_bs_month(year - 1, 12))
        assert bs_to_ad(eve) + timedelta(days=1) == bs_to_ad(new_year)
        assert bs_to_ad(new_year).month == 4 and bs_to_ad(new_year).day in (12, 13, 14, 15)


@st.composite
def _bs_dates(draw: st.DrawFn) -> BsDate:
    year = draw(st.integers(BS_MIN.year, BS_MAX.year))
    month = draw(st.integers(1, 12))
    length = days_in_bs_month(year, month)
    day = draw(st.one_of(st.sampled_from([1, length]), st.integers(1, length)))
    return BsDate(year, month, day)


@settings(max_examples=300)
@given(_bs_dates())
def test_bs_to_ad_to_bs_is_identity(bs: BsDate) -> None:
    assert ad_to_bs(bs_to_ad(bs)) == bs
    assert parse_bs(format_bs(bs)) == bs


@settings(max_examples=300)
@given(st.dates(min_value=AD_MIN, max_value=AD_MAX))
def test_ad_to_bs_to_ad_is_identity(ad: date) -> None:
    assert bs_to_ad(ad_to_bs(ad)) == ad


@given(st.dates(min_value=AD_MIN, max_value=AD_MAX - timedelta(days=1)))
def test_next_ad_day_is_next_bs_day(ad: date) -> None:
    today, tomorrow = ad_to_bs(ad), ad_to_bs(ad + timedelta(days=1))
    if today.day < days_in_bs_month(today.year, today.month):
        assert tomorrow == BsDate(today.year, today.month, today.day + 1)
    elif today.month < 12:
        assert tomorrow == BsDate(today.year, today.month + 1, 1)
    else:
        assert tomorrow == BsDate(today.year + 1, 1, 1)


# --- dates and times --------------------------------------------------------------------------


def test_ddmmyyyy_round_trip() -> None:
    assert parse_ddmmyyyy("21/11/2026") == date(2026, 11, 21)
    assert parse_ddmmyyyy("29/02/2024") == date(2024, 2, 29)
    assert format_ddmmyyyy(date(2026, 1, 5)) == "05/01/2026"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1/11/2026", "date_of_birth '1/11/2026' must be DD/MM/YYYY, zero-padded ASCII digits"),
        ("21-11-2026", "must be DD/MM/YYYY"),
        ("2026/11/21", "must be DD/MM/YYYY"),
        ("21/11/26", "must be DD/MM/YYYY"),
        ("21/11/2026 ", "must be DD/MM/YYYY"),
        ("٢١/١١/٢٠٢٦", "must be DD/MM/YYYY"),
        ("29/02/2026", "date_of_birth '29/02/2026' is not a real date"),
        ("11/21/2026", "is not a real date"),
        ("00/01/2026", "is not a real date"),
    ],
)
def test_invalid_ddmmyyyy(text: str, message: str) -> None:
    assert message in _message(parse_ddmmyyyy, text, "date_of_birth")


@given(st.dates(min_value=date(1000, 1, 1)))
def test_ddmmyyyy_is_identity(value: date) -> None:
    assert parse_ddmmyyyy(format_ddmmyyyy(value)) == value


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-11-21T14:15:30+06:30", datetime(2026, 11, 21, 7, 45, 30, tzinfo=UTC)),
        ("2026-11-21T05:40:00+05:45", datetime(2026, 11, 20, 23, 55, tzinfo=UTC)),
        ("2026-01-01T00:00:00-05:00", datetime(2026, 1, 1, 5, 0, tzinfo=UTC)),
        ("2026-11-21T14:15:30.25Z", datetime(2026, 11, 21, 14, 15, 30, 250000, tzinfo=UTC)),
    ],
)
def test_local_timestamps_become_utc(text: str, utc: datetime) -> None:
    result = to_utc(text)
    assert result == utc and result.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-21T14:15:30", "sent_at '2026-11-21T14:15:30' has no UTC offset; naive"),
        ("2026-11-21 14:15:30+06:30", "must be YYYY-MM-DDTHH:MM:SS[.ffffff] followed by Z"),
        ("2026-11-21T14:15+06:30", "must be YYYY-MM-DDTHH:MM:SS"),
        ("2026-11-21T14:15:30+0630", "must be YYYY-MM-DDTHH:MM:SS"),
        ("2026-11-21T14:15:30+15:00", "UTC offset '+15:00' is outside -12:00..+14:00"),
        ("2026-11-21T14:15:30+05:75", "has minutes above 59"),
        ("2026-02-30T14:15:30+06:30", "sent_at '2026-02-30T14:15:30+06:30' is not a real date"),
        ("2026-11-21T24:00:00+06:30", "is not a real date and time"),
    ],
)
def test_invalid_timestamps(text: str, message: str) -> None:
    assert message in _message(to_utc, text, "sent_at")


def test_utc_to_partner_offsets() -> None:
    moment = datetime(2026, 11, 21, 7, 45, 30, tzinfo=UTC)
    assert format_at_offset(moment, "+06:30") == "2026-11-21T14:15:30+06:30"
    assert format_at_offset(moment, "+05:45") == "2026-11-21T13:30:30+05:45"
    assert format_at_offset(moment, "-03:00") == "2026-11-21T04:45:30-03:00"
    late = datetime(2026, 11, 21, 18, 30, tzinfo=UTC)
    assert local_date(late, "+05:45") == date(2026, 11, 22)
    assert local_date(late, "+05:00") == date(2026, 11, 21)


def test_naive_datetimes_and_bad_offsets_are_refused() -> None:
    naive = datetime(2026, 11, 21, 7, 45)
    assert "datetime is naive" in _message(format_at_offset, naive, "+06:30")
    assert "datetime is naive" in _message(local_date, naive, "+06:30")
    assert "must be +HH:MM or -HH:MM" in _message(parse_offset, "0545")
    assert "must be +HH:MM" in _message(parse_offset, "+5:45")


_offsets = st.sampled_from(["+07:00", "+06:30", "+05:45", "+05:00", "+06:00", "+08:00", "-12:00",
                            "+14:00", "+00:00"])  # fmt: skip


@given(st.datetimes(timezones=st.just(UTC)), _offsets)
def test_utc_to_offset_to_utc_is_identity(moment: datetime, offset: str) -> None:
    text = format_at_offset(moment, offset)
    assert text.endswith(offset)
    assert to_utc(text) == moment
