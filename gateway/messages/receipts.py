"""Receipts already given, returned again byte for byte with their original signature."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import NotFoundError
from gateway.storage.tables import messages

__all__ = ["StoredReceipt", "find_receipt"]


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    body: bytes
    signature: str


async def find_receipt(conn: AsyncConnection, partner_id: str, message_id: str) -> StoredReceipt:
    """Return the receipt the hub gave ``partner_id`` for ``message_id``.

    Raises:
        NotFoundError: no such message from this partner (another partner's is not found either).
    """
    row = (await conn.execute(
        select(messages.c.receipt, messages.c.receipt_signature).where(
            messages.c.sender == partner_id,
            messages.c.message_id == message_id.lower(),
            messages.c.direction == "in",
        )
    )).first()
    if row is None or row.receipt is None:
        raise NotFoundError("not_found", f"no message {message_id} from {partner_id}")
    return StoredReceipt(row.receipt, row.receipt_signature)
