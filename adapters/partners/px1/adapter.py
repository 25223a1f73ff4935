"""The PX/1 reference partner adapter (wire profile in the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from adapters.partners.common.config import ConfiguredAdapter
from adapters.partners.common.transport import post_signed
from adapters.partners.px1.config import Px1Config
from gateway.errors import InvalidMessageError
from gateway.ports.partner import DecodedItem, DeliveryAnswer, ItemResult

__all__ = ["Px1Adapter"]


class Px1Adapter(ConfiguredAdapter):
    """PX/1 JSON envelopes, one per request."""

    name = "px1"
    batch = False

    # A frozen config: one shared default instance is safe.
    def __init__(self, config: Px1Config = Px1Config()) -> None:  # noqa: B008
        super().__init__(config)
        self.config = config

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

    async def deliver(self, client: httpx.AsyncClient, endpoint: str, wire: bytes,
                      signature: str, *, timeout: float) -> DeliveryAnswer:
        return await post_signed(client, endpoint, wire, signature,
                                 media_type=self.wire_media_type, timeout=timeout)
