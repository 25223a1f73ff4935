"""The partner registry: who may talk to the hub, with which keys, over which adapter.

Configuration, not code: a TOML file validated at start. A new partner that speaks PX/1 needs
an entry here and nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.config import read_toml
from gateway.errors import ConfigError
from gateway.protocol.envelope import HUB_PARTY, PARTNER_TO_HUB
from gateway.protocol.signing import KeyRing

__all__ = ["Partner", "PartnerRegistry", "load_registry"]


class _PartnerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    adapter: str = "px1"
    mode: Literal["push", "pull"] = "push"
    endpoint: str | None = None
    jwks_file: str | None = None
    jwks: dict[str, Any] | None = None
    allowed_types: list[str] | None = None
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    suspended: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Refuse this partner's messages unless the TLS proxy verified its client certificate
    # (enforced only when GATEWAY_CLIENT_IDENTITY_HEADER is set; deploy/nginx/px.conf).
    require_client_certificate: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> _PartnerEntry:
        if (self.jwks_file is None) == (self.jwks is None):
            raise ValueError("give exactly one of jwks_file and jwks")
        if self.mode == "push" and not self.endpoint:
            raise ValueError("a push partner needs an endpoint")
        if self.endpoint and not self.endpoint.startswith(("https://", "http://")):
            raise ValueError("endpoint must be an http(s) URL")
        if self.allowed_types is not None:
            unknown = sorted(set(self.allowed_types) - set(PARTNER_TO_HUB))
            if unknown:
                raise ValueError(f"allowed_types has unknown message types {unknown}")
        return self


@dataclass(frozen=True, slots=True)
class Partner:
    """One partner institution as configured."""

    id: str
    name: str
    country: str
    adapter: str
    mode: Literal["push", "pull"]
    endpoint: str | None
    allowed_types: frozenset[str] | None
    rate_limit_per_minute: int | None
    suspended: bool
    timeout_seconds: float
    require_client_certificate: bool = False

    def allows(self, message_type: str) -> bool:
        return self.allowed_types is None or message_type in self.allowed_types


class PartnerRegistry:
    """All partners and all their public keys, indexed for the hot path."""

    def __init__(self, partners: Mapping[str, Partner], keys: KeyRing) -> None:
        self._partners = dict(partners)
        self.keys = keys

    def get(self, partner_id: str) -> Partner | None:
        return self._partners.get(partner_id)

    def __iter__(self) -> Iterator[Partner]:
        return iter(self._partners.values())

    def __len__(self) -> int:
        return len(self._partners)


def _fmt(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "entry"
    return f"{where}: {first['msg']}"


def load_registry(path: Path, adapters: frozenset[str] | None = None) -> PartnerRegistry:
    """Load and validate a partner registry file; raise ConfigError naming what is wrong."""
    raw = read_toml(path, "partner registry")
    extra = set(raw) - {"partners"}
    if extra:
        raise ConfigError(f"partner registry {path}: unknown top-level keys {sorted(extra)}")
    section = raw.get("partners")
    if not isinstance(section, dict) or not section:
        raise ConfigError(f"partner registry {path} has no [partners.<ID>] entries")
    keys = KeyRing()
    partners: dict[str, Partner] = {}
    for pid, entry_raw in section.items():
        if not isinstance(pid, str) or not _valid_party(pid):
            raise ConfigError(f"partner registry {path}: {pid!r} is not a party id like ID-BPJSTK")
        if pid == HUB_PARTY:
            raise ConfigError(f"partner registry {path}: {HUB_PARTY} is the hub, not a partner")
        try:
            entry = _PartnerEntry.model_validate(entry_raw)
        except ValidationError as exc:
            raise ConfigError(f"partner registry {path}: partners.{pid}.{_fmt(exc)}") from None
        if adapters is not None and entry.adapter not in adapters:
            raise ConfigError(
                f"partner registry {path}: partners.{pid}.adapter {entry.adapter!r} is unknown "
                f"(one of {', '.join(sorted(adapters))})"
            )
        jwks = entry.jwks
        if entry.jwks_file is not None:
            jwks_path = (path.parent / entry.jwks_file).resolve()
            try:
                jwks = json.loads(jwks_path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"partners.{pid}.jwks_file {jwks_path} does not exist") from None
            except (ValueError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"partners.{pid}.jwks_file {jwks_path}: not JSON: {exc}") from None
        assert jwks is not None
        if not isinstance(jwks, dict):
            raise ConfigError(f"partners.{pid}: the key set must be a JWKS object")
        try:
            keys.add_keyset(pid, jwks)
        except ConfigError as exc:
            raise ConfigError(f"partner registry {path}: {exc}") from None
        partners[pid] = Partner(
            id=pid,
            name=entry.name,
            country=entry.country,
            adapter=entry.adapter,
            mode=entry.mode,
            endpoint=entry.endpoint,
            allowed_types=frozenset(entry.allowed_types) if entry.allowed_types else None,
            rate_limit_per_minute=entry.rate_limit_per_minute,
            suspended=entry.suspended,
            timeout_seconds=entry.timeout_seconds,
            require_client_certificate=entry.require_client_certificate,
        )
    return PartnerRegistry(partners, keys)


def _valid_party(pid: str) -> bool:
    return re.fullmatch(r"[A-Z]{2}-[A-Z0-9]{2,32}", pid) is not None
