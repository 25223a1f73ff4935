"""Partner keys in the database, and the key ring every gateway process verifies with.

A partner key's rotation, driven through ``/admin/v1/partners/{id}/keys``:

    added ──▶ active ──▶ retired

- **added**: published to the hub; signatures with it verify (so a partner may switch to it
  as soon as it is everywhere, before anyone activates it).
- **active**: the partner's current key; also verifies. Activating records *when*, which
  starts the overlap a predecessor must wait out before it can be retired.
- **retired** (a maker-checker proposal, ``retire_key``): refused for new messages and tokens
  (``401 key_retired``); kept for ever, so ``gateway audit verify --signatures`` still
  verifies the records it signed.

Precedence: the ``partner_keys`` table decides for every key id it holds. The partners file is
the bootstrap: its keys are seeded into the table as *active* when ``gateway serve`` starts and
before the admin API touches a partner's keys (``seed``), and a file key the table does not
hold yet verifies as if active. Removing a key from the file therefore retires nothing once it
is seeded (retire it through the API), and re-adding a retired key to the file does not
revive it.

Every process reads the table's ``(kid, state)`` pairs at most every ``ttl`` seconds on the
intake and partner-token paths (a query over a table of tens of rows) and rebuilds its ring
only when they changed, so a change reaches every process within ``ttl`` seconds. Comparing
the pairs, not ``max(updated_at)``, stays correct when two changes commit out of order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import (
    ConfigError,
    ConflictError,
    InvalidMessageError,
    NotFoundError,
)
from gateway.protocol.signing import KeyRing, parse_public_key
from gateway.storage.tables import partner_keys
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["DEFAULT_TTL", "PartnerKeys", "StoredKey", "activate", "add", "build_ring",
           "keys_of", "retire", "retire_blocker", "seed", "stored_ring"]

log = logging.getLogger(__name__)

DEFAULT_TTL = 2.0
ACCEPTING = frozenset({"added", "active"})
SEEDED_BY = "partners-file"
_KID = re.compile(r"[A-Za-z0-9._:-]{1,200}")


@dataclass(frozen=True, slots=True)
class StoredKey:
    kid: str
    partner_id: str
    jwk: dict[str, Any]
    state: str
    not_before: datetime | None
    expires_at: datetime | None
    added_by: str
    added_at: datetime
    activated_by: str | None
    activated_at: datetime | None
    retired_by: str | None
    retired_at: datetime | None


def _stored(r: RowMapping) -> StoredKey:
    return StoredKey(r.kid, r.partner_id, json.loads(r.jwk), r.state, r.not_before,
                     r.expires_at, r.added_by, r.added_at, r.activated_by, r.activated_at,
                     r.retired_by, r.retired_at)


def build_ring(file_ring: KeyRing, stored: Iterable[StoredKey]) -> KeyRing:
    """The keys that verify new messages (with the retired key ids): the table decides for the
    key ids it holds, the file's other keys verify as if active."""
    stored = list(stored)
    ring = KeyRing(retired=frozenset(s.kid for s in stored if s.state not in ACCEPTING))
    held: set[str] = set()
    for s in stored:
        held.add(s.kid)
        if s.state not in ACCEPTING:
            continue
        try:
            ring.put(parse_public_key(s.partner_id, s.jwk))
        except ConfigError as exc:  # validated when added; a hand-edited row must not stop intake
            log.error("partner key %s in the database is unusable: %s", s.kid, exc)
    for k in file_ring:
        if k.kid not in held:
            ring.put(k)
    return ring


