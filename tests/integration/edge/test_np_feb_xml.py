"""NP-FEB XML is read exactly or refused (issue 9, item 7): unknown attributes are not
silently dropped, and a declared encoding other than the UTF-8 of the bytes is refused rather
than stored as mojibake. Through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from gateway.composition import Hub
from gateway.protocol.keys import load_signer
from gateway.runtime.bootstrap import dev_key_path
from gateway.storage.tables import messages
from tests.fixtures import FIXTURES_DIR
from tests.support.partners import TestPartner

pytestmark = pytest.mark.anyio

CLAIM = (FIXTURES_DIR / "partners/NP-FEB/valid/in.claim.notify.xml").read_bytes()


async def _post(client: httpx.AsyncClient, instance: Path, body: bytes) -> httpx.Response:
    feb = TestPartner("NP-FEB", load_signer(dev_key_path(instance / "partners.toml", "NP-FEB"),
                                            "NP-FEB"))
    return await client.post("/v1/messages", content=body, headers={
        "X-JWS-Signature": feb.sign(body), "Content-Type": "application/xml"})


async def _refused(resp: httpx.Response, hub: Hub, needle: str) -> None:
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "schema_violation"
    assert needle in resp.json()["detail"], resp.json()["detail"]
    async with hub.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(messages))).scalar_one() == 0


@pytest.mark.parametrize(("old", "new", "needle"), [
    (b"<worker>", b'<worker confidential="yes">', "febMessage.payload.worker: attribute"),
    (b'version="1">', b'version="1" lang="ne">', "febMessage: attribute"),
    (b"<claimRef>", b'<claimRef nil="yes">', "febMessage.payload.claimRef: attribute nil"),
])
async def test_unknown_attributes_are_refused(client: httpx.AsyncClient, hub: Hub,
                                             instance: Path, old: bytes, new: bytes,
                                             needle: str) -> None:
    assert old in CLAIM
    await _refused(await _post(client, instance, CLAIM.replace(old, new, 1)), hub, needle)


async def test_declared_encoding_must_match_the_utf8_bytes(client: httpx.AsyncClient, hub: Hub,
                                                          instance: Path) -> None:
    body = CLAIM.replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'", 1)
    await _refused(await _post(client, instance, body), hub, "UTF-8")


async def test_bytes_that_are_not_utf8_are_refused(client: httpx.AsyncClient, hub: Hub,
                                                   instance: Path) -> None:
    body = CLAIM.replace("राम".encode(), "Ram\xe9".encode("latin-1"), 1)  # not UTF-8
    resp = await _post(client, instance, body)
    assert resp.status_code in (400, 422), resp.text
    assert "UTF-8" in resp.json()["detail"], resp.json()["detail"]


async def test_the_fixture_itself_is_accepted(client: httpx.AsyncClient, instance: Path) -> None:
    resp = await _post(client, instance, CLAIM)
    assert resp.status_code == 202, resp.text
