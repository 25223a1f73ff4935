"""Issue 13, Myanmar NRC: the township table of all 14 states/regions, keyed by Burmese code.

The table (gateway/protocol/data/mm_nrc_townships.json) comes from laranex/laravel-myanmar-nrc;
the second, independent source sampled here is the `nrc` table of a public phpMyAdmin dump
(database `stationary`, generated 12 Mar 2024, found by code search on GitHub), which spells
the codes its own way (``BhaMaNa``, ``SahDaNa``, ``AuKaMa``, ``HpaRaHsa``, ``RaZaNa``).
"""

from __future__ import annotations

import json

import pytest

from adapters.partners.common.nrc import format_nrc_burmese, parse_nrc
from gateway.protocol import mm_townships
from gateway.protocol.national_ids import normalise_national_id


def _raw() -> dict[str, object]:
    from importlib import resources

    text = resources.files("gateway.protocol").joinpath("data", "mm_nrc_townships.json")
    data: dict[str, object] = json.loads(text.read_text("utf-8"))
    return data


def test_table_names_its_source_and_date_and_covers_every_state() -> None:
    raw = _raw()
    assert "laranex/laravel-myanmar-nrc" in str(raw["source"])
    assert raw["retrieved"] == "2026-12-01"
    assert sorted(mm_townships.states()) == list(range(1, 15))
    counts = {n: len(mm_townships.townships(n)) for n in range(1, 15)}
    assert sum(counts.values()) > 400 and min(counts.values()) >= 8, counts


def test_every_source_spelling_is_a_romanisation_of_its_burmese_code() -> None:
    # A row whose romanised code does not spell its Burmese code is a data error (the source
    # had several, listed under "corrections"); this keeps new rows honest.
    states = _raw()["states"]
    assert isinstance(states, dict)
    for number, state in states.items():
        for code, spelling, _en, _mm in state["townships"]:
            found = mm_townships.candidates(int(number), spelling)
            assert code in {t.code for t in found}, (number, code, spelling)


@pytest.mark.parametrize("state", range(1, 15))
def test_canonical_spellings_are_lossless_within_each_state(state: int) -> None:
    townships = mm_townships.townships(state)
    assert len({t.canonical for t in townships.values()}) == len(townships)
    for code, township in townships.items():
        canonical = f"{state}/{township.canonical}(N)123456"
        assert normalise_national_id("MM-NRC", canonical) == canonical
        burmese = format_nrc_burmese(canonical)
        assert burmese.split("/")[1].split("(")[0] == code
        assert parse_nrc(burmese) == canonical


def test_townships_whose_romanisations_coincide_stay_distinct() -> None:
    # Shan State: မရန (Mong Yai, Mong Hsu) and မယန (Mong Yan) are both MAYANA letter by letter.
    assert parse_nrc("၁၃/မရန(နိုင်)၁၂၃၄၅၆") == "13/MARANA(N)123456"
    assert parse_nrc("၁၃/မယန(နိုင်)၁၂၃၄၅၆") == "13/MAYANA(N)123456"
    assert parse_nrc("၁၃/မဆတ(နိုင်)၁၂၃၄၅၆") == "13/MAHSATA(N)123456"  # Muse
    assert parse_nrc("၁၃/မစတ(နိုင်)၁၂၃၄၅၆") == "13/MASATA(N)123456"  # Mong Hsat
    assert format_nrc_burmese("13/MARANA(N)123456") == "၁၃/မရန(နိုင်)၁၂၃၄၅၆"
    assert format_nrc_burmese("13/MAYANA(N)123456") == "၁၃/မယန(နိုင်)၁၂၃၄၅၆"


@pytest.mark.parametrize("spelling", ["MAYANA", "MaSaTa", "NASANA"])
def test_an_ambiguous_romanisation_is_refused_naming_the_candidates(spelling: str) -> None:
    with pytest.raises(ValueError, match="is ambiguous in state 13: it may be") as info:
        parse_nrc(f"13/{spelling}(N)123456")
    assert "send the township code in Burmese script" in str(info.value)


