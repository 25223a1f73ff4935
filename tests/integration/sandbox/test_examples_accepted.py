"""Every message ``gateway example`` writes is accepted by the hub, as a person would send it.

Partner messages go to ``POST /v1/messages`` in the partner's own wire format, with its media
type and a detached JWS from the partner's development key; hub messages go to the back office
(``POST /v1/backoffice/messages``) with a service token. Through the real HTTP app, on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from gateway.composition import partner_adapters
from gateway.protocol.envelope import HUB_TO_PARTNER, PARTNER_TO_HUB
from gateway.protocol.keys import load_signer
from gateway.protocol.partners import load_registry
from gateway.runtime.bootstrap import DEV_PARTNERS, dev_key_path
from gateway.sandbox.examples import example
from tests.support.partners import NOW

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("partner", [p.id for p in DEV_PARTNERS])
async def test_every_partner_message_is_accepted(client: httpx.AsyncClient, instance: Path,
                                                 partner: str) -> None:
    registry = load_registry(instance / "partners.toml", frozenset(partner_adapters()))
    signer = load_signer(dev_key_path(instance / "partners.toml", partner), partner)
    for type_ in sorted(PARTNER_TO_HUB):
        made = example(type_, partner, registry, now=NOW)  # the hub's clock in these tests
        r = await client.post(made.path, content=made.body, headers={
            "Content-Type": made.media_type, "X-JWS-Signature": signer.sign(made.body)})
        assert r.status_code in (200, 202), (type_, r.text)
        if r.status_code == 200:  # a batch partner: one result per line
            [line] = [orjson.loads(x) for x in r.content.splitlines() if x.strip()]
            assert line["status"] == "accepted", (type_, line)
        else:
            assert b"accepted" in r.content, (type_, r.text)


async def test_every_hub_message_is_accepted_by_the_back_office(
        client: httpx.AsyncClient, instance: Path, backoffice_token: str) -> None:
    registry = load_registry(instance / "partners.toml", frozenset(partner_adapters()))
    for type_ in sorted(set(HUB_TO_PARTNER) - set(PARTNER_TO_HUB)):
        made = example(type_, "PK-MOPHRD", registry, now=NOW)
        r = await client.post(made.path, content=made.body, headers={
            "Content-Type": made.media_type, "Authorization": f"Bearer {backoffice_token}"})
        assert r.status_code == 202, (type_, r.text)
        assert r.json()["status"] == "queued"