class PartnerKeys:
    """The partner key ring of this process, re-read from the database every ``ttl`` s."""

    def __init__(self, uow: UnitOfWorkFactory, file_ring: KeyRing, ttl: float = DEFAULT_TTL,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._uow, self._ttl, self._now = uow, ttl, monotonic
        self.file_ring = file_ring
        self._ring = file_ring
        self._seen: frozenset[tuple[str, str]] | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def ttl(self) -> float:
        return self._ttl

    def forget(self) -> None:
        """Read the table again on the next use (this process just changed it)."""
        self._read_at = float("-inf")

    async def seed_at_start(self, now: datetime) -> None:
        """Copy the partners file's new keys into the table (``gateway serve`` at start).

        Best effort: a database not reachable or not migrated yet must not stop the server
        starting (readiness reports it); the admin API seeds again before it reads keys, and
        an unseeded file key verifies as if active meanwhile.
        """
        try:
            async with self._uow() as uow:
                await seed(uow.conn, self.file_ring, now)
                await uow.commit()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("partner keys not seeded from the partners file at start: %s", exc)

    async def ring(self) -> KeyRing:
        """The keys that verify new messages and tokens now (added and active)."""
        if self._now() - self._read_at >= self._ttl:
            async with self._lock:  # one read per expiry, however many requests wait
                if self._now() - self._read_at >= self._ttl:
                    await self._refresh()
                    self._read_at = self._now()
        return self._ring

    async def _refresh(self) -> None:
        async with self._uow(read_only=True) as uow:
            pairs = frozenset((r.kid, r.state) for r in await uow.conn.execute(
                select(partner_keys.c.kid, partner_keys.c.state)))
            if pairs == self._seen:
                return
            rows = (await uow.conn.execute(select(partner_keys))).mappings().all()
        stored = [_stored(r) for r in rows]
        self._ring = build_ring(self.file_ring, stored)
        self._seen = frozenset((s.kid, s.state) for s in stored)


# -- the table -------------------------------------------------------------------------------------

async def seed(conn: AsyncConnection, file_ring: KeyRing, now: datetime) -> None:
    """Copy the partners file's keys the table does not hold yet, as active (idempotent, safe
    when several processes seed at once)."""
    values = [{"kid": k.kid, "partner_id": k.party, "jwk": json.dumps(k.jwk), "state": "active",
               "not_before": None, "expires_at": _exp(k.jwk), "added_by": SEEDED_BY,
               "added_at": now, "activated_by": SEEDED_BY, "activated_at": now,
               "updated_at": now} for k in file_ring]
    if not values:
        return
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(ins(partner_keys).values(values).on_conflict_do_nothing(
        index_elements=["kid"]))


def _exp(jwk: dict[str, Any]) -> datetime | None:
    exp = jwk.get("exp")
    return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int) else None


async def keys_of(conn: AsyncConnection, partner_id: str | None = None) -> list[StoredKey]:
    """A partner's keys (every partner's with None), oldest first."""
    q = select(partner_keys).order_by(partner_keys.c.added_at, partner_keys.c.kid)
    if partner_id is not None:
        q = q.where(partner_keys.c.partner_id == partner_id)
    return [_stored(r) for r in (await conn.execute(q)).mappings()]


async def _one(conn: AsyncConnection, kid: str) -> StoredKey | None:
    row = (await conn.execute(select(partner_keys).where(partner_keys.c.kid == kid))
           ).mappings().first()
    return _stored(row) if row is not None else None


async def add(conn: AsyncConnection, partner_id: str, jwk: dict[str, Any], *, by: str,
              now: datetime, file_ring: KeyRing, not_before: datetime | None = None,
              expires_at: datetime | None = None) -> StoredKey:
    """Add a partner's new public key (state added: it verifies from now on).

    Raises:
        InvalidMessageError: schema_violation, not an allowed public JWK.
        ConflictError: id_conflict, the key id is already used (by anyone, in any state).
    """
    try:
        key = parse_public_key(partner_id, jwk)
    except ConfigError as exc:
        raise InvalidMessageError("schema_violation", f"jwk: {exc}") from None
    if not _KID.fullmatch(key.kid):
        # It is stored, logged and shown to operators: plain text of bounded length.
        raise InvalidMessageError("schema_violation", "jwk.kid: 1-200 characters of "
                                  "A-Z a-z 0-9 . _ : -")
    if expires_at is None:
        expires_at = _exp(jwk)
    if expires_at is not None and expires_at <= now:
        raise InvalidMessageError("schema_violation", "expires_at must be in the future")
    other = file_ring.get(key.kid)
    held = await _one(conn, key.kid)
    if held is not None or other is not None:
        owner = held.partner_id if held is not None else other.party if other else "?"
        raise ConflictError("id_conflict", f"key id {key.kid!r} is already used by {owner}; "
                            "key ids are never reused")
    await conn.execute(insert(partner_keys).values(
        kid=key.kid, partner_id=partner_id, jwk=json.dumps(key.jwk), state="added",
        not_before=not_before, expires_at=expires_at, added_by=by, added_at=now,
        updated_at=now))
    found = await _one(conn, key.kid)
    assert found is not None
    return found


