"""PX/1 as is: the reference adapter (ID-BPJSTK, BD-WEWB, and any new PX/1 partner).

The wire bytes *are* the canonical envelope, so ``decode`` and ``encode`` pass bytes through
untouched: re-serialising would change bytes a signature covers (and could re-encode Bengali
or Burmese text). Receipts are compact UTF-8 JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from gateway.errors import InvalidMessageError
from gateway.ports.partner import DecodedItem, ItemResult

__all__ = ["Px1Adapter"]


class Px1Adapter:
    """PX/1 JSON envelopes, one per request."""

    name = "px1"
    media_types = frozenset({"application/json"})
    receipt_media_type = "application/json"
    batch = False

    def decode(self, wire: bytes) -> list[DecodedItem]:
        return [DecodedItem(wire=wire, envelope=wire)]

    def encode(self, envelope: bytes) -> bytes:
        return envelope

    def render_receipt(self, receipt: dict[str, Any]) -> bytes:
        return orjson.dumps(receipt)

    def parse_receipt(self, body: bytes) -> dict[str, Any]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidMessageError("malformed_json", "the receipt is not JSON") from None
        if not isinstance(data, dict):
            raise InvalidMessageError("schema_violation", "the receipt must be a JSON object")
        return data

    def render_batch(self, results: Sequence[ItemResult]) -> bytes:
        raise NotImplementedError("PX/1 carries one message per request")
