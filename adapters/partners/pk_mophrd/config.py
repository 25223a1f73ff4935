"""Typed configuration of the PK-MOPHRD partner adapter (defaults: PK-MOPHRD's wire profile)."""

from __future__ import annotations

from pydantic import Field, field_validator

from adapters.partners.common.config import PartnerConfig, check_offset

__all__ = ["PkMophrdConfig"]


class PkMophrdConfig(PartnerConfig):
    """Media types and the offset PK-MOPHRD's times are written at."""

    media_types: frozenset[str] = Field(default=frozenset({"application/json"}), min_length=1)
    wire_media_type: str = Field(default="application/json", min_length=1)
    receipt_media_type: str = Field(default="application/json", min_length=1)
    offset: str = "+05:00"  # Pakistan; PX/1 itself is UTC

    @field_validator("offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        return check_offset(value)
