"""Acting as a database insider in tests: rewriting evidence past the PostgreSQL guard."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.evidence.chain import CHAINED
from gateway.storage.tables import evidence_chain, payments


async def unguard(conn: AsyncConnection) -> None:
    """Switch off the evidence tables' append-only triggers for this transaction, as the
    database's owner can (``session_replication_role`` skips ordinary triggers; superuser)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        await conn.execute(text("PRAGMA foreign_keys=OFF"))


async def change_payment(engine: AsyncEngine, payment_id: str, **values: Any) -> None:
    """Change a payment the way an insider's UPDATE would, with no event: columns the hub
    itself changes, which the PostgreSQL guard allows (the hub then holds the payment)."""
    async with engine.begin() as conn:
        await conn.execute(update(payments).where(payments.c.payment_id == payment_id)
                           .values(**values))


def _sha(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data is not None else ""


async def rewrite_record(conn: AsyncConnection, record_table: str, pk: int,
                         values: dict[str, Any]) -> int:
    """Rewrite one chained record and then recompute its digest and every later link, as an
    insider with write access (and the chain's published rules) would; return its seq.

    Afterwards the chain agrees with itself: only what lives off the database (signed
    checkpoints, signatures by keys the insider lacks) can show the rewrite.
    """
    await unguard(conn)
    spec = CHAINED[record_table]
    await conn.execute(update(spec.table).where(spec.table.c.pk == pk).values(values))
    start = (await conn.execute(
        select(evidence_chain.c.seq).where(evidence_chain.c.record_table == record_table,
                                           evidence_chain.c.record_pk == pk))).scalar_one()
    prev = (await conn.execute(select(evidence_chain.c.chain_sha256)
                               .where(evidence_chain.c.seq == start - 1))).scalar() or "0" * 64
    entries = (await conn.execute(select(evidence_chain).where(evidence_chain.c.seq >= start)
                                  .order_by(evidence_chain.c.seq))).all()
    for e in entries:
        other = CHAINED[e.record_table]
        row = (await conn.execute(select(other.table)
                                  .where(other.table.c.pk == e.record_pk))).one()
        fields = dict(row._mapping)
        fields.update({f"{h}_sha": _sha(fields[h]) for h in other.hashed})
        digest = other.digest(SimpleNamespace(**fields))
        prev = hashlib.sha256(f"{prev}|{e.record_table}|{e.record_pk}|{digest}".encode()) \
            .hexdigest()
        await conn.execute(update(evidence_chain).where(evidence_chain.c.seq == e.seq)
                           .values(record_sha256=digest, chain_sha256=prev))
    return int(start)
