"""Fixtures every integration suite that pays shares: the fake rail on the hub and the back
office's service token (for instructing payments through the real API)."""

from __future__ import annotations

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
    """The back office's service token as a request header."""
    return {"Authorization": f"Bearer {backoffice_token}"}
