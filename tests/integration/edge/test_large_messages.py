"""Signed messages up to the body limit verify through every adapter (issue 9, item 1).

The JOSE library caps a compact JWS's payload at 128,000 base64 characters (96,000 bytes);
the hub's limit is ``max_body_bytes`` (1 MiB), so a detached signature must not go through
that cap. Each case is a ``document.deliver`` whose document makes the wire exactly the size.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.composition import Hub
from gateway.protocol.keys import load_signer
from gateway.runtime.bootstrap import dev_key_path
from gateway.sandbox.simulators import PARTNER_SIMULATORS
from tests.support.partners import NOW

pytestmark = pytest.mark.anyio

ADAPTERS = {"ID-BPJSTK": "px1", "MM-SSB": "mm_ssb", "NP-FEB": "np_feb",
            "PK-MOPHRD": "pk_mophrd", "BD-WEWB": "px1"}
LIMIT = 1_048_576


def _envelope(pid: str, content: bytes, filename: str) -> dict[str, Any]:
    ref = f"{pid[:2]}-CLM-0001"
    return {"id": "0193a3c4-6f1e-7c2a-9b1d-" + hashlib.sha256(content).hexdigest()[:12],
            "type": "document.deliver", "version": 1, "sender": pid, "recipient": "MY-PERKESO",
            "sent_at": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "correlation_id": ref,
            "payload": {"claim_ref": ref, "request_id": "REQ-1", "documents": [{
                "kind": "medical_report", "sha256": hashlib.sha256(content).hexdigest(),
                "filename": filename, "media_type": "application/pdf",
                "content_b64": base64.b64encode(content).decode()}]}}


def wire_of_size(sim: Any, pid: str, size: int) -> bytes:
    """The partner's wire bytes of a document.deliver exactly ``size`` bytes long."""
    def wire(n: int, filename: str = "f") -> bytes:
        body: bytes = sim.wire(_envelope(pid, os.urandom(n), filename))
        return body + b"\n" if sim.adapter.batch else body
    base = len(wire(0))
    n = (size - base) // 4 * 3  # base64 grows in steps of 4 characters per 3 bytes
    short = size - len(wire(n))
    assert 0 <= short < 260, short
    body = wire(n, "f" * (1 + short))
    assert len(body) == size
    return body


def _simulator(instance: Path, pid: str) -> Any:
    signer = load_signer(dev_key_path(instance / "partners.toml", pid), pid)
    return PARTNER_SIMULATORS[ADAPTERS[pid]](pid, signer)


@pytest.mark.parametrize("size", [200_000, 900_000, LIMIT])
@pytest.mark.parametrize("pid", list(ADAPTERS))
async def test_large_signed_message_is_accepted(client: httpx.AsyncClient, hub: Hub,
                                                instance: Path, pid: str, size: int) -> None:
    assert hub.settings.max_body_bytes == LIMIT
    sim = _simulator(instance, pid)
    body = wire_of_size(sim, pid, size)
    resp = await sim.send_raw(client, body)
    assert resp.status_code in (200, 202), resp.text[:300]
    if sim.adapter.batch:
        line = orjson.loads(resp.content.splitlines()[0])
        assert line["status"] == "accepted", line


@pytest.mark.parametrize("pid", list(ADAPTERS))
async def test_one_byte_over_the_limit_is_413(client: httpx.AsyncClient, instance: Path,
                                              pid: str) -> None:
    sim = _simulator(instance, pid)
    resp = await sim.send_raw(client, wire_of_size(sim, pid, LIMIT + 1))
    assert resp.status_code == 413, resp.text[:300]
    assert resp.json()["code"] == "payload_too_large"
