"""Issue 13 through the real app (SQLite and PostgreSQL): valid documents from every region are
accepted, invalid ones refused with a problem that names the partner's field."""

from __future__ import annotations

from pathlib import Path

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
