"""Key files: the hub's private signing key(s), their rotation, and development key generation.

The hub's keys stay in their file (not the database): a new key is added with an ``nbf``
(``add_hub_key``), published by every process that loaded the file, and signs from ``nbf``; an
old one is marked retired (``retire_hub_key``). Each process reads the file at start, so a
change takes effect with a rolling restart (docs/admin.md, hub key rotation).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.protocol.signing import Signer, generate_private_jwk, public_jwk
from gateway.secretfiles import write_private

__all__ = ["add_hub_key", "load_signer", "retire_hub_key", "write_private_key",
           "write_public_jwks"]


def load_signer(path: Path, party: str) -> Signer:
    """Load a private JWK, or a JWKS of private keys whose first key signs (rotation)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"signing key file {path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"signing key file {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"signing key file {path} must hold a JWK or a JWKS object")
    keys = data.get("keys", [data])
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise ConfigError(f"signing key file {path}: 'keys' must be a list of JWKs")
    try:
        return Signer(party, keys)
    except ConfigError as exc:
        raise ConfigError(f"signing key file {path}: {exc}") from None


def _write_secret(path: Path, data: dict[str, Any]) -> None:
    write_private(path, json.dumps(data, indent=1), exclusive=True)


def write_private_key(path: Path, kid: str, alg: str = "EdDSA") -> dict[str, Any]:
    """Generate a private JWK into a new file readable only by its owner; return it."""
    jwk = generate_private_jwk(kid, alg)
    _write_secret(path, jwk)
    return jwk


def write_public_jwks(path: Path, private_jwks: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"keys": [public_jwk(j) for j in private_jwks]}, indent=1),
                    encoding="utf-8")


def _key_set(path: Path) -> list[dict[str, Any]]:
    load_signer(path, "hub")  # refuses a file that is not a valid signing key set
    data = json.loads(path.read_text(encoding="utf-8"))
    keys: list[dict[str, Any]] = data.get("keys", [data])
    return keys


def add_hub_key(path: Path, kid: str, signs_from: int, alg: str = "EdDSA") -> dict[str, Any]:
    """Add a new private key to the hub's key file, published at once, signing from
    ``signs_from`` (its ``nbf``); return its public JWK.

    Raises:
        ConfigError: the file is not a signing key set, or ``kid`` is already in it.
    """
    keys = _key_set(path)
    if any(k.get("kid") == kid for k in keys):
        raise ConfigError(f"signing key file {path} already holds key id {kid!r}")
    jwk = generate_private_jwk(kid, alg) | {"nbf": signs_from}
    write_private(path, json.dumps({"keys": [*keys, jwk]}, indent=1))
    return public_jwk(jwk)


def retire_hub_key(path: Path, kid: str, now: float) -> None:
    """Mark a key of the hub's key file retired: it no longer signs nor is published, and
    stays in the file to verify what it signed.

    Raises:
        ConfigError: no such key, already retired, or no other key would sign now.
    """
    keys = _key_set(path)
    found = [k for k in keys if k.get("kid") == kid]
    if not found:
        raise ConfigError(f"signing key file {path} has no key {kid!r}")
    if found[0].get("px_state") == "retired":
        raise ConfigError(f"key {kid!r} is already retired")
    others = [k for k in keys if k.get("kid") != kid and k.get("px_state") != "retired"
              and k.get("nbf", 0) <= now]
    if not others:
        raise ConfigError(f"retiring {kid!r} leaves no key that signs now; add a successor "
                          "first and wait for its nbf")
    found[0]["px_state"] = "retired"
    write_private(path, json.dumps({"keys": keys}, indent=1))
