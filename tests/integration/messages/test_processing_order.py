"""Inbound processing is ordered per case, and never waits for the hub's own deliveries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.composition import Hub
from gateway.outbox.claiming import claim
from tests.support.partners import TestPartner

pytestmark = pytest.mark.anyio


async def test_inbound_not_blocked_by_undelivered_outbound(client, hub: Hub, bpjstk: TestPartner
                                                          ) -> None:
    async with hub.uow() as uow:
        await hub.outbound.send(uow.conn, partner_id="ID-BPJSTK", type_="claim.status",
                                payload={"claim_ref": "KLM-2026-0042", "socso_claim_no": "S-1",
                                         "status": "under_review"},
                                now=hub.clock(), correlation_id="KLM-2026-0042")
        await uow.commit()
    first, second = bpjstk.envelope(), bpjstk.envelope()
    for env in (first, second):
        body, headers = bpjstk.signed(env)
        assert (await client.post("/v1/messages", content=body, headers=headers)
                ).status_code == 202
    tasks = await claim(hub.uow, owner="t", now=hub.clock(), lease=timedelta(seconds=30),
                        limit=10, kinds=["process_inbound"])
    # The first inbound message of the case is claimable at once; the second waits for it.
    assert len(tasks) == 1 and tasks[0].kind == "process_inbound"
    assert tasks[0].ordering_key == "in:ID-BPJSTK:KLM-2026-0042"
