"""Payment fixtures: a back-office token, a hub with the fake rail, helpers to drive it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.backoffice.auth import write_dev_tokens
from gateway.composition import Hub
from gateway.config import Settings
from tests.payments.fakes import FakeRail


@pytest.fixture
def backoffice_token(instance: Path) -> str:
    token, _ = write_dev_tokens(instance / "backoffice.toml")
    return token


@pytest.fixture
def settings(instance: Path, db_url: str, backoffice_token: str) -> Settings:
    return Settings(
        database_url=db_url,
        partners_file=instance / "partners.toml",
        signing_key_file=instance / "hub.jwk.json",
        backoffice_tokens_file=instance / "backoffice.toml",
        dispatch_in_serve=False,
    )


@pytest.fixture
def rail(hub: Hub) -> FakeRail:
    fake = FakeRail()
    hub.payments.rails["fake"] = fake
    return fake


@pytest.fixture
def auth(backoffice_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {backoffice_token}"}


def payment_body(payment_id: str = "PAY-0001", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payment_id": payment_id,
        "partner_id": "ID-BPJSTK",
        "beneficiary": {"name": "Siti Aminah", "national_id": {"scheme": "ID-NIK",
                                                                "value": "3201145403910002"}},
        "benefit": "EI_TEMPORARY_DISABLEMENT",
        "claim_ref": "CLM-2026-000123",
        "socso_claim_no": "SOCSO-000001",
        "amount": {"amount": "1250.00", "currency": "MYR"},
        "rail": "fake",
        "payout": {"provider": "MTWALLET", "account": "60123456789",
                   "account_name": "Siti Aminah"},
    }
    body.update(over)
    return body


@pytest.fixture
async def dispatcher(hub: Hub, rail: FakeRail) -> AsyncIterator[Any]:
    yield hub.dispatcher(batch=50)
