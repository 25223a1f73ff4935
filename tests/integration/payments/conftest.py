"""Payment fixtures: the back-office auth header, a hub with the fake rail, its dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.composition import Hub
from tests.support.fakes import FakeRail


@pytest.fixture
def rail(hub: Hub) -> FakeRail:
    fake = FakeRail()
    hub.payments.rails["fake"] = fake
    return fake


@pytest.fixture
def auth(backoffice_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {backoffice_token}"}


@pytest.fixture
async def dispatcher(hub: Hub, rail: FakeRail) -> AsyncIterator[Any]:
    yield hub.dispatcher(batch=50)
