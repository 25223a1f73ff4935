"""The checked-in JSON Schemas under schemas/ are exactly what the models generate."""

from __future__ import annotations

from gateway.protocol.envelope import PAYLOADS
from gateway.protocol.jsonschema import SCHEMA_DIR, render_schemas


def test_checked_in_schemas_are_current() -> None:
    rendered = render_schemas()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.schema.json")}
    stale = sorted(n for n in rendered.keys() | on_disk.keys()
                   if rendered.get(n) != on_disk.get(n))
    assert not stale, f"schemas/ is stale ({', '.join(stale)}): run `gateway schemas write`"


def test_one_schema_per_message_type() -> None:
    names = set(render_schemas())
    assert {f"{t}.schema.json" for t in PAYLOADS} | {"envelope.schema.json",
                                                     "receipt.schema.json"} == names
