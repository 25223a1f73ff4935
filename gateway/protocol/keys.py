"""Key files: the hub's private signing key(s) and development key generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.protocol.signing import Signer, generate_private_jwk, public_jwk
from gateway.secretfiles import write_private

__all__ = ["load_signer", "write_private_key", "write_public_jwks"]


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
