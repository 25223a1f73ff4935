"""Configuration pieces shared by the partner adapters' typed configs."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.partners.common.dates import parse_offset

__all__ = ["ConfiguredAdapter", "PartnerConfig", "check_offset"]


class PartnerConfig(BaseModel):
    """The media types of one partner's wire profile; each adapter's config sets the defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    media_types: frozenset[str] = Field(min_length=1)  # what the partner may POST
    wire_media_type: str = Field(min_length=1)  # of one encoded message
    receipt_media_type: str = Field(min_length=1)  # of rendered receipts and batch results

    @model_validator(mode="after")
    def _wire_media_type_is_accepted(self) -> Self:
        # The partner sends what the hub sends it; a type the hub would refuse is a typo.
        if self.wire_media_type not in self.media_types:
            raise ValueError(f"wire_media_type {self.wire_media_type!r} must be one of "
                             f"media_types ({', '.join(sorted(self.media_types))})")
        return self


def check_offset(value: str) -> str:
    """Validate a fixed UTC offset ``+HH:MM`` / ``-HH:MM`` (the partner's wire time zone)."""
    parse_offset(value)
    return value


class ConfiguredAdapter:
    """The partner adapter seam's media-type attributes, taken from the adapter's config once,
    so every adapter reads them from one place (its typed config)."""

    media_types: frozenset[str]
    wire_media_type: str
    receipt_media_type: str

    def __init__(self, config: PartnerConfig) -> None:
        self.media_types = config.media_types
        self.wire_media_type = config.wire_media_type
        self.receipt_media_type = config.receipt_media_type
