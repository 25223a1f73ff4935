"""Typed configuration of the PX/1 reference partner adapter (defaults: PX/1's wire profile)."""

from __future__ import annotations

from pydantic import Field

from adapters.partners.common.config import PartnerConfig

__all__ = ["Px1Config"]


class Px1Config(PartnerConfig):
    """Media types; PX/1 has no local offset (its times are UTC) and no other knob."""

    media_types: frozenset[str] = Field(default=frozenset({"application/json"}), min_length=1)
    wire_media_type: str = Field(default="application/json", min_length=1)
    receipt_media_type: str = Field(default="application/json", min_length=1)
