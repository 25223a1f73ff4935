"""OIDC token checks of the admin verifier (keys from a file; a URL's refresh on unknown kid)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from gateway.admin.auth import AdminVerifier, JwksCache, build_verifier, mint_token
from gateway.config import Settings
from gateway.errors import AuthError, ConfigError, ForbiddenError

pytestmark = pytest.mark.anyio
ISS, AUD = "https://idp.perkeso.example/realms/ops", "px-admin"


def _rsa(kid: str) -> RSAKey:
    key = RSAKey.generate_key(2048, parameters={"kid": kid})
    return key


def _token(key: Any, alg: str = "RS256", **claims: Any) -> str:
    t = int(time.time())
    body = {"iss": ISS, "aud": [AUD, "account"], "sub": "u-1", "exp": t + 60,
            "realm_access": {"roles": ["operator", "offline_access"]}} | claims
    return jwt.encode({"alg": alg, "kid": key.kid}, body, key, algorithms=[alg])


def _verifier(jwks: JwksCache) -> AdminVerifier:
    return AdminVerifier(issuer=ISS, audience=AUD, jwks=jwks, roles_claim="realm_access.roles",
                         algorithms=["RS256", "ES256"])


async def test_file_keys_nested_roles_and_refusals(tmp_path: Path) -> None:
    key = _rsa("k1")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    v = _verifier(JwksCache(file=path))
    who = await v.authenticate("Bearer " + _token(key))
    assert who.user == "u-1" and who.roles == frozenset({"operator"})
    for bad in (_token(key, iss="https://elsewhere"), _token(key, aud="other"),
                _token(key, exp=int(time.time()) - 120), _token(_rsa("k1")),
                _token(_rsa("unknown"))):
        with pytest.raises(AuthError):
            await v.authenticate("Bearer " + bad)
    hs = OctKey.generate_key(256, parameters={"kid": "k1"})
    with pytest.raises(AuthError):  # a symmetric alg is never accepted
        await v.authenticate("Bearer " + jwt.encode({"alg": "HS256", "kid": "k1"},
                                                    {"iss": ISS}, hs, algorithms=["HS256"]))
    with pytest.raises(ForbiddenError):
        await v.authenticate("Bearer " + _token(key, realm_access={"roles": ["guest"]}))


async def test_url_keys_are_fetched_again_for_an_unknown_kid() -> None:
    old, new = ECKey.generate_key("P-256", parameters={"kid": "old"}), \
        ECKey.generate_key("P-256", parameters={"kid": "new"})
    published = [old]
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url)
        return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in published]})

    ticks = [1000.0]
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        cache = JwksCache(url="https://idp.example/jwks", http=http, monotonic=lambda: ticks[0])
        v = _verifier(cache)
        assert (await v.authenticate("Bearer " + _token(old, "ES256"))).user == "u-1"
        published.append(new)  # the provider rotates
        with pytest.raises(AuthError):  # within REFETCH_SECONDS of the last fetch
            await v.authenticate("Bearer " + _token(new, "ES256"))
        ticks[0] += 31
        assert (await v.authenticate("Bearer " + _token(new, "ES256"))).user == "u-1"
    assert len(calls) == 2


def test_production_needs_oidc_and_never_mints(tmp_path: Path) -> None:
    prod = Settings(env="production", signing_key_file=tmp_path / "hub.jwk.json")
    with pytest.raises(ConfigError) as err:
        build_verifier(prod)
    assert "GATEWAY_ADMIN_OIDC_ISSUER" in str(err.value)
    with pytest.raises(ConfigError):
        mint_token(prod, user="u", roles=["admin"], minutes=5)
    assert not (tmp_path / "admin-issuer.jwk.json").exists()  # no default account, no key
    dev = Settings(signing_key_file=tmp_path / "hub.jwk.json")
    for roles, minutes in ((["root"], 5), (["viewer"], 0), (["viewer"], 10_000)):
        with pytest.raises(ConfigError):
            mint_token(dev, user="u", roles=roles, minutes=minutes)
