"""``gateway example``'s messages: every type, every partner, valid against ``schemas/``.

The canonical form must validate against the published JSON Schemas (the envelope and its
type's payload) and the models; the partner's wire form must decode back, through the
partner's own adapter, to that same canonical envelope; and each example must be fresh.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from gateway.composition import partner_adapters
from gateway.errors import ConfigError
from gateway.protocol.envelope import HUB_TO_PARTNER, PARTNER_TO_HUB, PAYLOADS, Envelope
from gateway.protocol.jsonschema import SCHEMA_DIR
from gateway.protocol.partners import PartnerRegistry, load_registry
from gateway.runtime.bootstrap import DEV_PARTNERS, write_dev_registry
from gateway.sandbox.examples import example

PARTNERS = [p.id for p in DEV_PARTNERS]
NOW = datetime(2026, 12, 2, 1, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> PartnerRegistry:
    path = tmp_path_factory.mktemp("registry") / "partners.toml"
    write_dev_registry(path)
    return load_registry(path, frozenset(partner_adapters()))


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("type_", sorted(PARTNER_TO_HUB))
@pytest.mark.parametrize("partner", PARTNERS)
def test_a_partner_message_validates_against_the_schemas(
        registry: PartnerRegistry, partner: str, type_: str) -> None:
    made = example(type_, partner, registry, form="canonical", now=NOW)
    env = json.loads(made.body)
    _validator("envelope").validate(env)
    _validator(type_).validate(env["payload"])
    model = Envelope.model_validate(env)
    model.payload_model()
    assert (env["sender"], env["recipient"], env["type"]) == (partner, "MY-PERKESO", type_)
    assert env["sent_at"] == "2026-12-02T01:00:00Z"
    assert (made.path, made.backoffice, made.media_type) == ("/v1/messages", False,
                                                             "application/json")


@pytest.mark.parametrize("type_", sorted(PARTNER_TO_HUB))
@pytest.mark.parametrize("partner", PARTNERS)
def test_the_wire_form_is_the_same_message_in_the_partners_format(
        registry: PartnerRegistry, partner: str, type_: str) -> None:
    canonical = example(type_, partner, registry, form="canonical", now=NOW, ref="X-CLM-1")
    wire = example(type_, partner, registry, now=NOW, ref="X-CLM-1")
    adapter = partner_adapters()[registry.get(partner).adapter]  # type: ignore[union-attr]
    assert wire.media_type == adapter.wire_media_type
    [item] = adapter.decode(wire.body)
    assert item.error is None and item.envelope is not None
    decoded, expected = orjson.loads(item.envelope), json.loads(canonical.body)
    assert decoded["id"] != expected["id"]  # each example is a fresh message
    decoded["id"] = expected["id"]
    # ... and so are the ids it refers to in these two types
    if type_ == "message.cancel":
        decoded["payload"]["message_id"] = expected["payload"]["message_id"]
    if type_ == "receipt.ack":
        for key in ("receipt_id", "message_id"):
            decoded["payload"]["receipt"][key] = expected["payload"]["receipt"][key]
    assert Envelope.model_validate(decoded) == Envelope.model_validate(expected)


@pytest.mark.parametrize("type_", sorted(set(HUB_TO_PARTNER) - set(PARTNER_TO_HUB)))
def test_a_hub_message_is_the_back_office_request_that_sends_it(
        registry: PartnerRegistry, type_: str) -> None:
    made = example(type_, "NP-FEB", registry, now=NOW)
    body = json.loads(made.body)
    assert (made.path, made.backoffice) == ("/v1/backoffice/messages", True)
    assert (body["partner_id"], body["type"]) == ("NP-FEB", type_)
    _validator(type_).validate(body["payload"])
    PAYLOADS[type_].model_validate(body["payload"])


def test_each_example_is_fresh(registry: PartnerRegistry) -> None:
    first = json.loads(example("claim.notify", "PK-MOPHRD", registry, form="canonical").body)
    second = json.loads(example("claim.notify", "PK-MOPHRD", registry, form="canonical").body)
    assert first["id"] != second["id"]
    assert first["payload"]["claim_ref"] != second["payload"]["claim_ref"]
    assert first["correlation_id"] == first["payload"]["claim_ref"]
    sent = datetime.fromisoformat(first["sent_at"])
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 120  # "now", not a fixed date
    cancel = json.loads(example("message.cancel", "ID-BPJSTK", registry,
                                form="canonical").body)
    again = json.loads(example("message.cancel", "ID-BPJSTK", registry,
                               form="canonical").body)
    assert cancel["payload"]["message_id"] != again["payload"]["message_id"]


@pytest.mark.parametrize(("type_", "partner", "says"), [
    ("claim.notfy", "ID-BPJSTK", "unknown message type 'claim.notfy' (one of "),
    ("claim.notify", "XX-NOPE", "partner 'XX-NOPE' is not in the registry (one of BD-WEWB"),
])
def test_an_unknown_type_or_partner_is_a_config_error(
        registry: PartnerRegistry, type_: str, partner: str, says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        example(type_, partner, registry)


def test_a_type_outside_the_partners_allowed_types_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "partners.toml"
    write_dev_registry(path)
    text = path.read_text(encoding="utf-8").replace(
        '[partners.NP-FEB]\n', '[partners.NP-FEB]\nallowed_types = ["claim.notify"]\n')
    path.write_text(text, encoding="utf-8")
    registry = load_registry(path, frozenset(partner_adapters()))
    example("claim.notify", "NP-FEB", registry)
    with pytest.raises(ConfigError, match="NP-FEB may not send death.notify"):
        example("death.notify", "NP-FEB", registry)
