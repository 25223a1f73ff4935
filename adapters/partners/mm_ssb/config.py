"""Typed configuration of the MM-SSB partner adapter (defaults: MM-SSB's wire profile)."""

from __future__ import annotations

from pydantic import Field, field_validator

from adapters.partners.common.config import PartnerConfig, check_offset

__all__ = ["MmSsbConfig"]


class MmSsbConfig(PartnerConfig):
    """Media types, the batch size limit and the offset MM-SSB's times are written at."""

    media_types: frozenset[str] = Field(
        default=frozenset({"application/x-ndjson", "application/jsonl"}), min_length=1)
    wire_media_type: str = Field(default="application/x-ndjson", min_length=1)
    receipt_media_type: str = Field(default="application/x-ndjson", min_length=1)
    offset: str = "+06:30"  # Myanmar; PX/1 itself is UTC
    max_lines: int = Field(default=500, ge=1)  # lines (envelopes) per batch

    @field_validator("offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        return check_offset(value)
