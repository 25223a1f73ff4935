"""Recorded partner wire messages: each valid one translates to a canonical envelope that
validates against schemas/, and back to bytes the partner (its codec) reads the same way."""

from __future__ import annotations

import json

import jsonschema
import orjson
import pytest

from gateway.composition import partner_adapters
from gateway.protocol.envelope import PAYLOADS, Envelope
from gateway.protocol.jsonschema import SCHEMA_DIR
from gateway.runtime.bootstrap import DEV_PARTNERS
from tests.fixtures import FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "partners"
ADAPTER = {p.id: p.adapter for p in DEV_PARTNERS}
ADAPTERS = partner_adapters()
VALID = sorted((pid, f.name) for pid in ADAPTER for f in (FIXTURES / pid / "valid").iterdir())


def _schema(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def _canonical(partner_id: str, wire: bytes) -> bytes:
    adapter = ADAPTERS[ADAPTER[partner_id]]
    items = adapter.decode(wire)
    assert len(items) == 1 and items[0].error is None, items[0].error
    assert items[0].envelope is not None
    return items[0].envelope


def test_every_partner_has_every_type() -> None:
    for pid in ADAPTER:
        types = {name.split(".", 1)[1].rsplit(".", 1)[0]
                 for name in (f.name for f in (FIXTURES / pid / "valid").iterdir())}
        assert {t.split("_native")[0] for t in types} == set(PAYLOADS), pid


@pytest.mark.parametrize(("partner_id", "name"), VALID)
def test_valid_fixture_translates_and_round_trips(partner_id: str, name: str) -> None:
    wire = (FIXTURES / partner_id / "valid" / name).read_bytes()
    canonical = _canonical(partner_id, wire)
    data = orjson.loads(canonical)
    jsonschema.validate(data, _schema("envelope.schema.json"))
    jsonschema.validate(data["payload"], _schema(f"{data['type']}.schema.json"))
    Envelope.model_validate(data).payload_model()
    adapter = ADAPTERS[ADAPTER[partner_id]]
    again = adapter.encode(canonical)
    assert orjson.loads(_canonical(partner_id, again)) == data
    if "_native" not in name:  # recorded by the adapter: written back byte for byte
        assert again == wire.rstrip(b"\n")


def test_non_latin_text_survives_in_the_wire() -> None:
    np_wire = (FIXTURES / "NP-FEB" / "valid" / "in.claim.notify.xml").read_bytes()
    assert "राम बहादुर थापा".encode() in np_wire
    assert b"<dateOfBirth>2047-01-01</dateOfBirth>" in np_wire  # 1990-04-14 in BS
    native = orjson.loads(_canonical("NP-FEB", (FIXTURES / "NP-FEB" / "valid" /
                                                "in.claim.notify_native.xml").read_bytes()))
    assert native["payload"]["worker"]["national_id"]["value"] == "KATHMANDU:27-01-71-12345"
    mm = orjson.loads(_canonical("MM-SSB", (FIXTURES / "MM-SSB" / "valid" /
                                            "in.claim.notify.jsonl").read_bytes().rstrip()))
    assert mm["payload"]["worker"]["national_id"]["value"] == "12/OUKAMA(N)123456"
    assert mm["sent_at"] == "2026-11-21T08:01:30Z"
    bd = orjson.loads(_canonical("BD-WEWB", (FIXTURES / "BD-WEWB" / "valid" /
                                             "in.claim.notify.json").read_bytes()))
    assert bd["payload"]["claimant"]["name"] == "ফাতেমা বেগম"
