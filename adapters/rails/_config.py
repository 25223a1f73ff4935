"""Configuration pieces shared by the rail adapters."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RailTimeouts", "check_base_url"]


class RailTimeouts(BaseModel):
    """Per-phase HTTP timeouts in seconds; every outbound call uses them explicitly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect: float = Field(default=2.0, gt=0, le=60)
    read: float = Field(default=10.0, gt=0, le=300)
    write: float = Field(default=10.0, gt=0, le=300)
    pool: float = Field(default=2.0, gt=0, le=60)

    def httpx(self) -> httpx.Timeout:
        """Return the equivalent ``httpx.Timeout``."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


def check_base_url(value: str) -> str:
    """Validate an http(s) base URL and drop its trailing slash."""
    url = httpx.URL(value)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url {value!r} must be an absolute http(s) URL")
    return value.rstrip("/")
