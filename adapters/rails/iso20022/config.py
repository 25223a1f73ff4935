"""Typed configuration of the ISO 20022 bank rail adapter."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from adapters.rails._config import RailTimeouts, check_base_url

__all__ = ["Iso20022Config"]


class Iso20022Config(BaseModel):
    """Where the bank's file gateway is, our debtor account, and the shared secrets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    api_key_id: str = Field(min_length=1, max_length=64)
    hmac_secret: SecretStr  # signs our uploads and queries (adapters.rails._hmac)
    callback_secret: SecretStr  # verifies pain.002 pushed by the bank
    debtor_name: str = Field(default="PERKESO", min_length=1, max_length=140)
    debtor_account: str = Field(default="MY-PERKESO-0001", min_length=1, max_length=34)
    debtor_bic: str = Field(default="PERKMYKLXXX", pattern=r"^[A-Z0-9]{8}([A-Z0-9]{3})?$")
    timeouts: RailTimeouts = RailTimeouts()
    callback_max_age_seconds: int = Field(default=300, ge=1, le=3600)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)