async def _of_partner(conn: AsyncConnection, partner_id: str, kid: str) -> StoredKey:
    found = await _one(conn, kid)
    if found is None or found.partner_id != partner_id:
        raise NotFoundError("not_found", f"partner {partner_id} has no key {kid!r}")
    return found


async def activate(conn: AsyncConnection, partner_id: str, kid: str, *, by: str,
                   now: datetime) -> StoredKey:
    """Make an added key the partner's active key (its predecessors stay active until retired).

    Raises:
        NotFoundError: not_found. ConflictError: state_conflict (not added, or before its
        not_before).
    """
    found = await _of_partner(conn, partner_id, kid)
    if found.state != "added":
        raise ConflictError("state_conflict", f"key {kid!r} is {found.state}, not added")
    if found.not_before is not None and now < found.not_before:
        raise ConflictError("state_conflict", f"key {kid!r} may not be activated before "
                            f"{found.not_before.isoformat()}")
    result = await conn.execute(update(partner_keys).where(
        partner_keys.c.kid == kid, partner_keys.c.state == "added").values(
        state="active", activated_by=by, activated_at=now, updated_at=now))
    if not result.rowcount:
        raise ConflictError("state_conflict", f"key {kid!r} changed meanwhile")
    again = await _one(conn, kid)
    assert again is not None
    return again


def retire_blocker(keys: Sequence[StoredKey], kid: str, now: datetime, overlap: timedelta,
                   *, suspended: bool = False) -> str | None:
    """Why ``kid`` may not be retired now, or None: a retired key must have a successor (another
    of the partner's keys) that has been active for at least ``overlap``, so every sender had
    time to switch and every process to learn the successor. A suspended partner's messages
    are refused anyway, so its key may be retired at once (a compromised key)."""
    mine = next((k for k in keys if k.kid == kid), None)
    if mine is None:
        return f"no key {kid!r}"
    if mine.state == "retired":
        return f"key {kid!r} is already retired"
    if suspended:
        return None
    successors = [k for k in keys if k.kid != kid and k.state == "active"
                  and k.activated_at is not None]
    if not successors:
        return (f"key {kid!r} has no active successor: add and activate the partner's next "
                "key first")
    newest = max(k.activated_at for k in successors if k.activated_at is not None)
    if now - newest < overlap:
        ready = newest + overlap
        return (f"the overlap of {overlap} after activating the successor has not passed: "
                f"{kid!r} may be retired from {ready.isoformat()}")
    return None


async def retire(conn: AsyncConnection, partner_id: str, kid: str, *, by: str, now: datetime,
                 overlap: timedelta, suspended: bool = False) -> StoredKey:
    """Retire a key (the approver's unit of work of a ``retire_key`` proposal).

    Raises:
        NotFoundError: not_found. ConflictError: state_conflict (see ``retire_blocker``).
    """
    await _of_partner(conn, partner_id, kid)
    blocker = retire_blocker(await keys_of(conn, partner_id), kid, now, overlap,
                             suspended=suspended)
    if blocker is not None:
        raise ConflictError("state_conflict", blocker)
    await conn.execute(update(partner_keys).where(partner_keys.c.kid == kid).values(
        state="retired", retired_by=by, retired_at=now, updated_at=now))
    again = await _one(conn, kid)
    assert again is not None
    return again


async def stored_ring(conn: AsyncConnection, into: KeyRing) -> int:
    """Add every stored key (retired ones too) that ``into`` lacks, for verifying old records;
    return how many were added."""
    n = 0
    for s in await keys_of(conn):
        if into.get(s.kid) is None:
            try:
                into.put(parse_public_key(s.partner_id, s.jwk))
            except ConfigError as exc:
                log.error("partner key %s in the database is unusable: %s", s.kid, exc)
                continue
            n += 1
    return n
