"""Typed configuration of the NP-FEB partner adapter (defaults: NP-FEB's wire profile)."""

from __future__ import annotations

from pydantic import Field, field_validator

from adapters.partners.common.config import PartnerConfig, check_offset

__all__ = ["NpFebConfig"]


class NpFebConfig(PartnerConfig):
    """Media types and the offset NP-FEB's times are written at."""

    media_types: frozenset[str] = Field(
        default=frozenset({"application/xml", "text/xml"}), min_length=1)
    wire_media_type: str = Field(default="application/xml", min_length=1)
    receipt_media_type: str = Field(default="application/xml", min_length=1)
    offset: str = "+05:45"  # Nepal; PX/1 itself is UTC

    @field_validator("offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        return check_offset(value)
