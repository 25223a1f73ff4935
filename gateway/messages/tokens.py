"""Bearer-token authentication for partners' GET requests, with ``jti`` replay protection."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import Clock, utcnow
from gateway.errors import AuthError, ForbiddenError
from gateway.messages.suspensions import Suspensions
from gateway.protocol.envelope import HUB_PARTY
from gateway.protocol.partners import PartnerRegistry
from gateway.protocol.signing import TOKEN_LEEWAY, KeyRing, verify_token
from gateway.storage.tables import token_jtis

__all__ = ["authenticate_partner", "purge_expired_tokens"]


async def authenticate_partner(
    conn: AsyncConnection, registry: PartnerRegistry, authorization: str | None,
    clock: Clock = utcnow, suspensions: Suspensions | None = None,
    ring: KeyRing | None = None,
) -> str:
    """Verify the bearer JWT, record its jti (refusing a replay) and return the partner id.

    The jti is recorded in the caller's unit of work: if the request fails later and rolls
    back, the token may be used again, which is harmless since nothing happened.
    """
    now = clock()
    # ``ring``: the live partner keys (gateway.messages.partner_keys); the file's without one.
    claims = verify_token(authorization, ring if ring is not None else registry.keys, HUB_PARTY,
                          now=now.timestamp())
    partner = registry.get(claims.party)
    assert partner is not None
    if partner.suspended or (suspensions is not None
                             and await suspensions.is_suspended(partner.id)):
        raise ForbiddenError("partner_suspended", f"partner {partner.id} is suspended")
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    expires = datetime.fromtimestamp(claims.expires_at + TOKEN_LEEWAY, UTC)
    stmt = (
        ins(token_jtis)
        .values(party=claims.party, jti=claims.jti, expires_at=expires)
        .on_conflict_do_nothing(index_elements=["party", "jti"])
        .returning(token_jtis.c.jti)
    )
    if (await conn.execute(stmt)).scalar_one_or_none() is None:
        raise AuthError("token_replayed", f"token jti {claims.jti!r} was already used")
    return claims.party


async def purge_expired_tokens(conn: AsyncConnection, clock: Clock = utcnow) -> int:
    """Forget jtis whose tokens can no longer be accepted anyway."""
    result = await conn.execute(delete(token_jtis).where(token_jtis.c.expires_at < clock()))
    return result.rowcount or 0