# (state, spelling) pairs from the second source, resolving to the Burmese code shown.
_SECOND_SOURCE = [
    (1, "BhaMaNa", "ဗမန"), (1, "SahDaNa", "ဆဒန"), (1, "PhaKaNa", "ဖကန"), (1, "KhaLaPha", "ခလဖ"),
    (1, "MaNyaNa", "မညန"), (1, "AhGaYa", "အဂယ"), (1, "PaTaAh", "ပတအ"), (1, "SahPaBa", "ဆပဘ"),
    (2, "PhaSaNa", "ဖဆန"), (2, "HpaRaHsa", "ဖရဆ"), (2, "RaThaNa", "ရသန"), (2, "DaMaSa", "ဒမဆ"),
    (3, "BaAhNa", "ဘအန"), (3, "MaWaTa", "မဝတ"), (3, "BaThaSah", "ဘသဆ"), (3, "KaKaYa", "ကကရ"),
    (4, "HaKhaNa", "ဟခန"), (4, "SahMaNa", "ဆမန"), (4, "RaZaNa", "ရဇန"), (4, "RaKhaDa", "ရခဒ"),
    (5, "KhaAuNa", "ခဥန"), (5, "HtaPaKha", "ထပခ"), (5, "YaMaPa", "ယမပ"), (5, "KaLaHta", "ကလထ"),
    (6, "HtaWaNa", "ထဝန"), (6, "KhaMaKa", "ခမက"), (6, "TaThaya", "တသရ"), (6, "KaLaAh", "ကလအ"),
    (7, "TaNgaNa", "တငန"), (7, "NyaLaPa", "ညလပ"), (7, "PaKhaNa", "ပခန"), (7, "ZaKaNa", "ဇကန"),
    (8, "NgaPhaNa", "ငဖန"), (8, "YaNaKha", "ရနခ"), (8, "GaGaNa", "ဂဂန"), (8, "MaHtaNa", "မထန"),
    (9, "PaAuLa", "ပဥလ"), (9, "DaKhaTha", "ဒခသ"), (9, "AuTaTha", "ဥတသ"), (9, "UTaTha", "ဥတသ"),
    (9, "MaHtaLa", "မထလ"), (9, "NaHtaKa", "နထက"),
    (10, "ThaPhaYa", "သဖရ"), (10, "KhaZaNa", "ခဇန"), (10, "MaLaMa", "မလမ"),
    (11, "YaBhaNa", "ရဗန"), (11, "YaThaTa", "ရသတ"), (11, "SaTaNa", "စတန"), (11, "TaPaWa", "တပဝ"),
    (12, "AuKaMa", "ဥကမ"), (12, "UKaMa", "ဥကမ"), (12, "BhaHaNa", "ဗဟန"), (12, "BhaTaHta", "ဗတထ"),
    (12, "SaKaKha", "ဆကခ"), (12, "RaPaTha", "ရပသ"), (12, "ThaGaKa", "သဃက"), (12, "KaKaKa", "ကကက"),
    (13, "TaKhaLa", "တခလ"), (13, "MaHpaTa", "မဖတ"), (13, "PaSahTa", "ပဆတ"), (13, "NaTaRa", "နတရ"),
    (13, "KhaYaHa", "ခရဟ"), (13, "TaMaNya", "တမည"),
    (14, "DaNaPha", "ဓနဖ"), (14, "NgaThaKha", "ငသခ"), (14, "NgaHsaNa", "ငဆန"),
    (14, "RaThaYa", "ရသရ"), (14, "HaThaTa", "ဟသတ"), (14, "MaAhPa", "မအပ"),
]


@pytest.mark.parametrize(("state", "spelling", "code"), _SECOND_SOURCE)
def test_second_source_spellings_resolve_to_one_township(state: int, spelling: str,
                                                         code: str) -> None:
    expected = mm_townships.townships(state)[code].canonical
    assert parse_nrc(f"{state}/{spelling}(N)123456") == f"{state}/{expected}(N)123456"


def test_the_second_sources_sample_nrc_is_accepted() -> None:
    assert parse_nrc("12/SaKaKha(N)046659") == "12/SAKAKHA(N)046659"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("၁/မကန(နိုင်)၁၂၃၄၅၆", "1/MAKANA(N)123456"),  # Myitkyina, Kachin
        ("၃/မဝတ(နိုင်)၁၂၃၄၅၆", "3/MAWATA(N)123456"),  # Myawaddy, Kayin (the border crossing)
        ("၅/မရန(ဧည့်)၁၂၃၄၅", "5/MAYANA(E)12345"),  # Monywa, Sagaing: ရ unmarked, no collision
        ("၉/မထလ(နိုင်)၀၀၀၀၀၁", "9/MAHTALA(N)000001"),  # Meiktila, Mandalay
        ("၁၁/စတန(နိုင်)၁၂၃၄၅၆", "11/SATANA(N)123456"),  # Sittwe, Rakhine
        ("၁၃/တကန(နိုင်)၁၂၃၄၅၆", "13/TAKANA(N)123456"),  # Taunggyi, Shan
        ("၁၄/ဟသတ(နိုင်)၁၂၃၄၅၆", "14/HATHATA(N)123456"),  # Hinthada, Ayeyarwady
        ("၁/ပ၀န(နိုင်)၁၂၃၄၅၆", "1/PAWANA(N)123456"),  # digit zero typed for the letter wa
    ],
)
def test_burmese_nrcs_from_every_region_are_accepted(text: str, canonical: str) -> None:
    assert parse_nrc(text) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("၁၂/ကကဇ(နိုင်)၁၂၃၄၅၆", "township code 'ကကဇ' in Burmese script is not a township code "
                                "of state 12 (YANGON)"),
        ("၁၄/ဥကမ(နိုင်)၁၂၃၄၅၆", "is not a township code of state 14 (AYEYAWADY)"),
        ("14/OUKAMA(N)123456", "'OUKAMA' is not a township code of state 14 (AYEYAWADY) in any "
                               "known romanisation"),
    ],
)
def test_a_township_not_of_its_state_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_nrc(text)
    assert message in str(info.value)


def test_canonical_value_must_be_a_township_of_its_state() -> None:
    with pytest.raises(ValueError, match="MM-NRC township code 'OUKAMA' is not the canonical "
                                         "spelling of a township of state 14"):
        normalise_national_id("MM-NRC", "14/OUKAMA(N)123456")
    with pytest.raises(ValueError, match="'MAYANA'|'MARANA'"):
        normalise_national_id("MM-NRC", "5/MARANA(N)123456")  # marked only where it collides
