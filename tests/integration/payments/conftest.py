"""Payment fixtures: the hub's dispatcher (the fake rail and the back-office header are
tests/integration/conftest.py's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.composition import Hub
from tests.support.fakes import FakeRail


@pytest.fixture
async def dispatcher(hub: Hub, rail: FakeRail) -> AsyncIterator[Any]:
    yield hub.dispatcher(batch=50)
