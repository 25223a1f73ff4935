"""The shared detached-JWS vectors, made with independent JOSE implementations."""

from __future__ import annotations

import hashlib
import json

import pytest

from gateway.errors import AuthError
from gateway.protocol.signing import KeyRing, Signer, b64url_decode, verify_detached
from tests.fixtures import FIXTURES_DIR

VECTORS = FIXTURES_DIR / "vectors" / "jws-detached.json"
DATA = json.loads(VECTORS.read_text())["vectors"]


def _ring(jwk: dict[str, str]) -> KeyRing:
    ring = KeyRing()
    party = jwk["kid"].rsplit("-", 2)[0]
    ring.add_keyset(party, {"keys": [jwk]})
    return ring


@pytest.mark.parametrize("vector", DATA, ids=[v["name"] for v in DATA])
def test_vector_verifies_or_is_refused_with_its_code(vector: dict) -> None:
    body = b64url_decode(vector["body_b64"])
    ring = _ring(vector["jwk"])
    if vector["expect"] == "valid":
        signed = verify_detached(body, vector["x_jws_signature"], ring)
        assert signed.kid == vector["jwk"]["kid"]
    else:
        with pytest.raises(AuthError) as info:
            verify_detached(body, vector["x_jws_signature"], ring)
        assert info.value.code == vector["expect"]


def test_ed25519_vector_is_reproduced_byte_for_byte() -> None:
    vector = next(v for v in DATA if v["name"] == "ed25519-claim-notify")
    body = b64url_decode(vector["body_b64"])
    assert hashlib.sha256(body).hexdigest() == vector["body_sha256"]
    signer = Signer("ID-BPJSTK", [vector["private_jwk"]])
    assert signer.sign(body) == vector["x_jws_signature"]


def test_signature_from_another_partners_key_is_invalid() -> None:
    vector = next(v for v in DATA if v["name"] == "ed25519-claim-notify")
    ring = KeyRing()
    ring.add_keyset("ID-BPJSTK", {"keys": [vector["jwk"]]})
    other = Signer("XX-OTHER", [{**vector["private_jwk"], "kid": "XX-OTHER-1"}])
    forged = other.sign(b"{}").replace(other.sign(b"{}").split(".")[0],
                                       vector["x_jws_signature"].split(".")[0])
    with pytest.raises(AuthError) as info:
        verify_detached(b"{}!", forged, ring)
    assert info.value.code == "signature_invalid"


@pytest.mark.parametrize("header", ["", "abc", "a.b", "a.b.c.d"])
def test_malformed_signature_headers(header: str) -> None:
    ring = _ring(DATA[0]["jwk"])
    with pytest.raises(AuthError) as info:
        verify_detached(b"{}", header, ring)
    assert info.value.code == ("signature_missing" if header == "" else "signature_invalid")


def test_registry_refuses_a_duplicate_kid() -> None:
    from gateway.errors import ConfigError

    ring = _ring(DATA[0]["jwk"])
    with pytest.raises(ConfigError, match="already used by"):
        ring.add_keyset("XX-OTHER", {"keys": [DATA[0]["jwk"]]})


def test_registry_refuses_a_private_key() -> None:
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError, match="private key"):
        KeyRing().add_keyset("ID-BPJSTK", {"keys": [DATA[0]["private_jwk"]]})
