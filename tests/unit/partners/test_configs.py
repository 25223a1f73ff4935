"""Each partner adapter's typed config: defaults are today's wire profile, the adapter reads
its values from the config it is given, and a bad config is refused when it is built."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from pydantic import ValidationError

from adapters.partners.mm_ssb import MmSsbAdapter, MmSsbConfig
from adapters.partners.np_feb import NpFebAdapter, NpFebConfig
from adapters.partners.pk_mophrd import PkMophrdAdapter, PkMophrdConfig
from adapters.partners.px1 import Px1Adapter, Px1Config
from gateway.errors import InvalidMessageError
from gateway.ports.partner import PartnerAdapter

ENVELOPE = {"version": 1, "id": "0193a3c4-0000-7000-8000-000000000001", "type": "claim.status",
            "sender": "MY-PERKESO", "recipient": "PK-MOPHRD", "sent_at": "2026-11-21T08:15:30Z",
            "correlation_id": "CLM-1", "payload": {"claim_ref": "CLM-1", "status": "received"}}


def test_defaults_are_the_wire_profiles() -> None:
    assert (MmSsbConfig().offset, NpFebConfig().offset, PkMophrdConfig().offset) == (
        "+06:30", "+05:45", "+05:00")
    assert MmSsbConfig().max_lines == 500
    adapters: list[tuple[PartnerAdapter, str]] = [
        (MmSsbAdapter(), "application/x-ndjson"), (NpFebAdapter(), "application/xml"),
        (PkMophrdAdapter(), "application/json"), (Px1Adapter(), "application/json")]
    for adapter, wire in adapters:
        assert adapter.wire_media_type == adapter.receipt_media_type == wire
        assert wire in adapter.media_types
    assert MmSsbAdapter().media_types == {"application/x-ndjson", "application/jsonl"}
    assert NpFebAdapter().media_types == {"application/xml", "text/xml"}


def test_the_adapter_reads_its_config() -> None:
    small = MmSsbAdapter(MmSsbConfig(max_lines=2))
    with pytest.raises(InvalidMessageError, match="the batch has 3 lines; at most 2"):
        small.decode(b"{}\n{}\n{}\n")
    assert len(small.decode(b"{}\n{}\n")) == 2
    wire = PkMophrdAdapter(PkMophrdConfig(offset="+04:00")).encode(orjson.dumps(ENVELOPE))
    assert orjson.loads(wire)["header"]["sentAt"] == "2026-11-21T12:15:30+04:00"
    wire = PkMophrdAdapter().encode(orjson.dumps(ENVELOPE))
    assert orjson.loads(wire)["header"]["sentAt"] == "2026-11-21T13:15:30+05:00"
    assert Px1Adapter(Px1Config(media_types=frozenset({"application/json", "text/json"}))
                      ).media_types == {"application/json", "text/json"}


@pytest.mark.parametrize("make", [
    lambda: MmSsbConfig(offset="+6:30"),
    lambda: NpFebConfig(offset="+15:00"),
    lambda: MmSsbConfig(max_lines=0),
    lambda: PkMophrdConfig(wire_media_type="text/plain"),
    lambda: Px1Config(media_types=frozenset()),
    lambda: NpFebConfig.model_validate({"unknown": 1}),
])
def test_bad_configs_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValidationError):
        make()


def test_configs_are_frozen() -> None:
    with pytest.raises(ValidationError):
        MmSsbConfig().max_lines = 1
