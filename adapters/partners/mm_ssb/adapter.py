"""The MM-SSB partner adapter (wire profile in the package docstring)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from adapters.partners.common.codec import Dialect, to_canonical, to_wire
from adapters.partners.common.config import ConfiguredAdapter
from adapters.partners.common.nrc import format_nrc_burmese, parse_nrc
from adapters.partners.common.transport import post_signed
from adapters.partners.common.wire import dump, load_json, schema_violation
from adapters.partners.common.zawgyi import refuse_zawgyi
from adapters.partners.mm_ssb.config import MmSsbConfig
from gateway.errors import InvalidMessageError, ProblemError
from gateway.ports.partner import DecodedItem, DeliveryAnswer, ItemResult

__all__ = ["MmSsbAdapter"]


def _nrc_in(nid: dict[str, Any]) -> dict[str, Any]:
    if nid.get("scheme") == "MM-NRC" and isinstance(nid.get("value"), str):
        return {**nid, "value": parse_nrc(nid["value"])}
    return nid


def _nrc_out(nid: dict[str, Any]) -> dict[str, Any]:
    if nid.get("scheme") == "MM-NRC" and isinstance(nid.get("value"), str):
        try:
            return {**nid, "value": format_nrc_burmese(nid["value"])}
        except ValueError:  # township without a confirmed Burmese spelling: keep ASCII
            return nid
    return nid


class MmSsbAdapter(ConfiguredAdapter):
    """Signed JSON Lines batches of PX/1 envelopes in MM-SSB's spellings."""

    name = "mm_ssb"
    batch = True

    # A frozen config: one shared default instance is safe.
    def __init__(self, config: MmSsbConfig = MmSsbConfig()) -> None:  # noqa: B008
        super().__init__(config)
        self.config = config
        self._dialect = Dialect(offset=config.offset, national_id_in=_nrc_in,
                                national_id_out=_nrc_out)

    def decode(self, wire: bytes) -> list[DecodedItem]:
        lines = wire.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if not lines:
            raise schema_violation("the batch is empty: send one PX/1 envelope per line")
        if len(lines) > self.config.max_lines:
            raise schema_violation(f"the batch has {len(lines)} lines; "
                                   f"at most {self.config.max_lines}")
        return [self._line(raw, n) for n, raw in enumerate(lines, start=1)]

    def _line(self, raw: bytes, n: int) -> DecodedItem:
        try:
            return DecodedItem(wire=raw, envelope=self.decode_one(raw, f"line {n}"), line=n)
        except ProblemError as exc:
            return DecodedItem(wire=raw, envelope=None, error=exc, line=n)

    def decode_one(self, raw: bytes, where: str = "the message") -> bytes:
        """Translate one line (one envelope) to canonical envelope bytes."""
        if not raw.strip():
            raise schema_violation(f"{where} is empty")
        data = load_json(raw, where)
        if not isinstance(data, dict):
            raise schema_violation(f"{where} must be a JSON object (a PX/1 envelope)")
        message_id = data.get("id") if isinstance(data.get("id"), str) else None
        try:
            refuse_zawgyi(data.get("payload"), "payload")
            return dump(to_canonical(data, self._dialect, ""))
        except ValueError as exc:
            raise schema_violation(f"{where}: {exc}", message_id) from None

    def encode(self, envelope: bytes) -> bytes:
        try:
            return dump(to_wire(orjson.loads(envelope), self._dialect))
        except ValueError as exc:
            raise schema_violation(f"cannot write for MM-SSB: {exc}") from None

    def render_receipt(self, receipt: dict[str, Any]) -> bytes:
        return orjson.dumps(receipt)

    def parse_receipt(self, body: bytes) -> dict[str, Any]:
        data = load_json(body, "the receipt")
        if not isinstance(data, dict):
            raise InvalidMessageError("schema_violation", "the receipt must be a JSON object")
        return data

    def render_batch(self, results: Sequence[ItemResult]) -> bytes:
        out = []
        for r in results:
            row: dict[str, Any] = {"line": r.line, "status": r.status}
            if r.message_id is not None:
                row["message_id"] = r.message_id
            if r.receipt is not None:
                row["receipt_b64"] = base64.urlsafe_b64encode(r.receipt).rstrip(b"=").decode()
                row["receipt_signature"] = r.receipt_signature
            if r.problem is not None:
                row["problem"] = r.problem
            out.append(orjson.dumps(row))
        return b"\n".join(out) + b"\n"

    async def deliver(self, client: httpx.AsyncClient, endpoint: str, wire: bytes,
                      signature: str, *, timeout: float) -> DeliveryAnswer:
        # MM-SSB is configured pull; push works too if it ever gets an endpoint.
        return await post_signed(client, endpoint, wire, signature,
                                 media_type=self.wire_media_type, timeout=timeout)
