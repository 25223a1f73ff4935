"""Evidence for batch requests (MM-SSB's JSON Lines): the batch as signed, and its lines' fate.

Each accepted line is stored as its own message row with its own bytes, but the signature was
made over the whole batch. So the batch body is kept exactly as received with its signature,
stored *before* any line is (a line never exists without the bytes that prove it), and each
line's outcome (accepted, duplicate, refused) is mapped to its message row afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.ports.partner import ItemResult
from gateway.storage.tables import batch_lines, messages, partner_batches

__all__ = ["record_batch_lines", "store_batch"]


async def store_batch(conn: AsyncConnection, *, partner_id: str, body: bytes, signature: str,
                      kid: str, now: datetime) -> int:
    """Store a batch request as received; return its pk."""
    return int((await conn.execute(insert(partner_batches).values(
        partner_id=partner_id, received_at=now, body=body,
        body_sha256=hashlib.sha256(body).hexdigest(), signature=signature, kid=kid,
    ).returning(partner_batches.c.pk))).scalar_one())


async def record_batch_lines(conn: AsyncConnection, batch_pk: int, sender: str,
                             results: Sequence[ItemResult]) -> None:
    """Map each line of a batch to its outcome and, if stored, its message row."""
    ids = [r.message_id.lower() for r in results if r.message_id and r.status != "refused"]
    pks = {r.message_id: r.pk for r in (await conn.execute(
        select(messages.c.message_id, messages.c.pk)
        .where(messages.c.sender == sender, messages.c.message_id.in_(ids)))).all()
    } if ids else {}
    rows = [{"batch_pk": batch_pk, "line": r.line or i, "status": r.status,
             "message_pk": pks.get((r.message_id or "").lower())
             if r.status != "refused" else None}
            for i, r in enumerate(results, start=1)]
    if rows:
        await conn.execute(insert(batch_lines), rows)
