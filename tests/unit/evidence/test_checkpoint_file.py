"""A checkpoint export file is trusted only for what the hub's key signed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.evidence.checkpoints import Checkpoint, _payload, export_checkpoints, load_checkpoints
from gateway.protocol.envelope import HUB_PARTY
from gateway.protocol.signing import KeyRing, Signer, generate_private_jwk

HUB = Signer(HUB_PARTY, [generate_private_jwk("MY-PERKESO-unit-1")])
OTHER = Signer("ID-BPJSTK", [generate_private_jwk("ID-BPJSTK-unit-1")])


def _ring(*signers: Signer) -> KeyRing:
    ring = KeyRing()
    for s in signers:
        ring.add_keyset(s.party, s.jwks())
    return ring


def _cp(seq: int, signer: Signer = HUB) -> Checkpoint:
    payload = _payload(seq, "ab" * 32, datetime(2026, 12, 2, 1, 0, tzinfo=UTC))
    return Checkpoint(seq, "ab" * 32, "2026-12-02T01:00:00.000000Z", signer.kid, payload,
                      signer.sign(payload.encode()))


def _write(tmp_path: Path, cps: list[Checkpoint]) -> Path:
    path = tmp_path / "cp.json"
    path.write_text(export_checkpoints(cps, HUB.jwks()))
    return path


def test_a_good_file_loads_in_seq_order(tmp_path: Path) -> None:
    got = load_checkpoints(_write(tmp_path, [_cp(9), _cp(3)]), _ring(HUB))
    assert [c.seq for c in got] == [3, 9]
    assert got[0].point().label == "checkpoint signed 2026-12-02T01:00:00.000000Z"


def test_an_edited_seq_outside_the_payload_is_ignored_and_inside_it_is_refused(
        tmp_path: Path) -> None:
    path = _write(tmp_path, [_cp(5)])
    data = json.loads(path.read_text())
    data["checkpoints"][0]["seq"] = 99  # the unsigned copy: not what verify uses
    path.write_text(json.dumps(data))
    assert load_checkpoints(path, _ring(HUB))[0].seq == 5
    data["checkpoints"][0]["payload"] = data["checkpoints"][0]["payload"].replace(
        '"seq":5', '"seq":6')
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"checkpoints\[0\]: the hub's signature does not"):
        load_checkpoints(path, _ring(HUB))


def test_a_checkpoint_signed_by_anyone_but_the_hub_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="signed by ID-BPJSTK, not the hub"):
        load_checkpoints(_write(tmp_path, [_cp(5, OTHER)]), _ring(HUB, OTHER))
    with pytest.raises(ConfigError, match="unknown|does not verify"):
        load_checkpoints(_write(tmp_path, [_cp(5, OTHER)]), _ring(HUB))


@pytest.mark.parametrize("content, match", [
    ("{", "is not JSON"),
    ('{"format": "other", "checkpoints": []}', "is not a px-evidence-checkpoints/1 file"),
    ('{"format": "px-evidence-checkpoints/1", "checkpoints": [{"payload": 1}]}',
     "needs a 'payload' string"),
])
def test_malformed_files_are_one_clear_error(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "cp.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_checkpoints(path, _ring(HUB))
    with pytest.raises(ConfigError, match="does not exist"):
        load_checkpoints(tmp_path / "missing.json", _ring(HUB))
