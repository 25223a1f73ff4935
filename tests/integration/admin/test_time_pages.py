"""Lists with a time range page by (time, pk), newest first, with a plain pk cursor: every
matching row exactly once, none outside the range, whatever order the rows were inserted in
(times drawn out of pk order, as several processes' clocks do). Lists without one page by pk."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from gateway.storage.tables import admin_audit, messages, payments
from tests.support.partners import NOW

pytestmark = pytest.mark.anyio

# Minutes after NOW of each row in pk order: not monotone, with ties.
OFFSETS = [5, 1, 9, 3, 3, 7, 0, 12, 8, 2, 11, 6, 4, 10, 3]


def _message(i: int, minutes: int) -> dict[str, Any]:
    at = NOW + timedelta(minutes=minutes)
    return dict(direction="in", partner_id="ID-BPJSTK", message_id=f"m-{i}", sender="ID-BPJSTK",
                recipient="MY-PERKESO", type="claim.notify", correlation_id=f"C-{i}",
                sent_at=at, received_at=at, wire=b"{}", wire_media_type="application/json",
                body_sha256="0" * 64, signature="s", kid="k")


def _payment(i: int, minutes: int) -> dict[str, Any]:
    at = NOW + timedelta(minutes=minutes)
    return dict(payment_id=f"PAY-{i}", idempotency_key=f"IK-{i}", request_sha256="0" * 64,
                state="paid", rail="fake", partner_id="ID-BPJSTK", benefit="invalidity",
                beneficiary_name="B", provider="bank", account="123456789", account_name="B",
                amount_minor=100, currency="MYR", base_minor=100, base_currency="MYR",
                created_at=at, updated_at=at)


def _audit(i: int, minutes: int) -> dict[str, Any]:
    return dict(at=NOW + timedelta(minutes=minutes), actor="ann", issuer="dev", roles="auditor",
                action="messages.search", method="GET", path="/x", targets="[]",
                client_ip="127.0.0.1", outcome="ok", status=200, unmasked=False)


async def _all_pages(client: Any, path: str, key: str, params: dict[str, str],
                     headers: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(len(OFFSETS) + 2):  # bounded: a page of 2 at least halves what is left
        r = await client.get(path, params=params | {"limit": "2"} |
                             ({"cursor": cursor} if cursor else {}), headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        rows += body[key]
        cursor = body["next"]
        if cursor is None:
            return rows
    raise AssertionError("the pages did not end")


def _index(key: str, r: dict[str, Any]) -> int:
    """Which inserted row (its place in pk order) a listed one is."""
    if key == "messages":
        return int(r["message_id"][2:])
    if key == "payments":
        return int(r["payment_id"][4:])
    return int(r["id"]) - 1  # the audit trail: the inserted rows come first


@pytest.mark.parametrize(("table", "row", "path", "key"), [
    (messages, _message, "/admin/v1/messages", "messages"),
    (payments, _payment, "/admin/v1/payments", "payments"),
    (admin_audit, _audit, "/admin/v1/audit", "records"),
])
async def test_a_time_range_pages_newest_first_by_time_then_pk(hub, client, as_, table, row,
                                                               path, key) -> None:
    async with hub.engine.begin() as conn:
        await conn.execute(insert(table), [row(i, m) for i, m in enumerate(OFFSETS)])
    headers = as_("ann", "viewer", "auditor")
    lo, hi = NOW + timedelta(minutes=2), NOW + timedelta(minutes=11)
    # The test's own reads are audited at NOW (the frozen clock): outside the range.
    got = await _all_pages(client, path, key, {"from": lo.isoformat(), "to": hi.isoformat()},
                           headers)
    want = sorted(((m, i) for i, m in enumerate(OFFSETS) if 2 <= m < 11), reverse=True)
    assert [_index(key, r) for r in got] == [i for _m, i in want]
    everything = await _all_pages(client, path, key, {}, headers)
    mine = [_index(key, r) for r in everything if key != "records" or r["actor"] == "ann"
            and r["action"] == "messages.search"]
    assert mine == sorted(mine, reverse=True)  # without a range: pk order, as before
