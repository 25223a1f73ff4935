"""The PK-MOPHRD partner adapter (wire profile in the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import httpx
import orjson

from adapters.partners.common.cnic import format_cnic_dashed, parse_cnic
from adapters.partners.common.codec import (
    Dialect,
    camel_to_snake,
    canonical_envelope,
    local_timestamp,
    snake_to_camel,
    to_wire,
)
from adapters.partners.common.config import ConfiguredAdapter
from adapters.partners.common.dates import format_ddmmyyyy, parse_ddmmyyyy
from adapters.partners.common.transport import post_signed
from adapters.partners.common.wire import dump, load_json, schema_violation
from adapters.partners.pk_mophrd.config import PkMophrdConfig
from gateway.ports.partner import DecodedItem, DeliveryAnswer, ItemResult

__all__ = ["PkMophrdAdapter"]

# header name -> PX/1 envelope name
_HEADER = {
    "messageId": "id", "messageType": "type", "version": "version", "senderId": "sender",
    "recipientId": "recipient", "sentAt": "sent_at", "correlationId": "correlation_id",
}
_HEADER_OUT = {v: k for k, v in _HEADER.items()}
_RECEIPT = {
    "receiptId": "receipt_id", "messageId": "message_id", "senderId": "sender",
    "status": "status", "receivedAt": "received_at", "bodySha256": "body_sha256",
}
_RECEIPT_OUT = {v: k for k, v in _RECEIPT.items()}


def _date_in(text: str) -> str:
    return parse_ddmmyyyy(text).isoformat()


def _date_out(text: str) -> str:
    return format_ddmmyyyy(date.fromisoformat(text))


def _cnic_in(nid: dict[str, Any]) -> dict[str, Any]:
    if nid.get("scheme") == "PK-CNIC" and isinstance(nid.get("value"), str):
        return {**nid, "value": parse_cnic(nid["value"])}
    return nid


def _cnic_out(nid: dict[str, Any]) -> dict[str, Any]:
    if nid.get("scheme") == "PK-CNIC" and isinstance(nid.get("value"), str):
        return {**nid, "value": format_cnic_dashed(nid["value"])}
    return nid


class PkMophrdAdapter(ConfiguredAdapter):
    """PK-MOPHRD's ``{"header", "body"}`` JSON envelope."""

    name = "pk_mophrd"
    batch = False

    # A frozen config: one shared default instance is safe.
    def __init__(self, config: PkMophrdConfig = PkMophrdConfig()) -> None:  # noqa: B008
        super().__init__(config)
        self.config = config
        self._dialect = Dialect(offset=config.offset, date_in=_date_in, date_out=_date_out,
                                national_id_in=_cnic_in, national_id_out=_cnic_out,
                                key_in=camel_to_snake, key_out=snake_to_camel)

    def decode(self, wire: bytes) -> list[DecodedItem]:
        data = load_json(wire)
        if not isinstance(data, dict) or set(data) != {"header", "body"}:
            raise schema_violation('the body must be {"header": {...}, "body": {...}}')
        header, body = data["header"], data["body"]
        if not isinstance(header, dict) or not isinstance(body, dict):
            raise schema_violation("header and body must be JSON objects")
        message_id = header.get("messageId") if isinstance(header.get("messageId"), str) else None
        unknown = sorted(set(header) - set(_HEADER))
        if unknown:
            raise schema_violation(f"header: unknown fields {unknown} (one of "
                                   f"{', '.join(_HEADER)})", message_id)
        mapped = {_HEADER[wire_name]: value for wire_name, value in header.items()}
        try:
            env = canonical_envelope(mapped, body, self._dialect, header_path="header",
                                     payload_path="body")
        except ValueError as exc:
            raise schema_violation(str(exc), message_id) from None
        return [DecodedItem(wire=wire, envelope=dump(env))]

    def encode(self, envelope: bytes) -> bytes:
        env = orjson.loads(envelope)
        try:
            header = {_HEADER_OUT[k]: v for k, v in env.items() if k != "payload"}
            header = {k: header[k] for k in _HEADER if k in header}
            if isinstance(header.get("sentAt"), str):
                header["sentAt"] = local_timestamp(header["sentAt"], self.config.offset)
            body = to_wire(env.get("payload", {}), self._dialect)
        except (KeyError, ValueError) as exc:
            raise schema_violation(f"cannot write for PK-MOPHRD: {exc}") from None
        return dump({"header": header, "body": body})

    def render_receipt(self, receipt: dict[str, Any]) -> bytes:
        return dump({_RECEIPT_OUT[k]: v for k, v in receipt.items()})

    def parse_receipt(self, body: bytes) -> dict[str, Any]:
        data = load_json(body, "the receipt")
        if not isinstance(data, dict) or not set(data) <= set(_RECEIPT):
            raise schema_violation(f"the receipt must be an object with {', '.join(_RECEIPT)}")
        return {_RECEIPT[k]: v for k, v in data.items()}

    def render_batch(self, results: Sequence[ItemResult]) -> bytes:
        raise NotImplementedError("PK-MOPHRD sends one message per request")

    async def deliver(self, client: httpx.AsyncClient, endpoint: str, wire: bytes,
                      signature: str, *, timeout: float) -> DeliveryAnswer:
        return await post_signed(client, endpoint, wire, signature,
                                 media_type=self.wire_media_type, timeout=timeout)
