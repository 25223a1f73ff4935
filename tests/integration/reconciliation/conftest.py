"""A reconciliation service over the hub's database with the scripted rail ``fake``."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from gateway.composition import Hub
from gateway.payments.rails import Settlement
from gateway.reconciliation.service import ReconciliationService
from tests.support.recon import ScriptedRail

DAY_NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)  # the run's own clock: 20:00 in KL


@pytest.fixture
def scripted() -> ScriptedRail:
    return ScriptedRail()


@pytest.fixture
def recon(hub: Hub, scripted: ScriptedRail, clock) -> ReconciliationService:
    clock.now = DAY_NOW
    svc = ReconciliationService(hub.uow, hub.payments.service, {"fake": scripted},  # type: ignore[dict-item]
                                {"fake": Settlement(1, "17:00", "KUL")}, clock,
                                lambda: httpx.AsyncClient())
    hub.reconciliation = svc  # the back-office endpoints read through the hub
    return svc
