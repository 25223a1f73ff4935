"""Typed configuration of the Merchantrade rail adapter (one per deployment)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from adapters.rails._config import RailTimeouts, check_base_url

__all__ = ["MerchantradeConfig"]


class MerchantradeConfig(BaseModel):
    """Where the rail is and the secrets that authenticate both directions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    api_key_id: str = Field(min_length=1, max_length=64)
    hmac_secret: SecretStr  # signs our requests
    callback_secret: SecretStr  # verifies the rail's callbacks
    timeouts: RailTimeouts = RailTimeouts()
    max_concurrency: int = Field(
        default=8, ge=1, le=64
    )  # parallel requests of one multi-payout submit
    callback_max_age_seconds: int = Field(default=300, ge=1, le=3600)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)
