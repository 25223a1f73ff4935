"""Key rotation rules without a database: the hub's key file (``nbf``, retired keys), the
overlap before a partner key may be retired, and the ring's precedence of table over file."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import Settings
from gateway.errors import AuthError, ConfigError
from gateway.messages.partner_keys import StoredKey, build_ring, retire_blocker
from gateway.protocol.keys import add_hub_key, load_signer, retire_hub_key, write_private_key
from gateway.protocol.signing import (
    KeyRing,
    Signer,
    generate_private_jwk,
    public_jwk,
    verify_detached,
)

T0 = 1_800_000_000


def _kid_of(signature: str) -> str:
    header = signature.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "==="))["kid"])


def test_a_scheduled_hub_key_is_published_at_once_and_signs_from_its_nbf() -> None:
    now = [float(T0)]
    old, new = generate_private_jwk("hub-1"), generate_private_jwk("hub-2") | {"nbf": T0 + 3600}
    signer = Signer("MY-PERKESO", [old, new], clock=lambda: now[0])
    assert [k["kid"] for k in signer.jwks()["keys"]] == ["hub-1", "hub-2"]
    assert signer.jwks()["keys"][1]["nbf"] == T0 + 3600
    assert signer.kid == "hub-1" and _kid_of(signer.sign(b"x")) == "hub-1"
    now[0] = T0 + 3600
    assert signer.kid == "hub-2" and _kid_of(signer.sign(b"x")) == "hub-2"
    assert signer.sign_with_kid(b"x")[0] == "hub-2"


def test_a_retired_hub_key_is_neither_published_nor_signing_but_verifies() -> None:
    old = generate_private_jwk("hub-1") | {"px_state": "retired"}
    signer = Signer("MY-PERKESO", [old, generate_private_jwk("hub-2")])
    assert [k["kid"] for k in signer.jwks()["keys"]] == ["hub-2"]
    assert [k["kid"] for k in signer.verification_jwks()["keys"]] == ["hub-1", "hub-2"]
    assert signer.kid == "hub-2"
    with pytest.raises(ConfigError, match="no key of the set may sign now"):
        Signer("MY-PERKESO", [old])
    with pytest.raises(ConfigError, match="px_state"):
        Signer("MY-PERKESO", [generate_private_jwk("k") | {"px_state": "later"}])
    with pytest.raises(ConfigError, match="nbf"):
        Signer("MY-PERKESO", [generate_private_jwk("k") | {"nbf": "soon"}])


def test_hub_add_and_retire_edit_the_key_file(tmp_path: Path) -> None:
    now = int(time.time())
    path = tmp_path / "hub.jwk.json"
    write_private_key(path, "hub-1")
    published = add_hub_key(path, "hub-2", now + 3600)
    assert published["nbf"] == now + 3600 and "d" not in published
    with pytest.raises(ConfigError, match="already holds"):
        add_hub_key(path, "hub-2", now)
    with pytest.raises(ConfigError, match="leaves no key that signs now"):
        retire_hub_key(path, "hub-1", now=now)  # hub-2 does not sign yet
    assert load_signer(path, "MY-PERKESO").kid == "hub-1"
    add_hub_key(path, "hub-3", now - 60)  # as if scheduled an hour ago
    assert load_signer(path, "MY-PERKESO").kid == "hub-3"
    retire_hub_key(path, "hub-1", now=now)
    signer = load_signer(path, "MY-PERKESO")
    assert [k["kid"] for k in signer.jwks()["keys"]] == ["hub-2", "hub-3"]
    assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigError, match="already retired"):
        retire_hub_key(path, "hub-1", now=now)


def test_the_jwks_cache_must_expire_before_a_new_key_signs(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="shorter than"):
        Settings(jwks_max_age_seconds=3600, hub_key_lead_minutes=60)
    assert Settings(jwks_max_age_seconds=300, hub_key_lead_minutes=60).hub_key_lead_minutes


def _stored(kid: str, state: str, activated: datetime | None) -> StoredKey:
    jwk = public_jwk(generate_private_jwk(kid))
    return StoredKey(kid, "ID-BPJSTK", jwk, state, None, None, "ada", NOW, "ada" if activated
                     else None, activated, None, None)


NOW = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(hours=24)


def test_a_key_is_retired_only_after_its_successor_was_active_for_the_overlap() -> None:
    old = _stored("k1", "active", NOW - 10 * DAY)
    assert "no active successor" in str(retire_blocker([old], "k1", NOW, DAY))
    assert retire_blocker([old], "k1", NOW, DAY, suspended=True) is None  # compromised
    added = _stored("k2", "added", None)
    assert "no active successor" in str(retire_blocker([old, added], "k1", NOW, DAY))
    fresh = _stored("k2", "active", NOW - DAY / 2)
    assert "overlap" in str(retire_blocker([old, fresh], "k1", NOW, DAY))
    ready = _stored("k2", "active", NOW - DAY)
    assert retire_blocker([old, ready], "k1", NOW, DAY) is None
    gone = _stored("k1", "retired", NOW - 10 * DAY)
    assert "already retired" in str(retire_blocker([gone, ready], "k1", NOW, DAY))


def test_the_table_decides_for_the_key_ids_it_holds() -> None:
    file_private = generate_private_jwk("k1")
    file_ring = KeyRing()
    file_ring.add_keyset("ID-BPJSTK", {"keys": [public_jwk(file_private)]})
    assert build_ring(file_ring, []).get("k1") is not None  # not seeded yet: as if active
    retired = StoredKey("k1", "ID-BPJSTK", public_jwk(file_private), "retired", None, None,
                        "partners-file", NOW, None, None, "ada", NOW)
    added = _stored("k2", "added", None)
    ring = build_ring(file_ring, [retired, added])
    assert ring.get("k1") is None and ring.get("k2") is not None
    signature = Signer("ID-BPJSTK", [file_private]).sign(b"body")
    with pytest.raises(AuthError) as refused:
        verify_detached(b"body", signature, ring)
    assert refused.value.code == "key_retired"
    with pytest.raises(AuthError) as unknown:
        verify_detached(b"body", signature, KeyRing())
    assert unknown.value.code == "unknown_key"
