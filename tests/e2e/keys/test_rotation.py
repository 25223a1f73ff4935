"""Partner key rotation with no refused message (PostgreSQL only): two ``gateway serve``
processes on one database, a sender per process posting signed claims without pause, and a full
add -> activate -> retire cycle through the admin API while they run.

The sender behaves as a partner told to rotate: it signs with its old key until the hub has
answered the add and activate calls and the propagation window the hub states
(``effective_everywhere_by``, i.e. ``GATEWAY_PARTNER_KEYS_CACHE_SECONDS``) has passed, then
with the new one. The key is retired (maker-checker) only after every sender has had a
new-key message accepted, as the overlap guarantees in production (here it is 0 h).

Every response during the cycle is 2xx. Afterwards the old key is refused by both processes
(``401 key_retired``), and ``gateway audit verify --signatures`` verifies every record, those
signed with the retired key included, after the partners file no longer lists it.

Bounded: each phase waits at most PHASE_SECONDS; the whole test about 15-30 s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.admin.auth import mint_token
from gateway.config import Settings
from gateway.protocol.keys import write_private_key
from gateway.protocol.signing import Signer, generate_private_jwk, public_jwk
from gateway.runtime.bootstrap import DEV_PARTNERS, write_dev_registry
from tests.support.databases import PgTemplate
from tests.support.partners import TestPartner, claim_payload
from tests.support.processes import Server, gateway_env, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PARTNER = "ID-BPJSTK"
CACHE_SECONDS = 1.0
PHASE_SECONDS = 30.0
MIN_PER_PHASE = 5  # accepted messages per sender in each phase before the next step


@pytest.fixture
def pg_url(pg_template: PgTemplate) -> Iterator[str]:
    name = asyncio.run(pg_template.clone())
    try:
        yield pg_template.url(name)
    finally:
        asyncio.run(pg_template.drop(name))


class Traffic:
    """Senders that post claims signed with ``self.partner`` until stopped."""

    def __init__(self, partner: TestPartner, urls: list[str]) -> None:
        self.partner = partner
        self.urls = urls
        self.statuses: Counter[int] = Counter()
        self.refusals: list[str] = []
        self.by_kid: Counter[tuple[str, str]] = Counter()  # (url, kid) -> accepted
        self.stop = asyncio.Event()
        self.n = 0

    async def send(self, http: httpx.AsyncClient, url: str) -> None:
        while not self.stop.is_set():
            partner = self.partner  # the key in use when this request is signed
            self.n += 1
            ref = f"KEYROT-{self.n:06d}"
            env = partner.envelope(payload=claim_payload(ref), correlation_id=ref,
                                   sent_at=datetime.now(UTC))
            body, headers = partner.signed(env)
            r = await http.post(f"{url}/v1/messages", content=body, headers=headers)
            self.statuses[r.status_code] += 1
            if r.is_success:
                self.by_kid[(url, partner.signer.kid)] += 1
            else:
                self.refusals.append(f"{url} {partner.signer.kid}: {r.status_code} {r.text}")

    def accepted_everywhere(self, kid: str, at_least: int) -> bool:
        return all(self.by_kid[(u, kid)] >= at_least for u in self.urls)


async def _until(check: Any, what: str) -> None:
    deadline = time.monotonic() + PHASE_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _checked(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def test_rotation_refuses_no_message(pg_url: str, tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    write_private_key(instance / "hub.jwk.json", "MY-PERKESO-test-1")
    registry = instance / "partners.toml"
    write_dev_registry(registry, tuple(p for p in DEV_PARTNERS if p.id == PARTNER))
    env = gateway_env(instance, pg_url, GATEWAY_DISPATCH_IN_SERVE="false",
                      GATEWAY_PARTNER_KEYS_CACHE_SECONDS=str(CACHE_SECONDS),
                      GATEWAY_KEY_RETIRE_OVERLAP_HOURS="0")
    servers = [Server(env, tmp_path), Server(env, tmp_path)]
    try:
        old = TestPartner.from_registry(registry, PARTNER)
        new_private = generate_private_jwk(f"{PARTNER}-2027")
        new = TestPartner(PARTNER, Signer(PARTNER, [new_private]))
        settings = Settings(database_url=pg_url, partners_file=registry,
                            signing_key_file=instance / "hub.jwk.json")

        def as_(user: str, role: str) -> dict[str, str]:
            return {"Authorization": "Bearer " + mint_token(settings, user=user, roles=[role],
                                                            minutes=10)}

        traffic = Traffic(old, [s.url for s in servers])
        keys = f"/admin/v1/partners/{PARTNER}/keys"

        async def run() -> None:
            async with httpx.AsyncClient(timeout=10) as http:
                senders = [asyncio.create_task(traffic.send(http, s.url)) for s in servers]
                a, b = servers[0].url, servers[1].url
                await _until(lambda: traffic.accepted_everywhere(old.signer.kid,
                                                                 MIN_PER_PHASE), "old key")
                added = _checked(await http.post(a + keys, headers=as_("ada", "admin"), json={
                    "jwk": public_jwk(new_private), "reason": "BPJSTK rotates to 2027"}), 201)
                assert added["state"] == "added"
                done = _checked(await http.post(
                    f"{b}{keys}/{new.signer.kid}/activate", headers=as_("ben", "admin"),
                    json={"reason": "BPJSTK confirmed the switch date"}), 200)
                assert done["state"] == "active"
                # The partner switches once the hub's stated propagation window has passed.
                switch_at = datetime.fromisoformat(done["effective_everywhere_by"])
                await _until(lambda: datetime.now(UTC) > switch_at, "the propagation window")
                await asyncio.sleep(0.2)  # margin for the two hosts' clocks (one host here)
                traffic.partner = new
                await _until(lambda: traffic.accepted_everywhere(new.signer.kid,
                                                                 MIN_PER_PHASE), "new key")
                proposal = _checked(await http.post(
                    f"{a}{keys}/{old.signer.kid}/retire", headers=as_("ada", "admin"),
                    json={"reason": "rotation complete"}), 201)
                approved = _checked(await http.post(
                    f"{b}/admin/v1/proposals/{proposal['id']}/approve",
                    headers=as_("carol", "approver")), 200)
                assert approved["state"] == "executed", approved
                seen = sum(traffic.by_kid.values())
                await _until(lambda: sum(traffic.by_kid.values()) >= seen + 4 * MIN_PER_PHASE,
                             "traffic after the retire")
                traffic.stop.set()
                await asyncio.gather(*senders)

                # After the propagation window, the retired key is refused by every process.
                await asyncio.sleep(CACHE_SECONDS + 0.2)
                for s in servers:
                    env_ = old.envelope(sent_at=datetime.now(UTC))
                    body, headers = old.signed(env_)
                    r = await http.post(f"{s.url}/v1/messages", content=body, headers=headers)
                    assert r.status_code == 401 and r.json()["code"] == "key_retired", r.text
                listed = _checked(await http.get(a + keys, headers=as_("ada", "admin")), 200)
                states = {k["kid"]: k["state"] for k in listed["keys"]}
                assert states == {old.signer.kid: "retired", new.signer.kid: "active"}

        asyncio.run(run())
        assert traffic.refusals == [], traffic.refusals[:5]
        assert set(traffic.statuses) == {202}, traffic.statuses
        assert traffic.accepted_everywhere(old.signer.kid, MIN_PER_PHASE)
        assert traffic.accepted_everywhere(new.signer.kid, MIN_PER_PHASE)
    finally:
        for s in servers:
            s.stop()

    # The operator tidies the partners file: only the new key is listed. Records signed with
    # the retired key still verify, from the key table.
    jwks_file = instance / "keys" / f"{PARTNER}.jwks.json"
    jwks_file.write_text(json.dumps({"keys": [public_jwk(new_private)]}))
    chained = run_cli(["audit", "chain"], env, tmp_path)
    assert chained.returncode == 0, chained.stderr
    verified = run_cli(["audit", "verify", "--signatures"], env, tmp_path, timeout=120)
    assert verified.returncode == 0, verified.stderr
    total = sum(traffic.by_kid.values())  # the refused probes were never stored
    assert f"{2 * total} signatures checked" in verified.stdout, verified.stdout
    assert "unverifiable" not in verified.stdout, verified.stdout
