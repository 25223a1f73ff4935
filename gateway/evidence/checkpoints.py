"""Signed checkpoints of the chain head: what an outsider can check the chain against.

A chain only shows that its rows agree with each other: an insider who rewrites a record and
recomputes every later link leaves a chain that agrees with itself. A checkpoint is the hub's
signature (its own key, whose private part is not in the database) over ``(seq, chain hash,
time)`` of the head; exported off the database (a file shipped to other storage, a ticket), it
pins everything before it. ``verify_chain(trusted=...)`` recomputes the chain up to each
checkpoint's seq and compares.

The signed payload is canonical JSON (sorted keys, no spaces) so anyone can check it with the
hub's published JWKS and any JOSE library; the export file carries the exact payload string
beside its detached JWS, and nothing else in the file is trusted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from gateway.clock import Clock, utcnow
from gateway.errors import AuthError, ConfigError
from gateway.evidence.chain import TrustedPoint, chain_head
from gateway.protocol.envelope import HUB_PARTY
from gateway.protocol.keys import load_signer
from gateway.protocol.partners import PartnerRegistry, load_registry
from gateway.protocol.signing import KeyRing, Signer, verify_detached
from gateway.storage.tables import evidence_checkpoints
from gateway.storage.uow import UnitOfWorkFactory

__all__ = [
    "FILE_FORMAT", "Checkpoint", "export_checkpoints", "latest_checkpoints", "load_checkpoints",
    "hub_verification_keys", "make_checkpoint", "verification_keys", "write_checkpoint_file",
]

FILE_FORMAT = "px-evidence-checkpoints/1"
PAYLOAD_TYPE = "px-evidence-checkpoint"
_LOCK_ID = 7_400_212  # advisory lock key of the checkpoint signer (the chainer's + 1)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    chain_sha256: str
    signed_at: str  # as signed (RFC 3339, UTC)
    kid: str
    payload: str
    signature: str

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "chain_sha256": self.chain_sha256, "signed_at": self.signed_at,
                "kid": self.kid, "payload": self.payload, "signature": self.signature}

    def point(self) -> TrustedPoint:
        return TrustedPoint(self.seq, self.chain_sha256, f"checkpoint signed {self.signed_at}")


def _payload(seq: int, chain_sha256: str, at: datetime) -> str:
    body = {"type": PAYLOAD_TYPE, "hub": HUB_PARTY, "seq": seq, "chain_sha256": chain_sha256,
            "signed_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


async def make_checkpoint(uow_factory: UnitOfWorkFactory, signer: Signer, *,
                          clock: Clock = utcnow) -> Checkpoint | None:
    """Sign the chain's head now and store it; None if the head is already checkpointed
    (or the chain is empty): a checkpoint per change, not per tick."""
    async with uow_factory() as uow:
        conn = uow.conn
        if conn.dialect.name == "postgresql":
            # Every dispatcher runs this job: one signs, the others find the head signed.
            got = (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                      {"k": _LOCK_ID})).scalar()
            if not got:
                return None
        head = await chain_head(conn)
        last = (await conn.execute(select(evidence_checkpoints.c.seq)
                                   .order_by(evidence_checkpoints.c.seq.desc()).limit(1))).scalar()
        if head.seq == 0 or (last is not None and last >= head.seq):
            return None
        now = clock()
        payload = _payload(head.seq, head.chain_sha256, now)
        kid, signature = signer.sign_with_kid(payload.encode())
        cp = Checkpoint(head.seq, head.chain_sha256, json.loads(payload)["signed_at"],
                        kid, payload, signature)
        await conn.execute(insert(evidence_checkpoints).values(
            seq=cp.seq, chain_sha256=cp.chain_sha256, signed_at=now, kid=cp.kid,
            payload=cp.payload, signature=cp.signature))
        await uow.commit()
        return cp


async def latest_checkpoints(uow_factory: UnitOfWorkFactory, limit: int = 100) -> list[Checkpoint]:
    async with uow_factory(read_only=True) as reader:
        rows = (await reader.conn.execute(
            select(evidence_checkpoints).order_by(evidence_checkpoints.c.seq.desc()).limit(limit)
        )).all()
    return [Checkpoint(r.seq, r.chain_sha256, json.loads(r.payload)["signed_at"], r.kid,
                       r.payload, r.signature) for r in reversed(rows)]


def export_checkpoints(checkpoints: Sequence[Checkpoint], hub_jwks: Mapping[str, Any]) -> str:
    """The export file: the checkpoints and the hub's public keys that signed them (a copy for
    convenience: a verifier should use the JWKS the hub publishes, not the one in the file)."""
    return json.dumps({"format": FILE_FORMAT, "hub": HUB_PARTY, "hub_jwks": dict(hub_jwks),
                       "checkpoints": [c.as_json() for c in checkpoints]}, indent=1) + "\n"


def write_checkpoint_file(path: Path, checkpoints: Sequence[Checkpoint],
                          hub_jwks: Mapping[str, Any]) -> None:
    """Replace ``path`` atomically, so a reader (a shipper to other storage) never sees half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(export_checkpoints(checkpoints, hub_jwks), encoding="utf-8")
    tmp.replace(path)


