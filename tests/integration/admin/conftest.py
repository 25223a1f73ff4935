"""Admin API fixtures: tokens of the development issuer, the fake rail, the audit trail."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey
from sqlalchemy import select

from gateway.admin.auth import DEV_AUDIENCE, DEV_ISSUER, mint_token
from gateway.composition import Hub
from gateway.config import Settings
from gateway.storage.tables import admin_audit
from tests.support.fakes import FakeRail

Headers = dict[str, str]


@pytest.fixture
async def dispatcher(hub: Hub, rail: FakeRail) -> AsyncIterator[Any]:
    yield hub.dispatcher(batch=50)


@pytest.fixture
def as_(hub: Hub, settings: Settings) -> Callable[..., Headers]:
    """``as_("alice", "operator")``: the headers of a token for alice with those roles."""
    def headers(user: str, *roles: str) -> Headers:
        return {"Authorization": "Bearer " + mint_token(settings, user=user, roles=list(roles),
                                                        minutes=10)}
    return headers


@pytest.fixture
def dev_key(hub: Hub, settings: Settings) -> dict[str, Any]:
    """The development issuer's private JWK (to forge tokens that differ in one claim)."""
    assert hub.admin.verifier.issuer == DEV_ISSUER  # built on first use, with its key
    data: dict[str, Any] = json.loads(settings.admin_dev_key.read_text())
    return data


def forge(jwk: dict[str, Any], **claims: Any) -> str:
    t = int(time.time())
    body = {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": "mallory", "roles": ["admin"],
            "iat": t, "exp": t + 300} | claims
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode({"alg": "EdDSA", "kid": jwk["kid"]}, body, OKPKey.import_key(jwk),
                      algorithms=["EdDSA"])


async def trail(hub: Hub) -> list[Any]:
    """Every audit record, oldest first."""
    async with hub.engine.connect() as conn:
        return list((await conn.execute(select(admin_audit).order_by(admin_audit.c.pk))).all())


def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body
