"""Rail callbacks: authenticate with the rail adapter, then apply through the state machine.

A callback is a hint, never the only source of truth (the payout handler polls too): it may be
lost, repeated or arrive out of order. A repeat or a stale state changes nothing and is still
answered 200, so the rail stops retrying.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import NotFoundError
from gateway.payments import repository as repo
from gateway.payments.domain import Cause, PaymentState, after_rail_state
from gateway.payments.service import Change, PaymentService
from gateway.ports.rail import RailAdapter

__all__ = ["handle_callback"]

log = logging.getLogger(__name__)


async def handle_callback(conn: AsyncConnection, service: PaymentService, rail_name: str,
                          rail: RailAdapter, headers: Mapping[str, str], body: bytes,
                          now: datetime) -> dict[str, Any]:
    """Verify and apply one callback; return what the hub made of it.

    Raises:
        AuthError: the callback is not authentic.
        InvalidMessageError: it cannot be parsed.
        NotFoundError: no payment of this rail has the callback's idempotency key.
    """
    status = rail.parse_callback(headers, body)
    row = await repo.by_key(conn, rail_name, status.idempotency_key, lock=True)
    if row is None:
        raise NotFoundError("not_found", f"no {rail_name} payment with this idempotency key")
    detail = f"rail says {status.state.value}" + (f" ({status.reason})" if status.reason else "")
    tr = after_rail_state(PaymentState(row.state), status.state, Cause.callback, detail)
    if tr is not None:
        await service.apply(conn, [Change(row, tr, status.rail_reference, status.reason,
                                          status.at)], now)
    log.info("callback %s for payment %s: %s", status.state.value, row.payment_id,
             f"{tr.from_state} -> {tr.to_state}" if tr else "no change")
    return {"payment_id": row.payment_id, "state": tr.to_state.value if tr else row.state,
            "changed": tr is not None}