def load_checkpoints(path: Path, hub_keys: KeyRing) -> list[Checkpoint]:
    """Read an export file and verify every checkpoint's signature with the hub's keys.

    Raises:
        ConfigError: the file is unreadable or malformed, or a signature does not verify.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"checkpoint file {path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"checkpoint file {path} is not JSON: {exc}") from None
    items = data.get("checkpoints") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT or \
            not isinstance(items, list) or not items:
        raise ConfigError(f"checkpoint file {path} is not a {FILE_FORMAT} file with checkpoints")
    out = []
    for i, item in enumerate(items):
        where = f"checkpoint file {path}: checkpoints[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("payload"), str) or \
                not isinstance(item.get("signature"), str):
            raise ConfigError(f"{where} needs a 'payload' string and a 'signature' string")
        payload: str = item["payload"]
        try:
            signed = verify_detached(payload.encode(), item["signature"], hub_keys)
        except AuthError as exc:
            raise ConfigError(f"{where}: the hub's signature does not verify ({exc.detail})") \
                from None
        if signed.party != HUB_PARTY:
            raise ConfigError(f"{where}: signed by {signed.party}, not the hub")
        try:
            body = json.loads(payload)
            seq, chain, at = body["seq"], body["chain_sha256"], body["signed_at"]
            ok = body.get("type") == PAYLOAD_TYPE and isinstance(seq, int) and seq > 0 \
                and isinstance(chain, str) and len(chain) == 64 and isinstance(at, str)
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise ConfigError(f"{where}: the signed payload is not a checkpoint")
        out.append(Checkpoint(seq, chain, at, signed.kid, payload, item["signature"]))
    return sorted(out, key=lambda c: c.seq)


def verification_keys(signing_key_file: Path, hub_jwks_file: Path | None,
                      partners_file: Path | None) -> tuple[KeyRing, KeyRing]:
    """The hub's public keys, and those plus every partner's (the registry's), for verify.

    An outsider passes the JWKS the hub publishes (``hub_jwks_file``); the hub's own operator
    may use the signing key file, whose public part is the same. ``gateway audit verify`` adds
    the keys of the ``partner_keys`` table (retired ones too); a key that is in neither is not
    here: records signed with it are "unverifiable".
    """
    if hub_jwks_file is not None:
        try:
            jwks = json.loads(hub_jwks_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"hub JWKS file {hub_jwks_file} does not exist") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"hub JWKS file {hub_jwks_file} is not JSON: {exc}") from None
        if not isinstance(jwks, dict):
            raise ConfigError(f"hub JWKS file {hub_jwks_file} must hold a JWKS object")
    else:
        jwks = load_signer(signing_key_file, HUB_PARTY).verification_jwks()
    hub = KeyRing()
    hub.add_keyset(HUB_PARTY, jwks)
    everyone = load_registry(partners_file).keys if partners_file is not None else KeyRing()
    everyone.add_keyset(HUB_PARTY, jwks)
    return hub, everyone


def hub_verification_keys(signer: Signer, registry: PartnerRegistry) -> KeyRing:
    """The keys a running hub verifies the chain's signatures with: its own public keys and
    every partner's in its registry (the same set as ``verification_keys`` from files); its
    retired keys too, which still verify the receipts they signed."""
    ring = KeyRing()
    ring.add_keyset(HUB_PARTY, signer.verification_jwks())
    for p in registry:
        keys = [k.jwk for k in registry.keys.of_party(p.id)]
        if keys:
            ring.add_keyset(p.id, {"keys": keys})
    return ring
