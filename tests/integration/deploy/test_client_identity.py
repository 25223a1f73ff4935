"""The client identity a TLS proxy vouches for, checked against the message's signer.

Through the real app on a real database; the proxy itself is tested in
tests/e2e/deploy/test_mtls_proxy.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.composition import Hub, build_hub
from gateway.config import Settings
from gateway.protocol.partners import load_registry
from gateway.storage.tables import messages
from tests.support.partners import TestPartner

pytestmark = pytest.mark.anyio

HEADER = "X-PX-Client-Partner"


@pytest.fixture
async def checked_hub(settings: Settings, clock) -> AsyncIterator[Hub]:
    the_hub = build_hub(settings.model_copy(update={"client_identity_header": HEADER}),
                        clock=clock)
    yield the_hub
    await the_hub.close()


@pytest.fixture
async def checked(checked_hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(hub=checked_hub, background_jobs=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
        yield c


async def _stored(hub: Hub) -> int:
    async with hub.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(messages))).scalar_one())


async def test_certificate_of_the_signer_passes(checked, checked_hub, bpjstk: TestPartner) -> None:
    body, headers = bpjstk.signed(bpjstk.envelope())
    resp = await checked.post("/v1/messages", content=body,
                              headers={**headers, HEADER: "ID-BPJSTK"})
    assert resp.status_code == 202, resp.text
    assert await _stored(checked_hub) == 1


async def test_certificate_of_another_partner_is_refused(checked, checked_hub,
                                                         bpjstk: TestPartner) -> None:
    body, headers = bpjstk.signed(bpjstk.envelope())
    resp = await checked.post("/v1/messages", content=body,
                              headers={**headers, HEADER: "PK-MOPHRD"})
    assert resp.status_code == 403
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "client_identity_mismatch"
    assert "PK-MOPHRD" in resp.json()["detail"] and "ID-BPJSTK" in resp.json()["detail"]
    assert await _stored(checked_hub) == 0


async def test_partner_requiring_a_certificate_is_refused_without_one(
        checked, checked_hub, bpjstk: TestPartner) -> None:
    partner = checked_hub.registry.get("ID-BPJSTK")
    assert partner is not None
    checked_hub.registry._partners["ID-BPJSTK"] = replace(partner,
                                                          require_client_certificate=True)
    body, headers = bpjstk.signed(bpjstk.envelope())
    for extra in ({}, {HEADER: ""}):
        resp = await checked.post("/v1/messages", content=body, headers={**headers, **extra})
        assert resp.status_code == 403
        assert resp.json()["code"] == "client_certificate_required"
    assert await _stored(checked_hub) == 0
    ok = await checked.post("/v1/messages", content=body, headers={**headers, HEADER: "ID-BPJSTK"})
    assert ok.status_code == 202


async def test_no_header_setting_means_no_check(client, hub, bpjstk: TestPartner) -> None:
    """Off by default: a header a client made up is ignored, not believed or refused."""
    assert hub.settings.client_identity_header is None
    body, headers = bpjstk.signed(bpjstk.envelope())
    resp = await client.post("/v1/messages", content=body,
                             headers={**headers, HEADER: "PK-MOPHRD"})
    assert resp.status_code == 202


def test_registry_reads_require_client_certificate(instance: Path) -> None:
    path = instance / "partners.toml"
    text = path.read_text().replace("[partners.ID-BPJSTK]\n",
                                    "[partners.ID-BPJSTK]\nrequire_client_certificate = true\n")
    path.write_text(text)
    registry = load_registry(path)
    bpjs, other = registry.get("ID-BPJSTK"), registry.get("PK-MOPHRD")
    assert bpjs is not None and bpjs.require_client_certificate
    assert other is not None and not other.require_client_certificate
