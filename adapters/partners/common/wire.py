"""Small helpers every translating adapter needs: strict JSON reading and refusals."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidMessageError
from gateway.protocol import strictjson

__all__ = ["dump", "load_json", "schema_violation"]


def load_json(raw: bytes, what: str = "the body") -> Any:
    """Parse UTF-8 JSON under the hub's strict rules (gateway.protocol.strictjson).

    Raises:
        InvalidMessageError: malformed_json, or schema_violation naming what was being read.
    """
    return strictjson.loads(raw, what)


def schema_violation(detail: str, message_id: str | None = None) -> InvalidMessageError:
    """A refusal that names the field and what is wrong with it."""
    extra = {"message_id": message_id} if message_id else {}
    return InvalidMessageError("schema_violation", detail, **extra)


def dump(value: Any) -> bytes:
    """Canonical envelope bytes: compact UTF-8 JSON, non-ASCII text unescaped."""
    return orjson.dumps(value)
