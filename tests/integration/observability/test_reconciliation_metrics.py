"""The reconciliation gauges through /metrics: the newest run's verdict per configured rail
and its residual per currency, labels closed to the rails file."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from gateway.composition import Hub
from gateway.payments.rails import Settlement
from gateway.reconciliation.service import ReconciliationService
from tests.integration.observability.test_metrics import scrape, value
from tests.support.recon import ScriptedRail, add_payment, line, record, statement

pytestmark = pytest.mark.anyio
DAY = date(2026, 12, 1)


async def test_last_verdict_and_residual_follow_the_newest_run_of_each_rail(
        client: httpx.AsyncClient, hub: Hub, clock) -> None:
    clock.now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    scripted = ScriptedRail()
    # Only the rails' names matter to the gauges: "fake" is reconciled, "idle" never is, and
    # "gone" (not configured) has a run whose series must not appear.
    hub.payments.rails.update({"fake": scripted, "idle": scripted})  # type: ignore[dict-item]
    recon = ReconciliationService(
        hub.uow, hub.payments.service, {"fake": scripted, "gone": scripted},  # type: ignore[dict-item]
        {"fake": Settlement(1, "17:00", "KUL")}, clock, lambda: httpx.AsyncClient())
    hub.state_metrics.ttl = 0
    samples = await scrape(client)
    for verdict in ("balanced", "discrepancies", "incomplete"):
        assert value(samples, "px_reconciliation_last_verdict", rail="fake",
                     verdict=verdict) == 0
    await add_payment(hub.uow, "P-1")
    await recon.run("fake", DAY, statement([record(), line(1, e2e="P-1"), line(2, "3.00")]))
    await recon.run("gone", DAY, statement([record(), line(1, "9.00")]))
    samples = await scrape(client)
    assert value(samples, "px_reconciliation_last_verdict", rail="fake",
                 verdict="discrepancies") == 1
    assert value(samples, "px_reconciliation_last_verdict", rail="fake", verdict="balanced") == 0
    assert value(samples, "px_reconciliation_residual_minor", rail="fake",
                 currency="MYR") == -300
    assert value(samples, "px_reconciliation_last_verdict", rail="idle",
                 verdict="balanced") == 0
    assert value(samples, "px_reconciliation_residual_minor", rail="idle",
                 currency="MYR") is None
    assert not any("gone" in str(k) for k in samples)
    # The next business date's run is the newest: balanced, nothing left over.
    await add_payment(hub.uow, "P-2", paid_at=datetime(2026, 12, 2, 2, 0, tzinfo=UTC))
    await recon.run("fake", date(2026, 12, 2), statement([
        record(sid="S2", day="2026-12-02"), line(1, e2e="P-2", sid="S2", day="2026-12-02")]))
    samples = await scrape(client)
    assert value(samples, "px_reconciliation_last_verdict", rail="fake",
                 verdict="balanced") == 1
    assert value(samples, "px_reconciliation_last_verdict", rail="fake",
                 verdict="discrepancies") == 0
    assert value(samples, "px_reconciliation_residual_minor", rail="fake", currency="MYR") == 0
