"""Issue 13: identity documents from every region are read correctly, each table is checked
against a second, independent source, and refusals name the partner's own field.

Independent samples (not taken from the table the code uses):
- ID regions: kecamatan 33.75.01 Pekalongan Barat (laravel-nusa documentation, its own
  Kepmendagri import); 11.71.01 Baiturrahman, Banda Aceh (a public location seed, "117101");
  regency 91.01 Merauke before the 2022 split (a Flutter app's option list, "9101 KAB. MERAUKE");
  65.03 Nunukan and 65.71 Tarakan (Kalimantan Utara, created by UU 20/2012).
- PK regions: stdnum's PROVINCES (1-7) plus 8 for AJK as domain.md records it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from adapters.partners.common.cnic import parse_cnic
from adapters.partners.common.ctz import canonical_district, parse_ctz
from adapters.partners.np_feb.adapter import _date_in
from adapters.partners.pk_mophrd import PkMophrdAdapter
from gateway.protocol.envelope import Worker
from gateway.protocol.national_ids import (
    check_nik_matches_worker,
    nik_region,
    normalise_national_id,
)
from tests.fixtures import FIXTURES_DIR


def _error(scheme: str, value: str) -> str:
    with pytest.raises(ValueError) as info:
        normalise_national_id(scheme, value)
    return str(info.value)


# ---- Indonesia: NIK region digits ------------------------------------------------------------


@pytest.mark.parametrize(
    ("nik", "region"),
    [
        ("3375011408900001", "33.75.01"),  # Pekalongan Barat (laravel-nusa docs)
        ("1171011408900001", "11.71.01"),  # Baiturrahman, Banda Aceh
        ("6503011408900001", "65.03.01"),  # Sebatik, Nunukan (Kalimantan Utara, since 2012)
        ("6571015408900002", "65.71.01"),  # Tarakan Barat, woman
        ("9301011408900001", "93.01.01"),  # Merauke in Papua Selatan (since 2022)
        ("9601011408900001", "96.01.01"),  # Sorong in Papua Barat Daya (since 2022)
        ("9101021408900001", "91.01.02"),  # Merauke before the 2022 split: a NIK keeps its code
        ("9201031408900001", "92.01.03"),  # Sorong before the 2022 split
        # 64.07.01 moved from Kutai Barat to Mahakam Ulu (2013): a retired number, in a gap.
        ("6407011408900001", "64.07.01"),
    ],
)
def test_niks_from_border_and_new_provinces_are_accepted(nik: str, region: str) -> None:
    assert normalise_national_id("ID-NIK", nik) == nik
    assert nik_region(nik) == region


@pytest.mark.parametrize(
    ("nik", "message"),
    [
        # Kecamatan 99 does not exist in Pekalongan: all six digits are checked now.
        ("3375991408900001", "district code '337599' (digits 1-6) is not a kecamatan of"),
        ("9901011408900001", "region code '9901' (province and regency, digits 1-4)"),
        ("3299011408900001", "is not a regency of Jawa Barat"),
        ("9101001408900001", "district code '00' (digits 5-6) must be 01-99"),
    ],
)
def test_unknown_region_digits_are_refused_naming_them(nik: str, message: str) -> None:
    assert message in _error("ID-NIK", nik)


def test_every_table_entry_names_a_source_and_date() -> None:
    from gateway.protocol.national_ids import _id_regions

    data = _id_regions()
    assert "Kepmendagri No. 300.2.2-2138 Tahun 2025" in data["source"]
    assert data["date"] == "2025" and data["former_source"]
    assert len(data["provinces"]) == 38 and len(data["regencies"]) == 514
    assert {"65", "93", "94", "95", "96"} <= set(data["provinces"])
    # Every former code points at exactly one current regency.
    assert all(f["now"] in data["regencies"] for f in data["former_regencies"].values())


# ---- Indonesia: NIK birth date against the worker ------------------------------------------


def _worker(nik: str, dob: str) -> dict[str, Any]:
    return {"name": "Siti", "date_of_birth": dob, "nationality": "ID",
            "national_id": {"scheme": "ID-NIK", "value": nik}}


def test_nik_birth_date_matching_the_worker_is_accepted() -> None:
    Worker.model_validate(_worker("3201145403910002", "1991-03-14"))  # woman, 14 + 40
    Worker.model_validate(_worker("3201141403910002", "1991-03-14"))  # man


def test_nik_birth_date_mismatch_is_refused_naming_both_fields() -> None:
    with pytest.raises(ValidationError) as info:
        Worker.model_validate(_worker("3201145403910002", "1991-03-15"))
    text = str(info.value)
    assert "national_id ID-NIK encodes the birth date 14-03-91" in text
    assert "date_of_birth is 1991-03-15" in text


def test_nik_sex_rule_is_checked_when_sex_is_given() -> None:
    check_nik_matches_worker("3201145403910002", dt.date(1991, 3, 14), "F")
    with pytest.raises(ValueError, match=r"says female \(day \+ 40\), but sex is 'M'"):
        check_nik_matches_worker("3201145403910002", dt.date(1991, 3, 14), "M")


# ---- Pakistan: CNIC region 8 and Urdu digits -----------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "81102-1234567-1",  # Azad Jammu and Kashmir
        "8110212345671",
        "۸۱۱۰۲-۱۲۳۴۵۶۷-۱",  # Urdu (Extended Arabic-Indic) digits
        "٨١١٠٢-١٢٣٤٥٦٧-١",  # Arabic-Indic digits
        "۳۵۲۰۲۱۲۳۴۵۶۷۱",
    ],
)
def test_cnic_from_ajk_and_in_urdu_digits_is_accepted(text: str) -> None:
    assert parse_cnic(text) in ("8110212345671", "3520212345671")


def test_cnic_region_9_is_refused_naming_the_digit() -> None:
    assert "first digit '9' must be a region code 1-8" in _error("PK-CNIC", "9110212345671")


# ---- Nepal: pre-2015 districts, official split names, Devanagari BS dates ------------------


@pytest.mark.parametrize(
    ("district", "canonical"),
    [
        ("Nawalparasi", "NAWALPARASI"),  # certificates issued before the 2015 split
        ("RUKUM", "RUKUM"),
        ("Nawalparasi (Bardaghat Susta East)", "NAWALPARASI_EAST"),
        ("Nawalparasi (Bardaghat Susta West)", "NAWALPARASI_WEST"),
        ("Rukum (East)", "RUKUM_EAST"),
        ("East Rukum", "RUKUM_EAST"),
        ("West Rukum", "RUKUM_WEST"),
        ("Rukum Paschim", "RUKUM_WEST"),
    ],
)
def test_old_and_official_split_district_names_are_accepted(district: str,
                                                            canonical: str) -> None:
    assert canonical_district(district) == canonical
    assert parse_ctz(district, "12/34") == f"{canonical}:12-34"


def test_an_unknown_district_is_still_refused() -> None:
    with pytest.raises(ValueError, match="not one of Nepal's 77 districts"):
        canonical_district("Nawalparasi North")


@pytest.mark.parametrize(
    ("bs", "ad"),
    [("२०८१-०८-०६", "2024-11-21"), ("2081-08-06", "2024-11-21")],
)
def test_bs_dates_in_devanagari_digits_are_accepted(bs: str, ad: str) -> None:
    assert _date_in(bs) == ad


def test_pk_native_fixture_with_urdu_cnic_decodes() -> None:

    path = (FIXTURES_DIR / "partners" / "PK-MOPHRD"
            / "valid" / "in.claim.notify.json")
    data = orjson.loads(path.read_bytes())
    nid = data["body"]["worker"]["nationalId"]
    digits = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
    nid["value"] = nid["value"].translate(digits)
    item = PkMophrdAdapter().decode(orjson.dumps(data))[0]
    assert item.envelope is not None
    canonical = orjson.loads(item.envelope)
    assert canonical["payload"]["worker"]["national_id"]["value"].isascii()


# ---- Myanmar: Zawgyi text, temporary-card spellings ------------------------------------------


def _mm_line(name: str) -> bytes:

    path = (FIXTURES_DIR / "partners" / "MM-SSB"
            / "valid" / "in.claim.notify.jsonl")
    data = orjson.loads(path.read_bytes().splitlines()[0])
    data["payload"]["worker"]["name"] = name
    return orjson.dumps(data)


def test_unicode_burmese_name_is_accepted() -> None:
    from adapters.partners.mm_ssb import MmSsbAdapter

    canonical = orjson.loads(MmSsbAdapter().decode_one(_mm_line("မင်းဆင်းရွှေ")))
    assert canonical["payload"]["worker"]["name"] == "မင်းဆင်းရွှေ"


def test_zawgyi_name_is_refused_naming_the_field() -> None:
    from adapters.partners.mm_ssb import MmSsbAdapter
    from gateway.errors import ProblemError

    with pytest.raises(ProblemError) as info:
        MmSsbAdapter().decode_one(_mm_line("မင္းဆင္းေရႊ"))  # the same name typed in Zawgyi
    assert "payload.worker.name: text is Zawgyi-encoded, not Unicode; refused" in str(
        info.value.detail)


@pytest.mark.parametrize("text", ["12/OUKAMA(R)123456", "12/OUKAMA(Y)123456",
                                  "၁၂/ဥကမ(ယာယီ)၁၂၃၄၅၆"])
def test_temporary_card_letters_of_both_lists_are_accepted(text: str) -> None:
    from adapters.partners.common.nrc import parse_nrc

    assert parse_nrc(text) == "12/OUKAMA(R)123456"
