"""Issue 13 through the real app (SQLite and PostgreSQL): valid documents from every region are
accepted, invalid ones refused with a problem that names the partner's field."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import orjson
import pytest

from tests.support.partners import TestPartner, claim_payload

pytestmark = pytest.mark.anyio


def _worker(nik: str, dob: str = "1991-03-14") -> dict[str, object]:
    return {"name": "Siti Rahayu Nur Aini", "date_of_birth": dob, "nationality": "ID",
            "passport_no": "C1234567", "national_id": {"scheme": "ID-NIK", "value": nik}}


@pytest.mark.parametrize("nik", ["6503015403910002", "9101025403910002", "9301015403910002"])
async def test_nik_from_nunukan_and_papua_is_accepted(client, instance: Path, nik: str) -> None:
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    body, headers = partner.signed(partner.envelope(payload=claim_payload(worker=_worker(nik))))
    resp = await client.post("/v1/messages", content=body, headers=headers)
    assert resp.status_code == 202, resp.text


async def test_nik_birth_date_mismatch_is_a_422_naming_the_field(client, instance: Path) -> None:
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    payload = claim_payload(worker=_worker("6503015403910002", dob="1991-03-15"))
    body, headers = partner.signed(partner.envelope(payload=payload))
    resp = await client.post("/v1/messages", content=body, headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "schema_violation"
    assert "date_of_birth is 1991-03-15" in resp.text


def _mm_batch(nrcs: list[str]) -> bytes:
    from tests.fixtures import FIXTURES_DIR

    template = orjson.loads((FIXTURES_DIR / "partners" / "MM-SSB" / "valid"
                             / "in.claim.notify.jsonl").read_bytes().splitlines()[0])
    lines = []
    for i, nrc in enumerate(nrcs):
        line = json.loads(json.dumps(template))
        line["id"] = str(uuid.UUID(int=0x0193A3C4_6F1E_7C2A_9B1D_2F4E5A6B0000 + i))
        line["payload"]["worker"]["national_id"]["value"] = nrc
        lines.append(orjson.dumps(line))
    return b"\n".join(lines) + b"\n"


async def test_mm_nrcs_of_every_region_through_the_app(client, instance: Path) -> None:
    partner = TestPartner.from_registry(instance / "partners.toml", "MM-SSB")
    body = _mm_batch(["၁၃/မရန(နိုင်)၁၂၃၄၅၆", "၁၃/မယန(နိုင်)၁၂၃၄၅၆", "3/MaWaTa(N)123456",
                      "၁၄/ဥကမ(နိုင်)၁၂၃၄၅၆", "13/MAYANA(N)123456"])
    resp = await client.post("/v1/messages", content=body, headers={
        "X-JWS-Signature": partner.sign(body), "Content-Type": "application/x-ndjson"})
    assert resp.status_code == 200, resp.text
    results = [orjson.loads(line) for line in resp.content.splitlines()]
    assert [r["status"] for r in results] == ["accepted"] * 3 + ["refused"] * 2, results
    unknown, ambiguous = results[3]["problem"], results[4]["problem"]
    assert unknown["code"] == ambiguous["code"] == "schema_violation"
    assert unknown["detail"].startswith("line 4: payload.worker.national_id: ")
    assert "is not a township code of state 14 (AYEYAWADY)" in unknown["detail"]
    assert "'MAYANA' is ambiguous in state 13" in ambiguous["detail"]


def _np_claim(district: str) -> bytes:
    from tests.fixtures import FIXTURES_DIR

    xml = (FIXTURES_DIR / "partners" / "NP-FEB" / "valid" / "in.claim.notify.xml").read_text()
    return xml.replace("<district>KATHMANDU</district>",
                       f"<district>{district}</district>").encode()


@pytest.mark.parametrize(("district", "status"), [("काठमाडौं", 202), ("नवलपरासी", 202),
                                                  ("लन्डन", 422)])
async def test_np_devanagari_district_through_the_app(client, instance: Path, district: str,
                                                      status: int) -> None:
    partner = TestPartner.from_registry(instance / "partners.toml", "NP-FEB")
    body = _np_claim(district)
    resp = await client.post("/v1/messages", content=body, headers={
        "X-JWS-Signature": partner.sign(body), "Content-Type": "application/xml"})
    assert resp.status_code == status, resp.text
    if status == 422:
        assert resp.json()["code"] == "schema_violation"
        assert "febMessage.payload.worker.nationalId" in resp.json()["detail"]
        assert "'लन्डन' is not one of Nepal's 77 districts" in resp.json()["detail"]
