"""MM-SSB (Social Security Board, Myanmar): PX/1 envelopes in signed JSON Lines batches, pull.

Wire profile (partner -> hub)
    ``POST /v1/messages`` with ``Content-Type: application/x-ndjson`` (``application/jsonl`` is
    accepted too): one PX/1 envelope per line, UTF-8, lines separated by ``\\n`` (a final
    newline is optional; an empty line in the middle is refused as that line), at most
    ``MAX_LINES`` lines. ``X-JWS-Signature`` is the detached JWS over the *whole* batch.
    Field names are PX/1's. MM-SSB's own spellings, translated here:

    - ``national_id`` with scheme ``MM-NRC`` may be written in Burmese script
      (``၁၂/ဥကမ(နိုင်)၁၂၃၄၅၆``) or ASCII (``12/OUKAMA(N)123456``);
    - Myanmar text must be Unicode: a Zawgyi-encoded field is refused, naming it;
    - timestamps carry Myanmar's offset (``2026-11-21T14:45:30+06:30``); canonical is UTC.

    The answer is ``200`` with JSON Lines, one result per batch line, in order::

        {"line": 1, "status": "accepted", "message_id": "...", "receipt_b64": "...",
         "receipt_signature": "<hub's detached JWS over the receipt bytes>"}
        {"line": 2, "status": "refused", "problem": {"code": "schema_violation", ...}}

    signed as a whole by the hub in ``X-JWS-Signature``. Each line is accepted or refused on
    its own: a bad line never loses a good one, and a line sent again gets ``duplicate``.

Wire profile (hub -> partner)
    Pull: MM-SSB has no inbound endpoint. Hub messages wait in ``GET /v1/inbox``; each body is
    one line of the same format (NRC in Burmese script when its township is known, times at
    +06:30) and MM-SSB acknowledges it with a ``receipt.ack`` line.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from adapters.partners.common.codec import Dialect, to_canonical, to_wire
from adapters.partners.common.nrc import format_nrc_burmese, parse_nrc
from adapters.partners.common.transport import post_signed
from adapters.partners.common.wire import dump, load_json, schema_violation
from adapters.partners.common.zawgyi import refuse_zawgyi
from gateway.errors import InvalidMessageError, ProblemError
from gateway.ports.partner import DecodedItem, DeliveryAnswer, ItemResult

__all__ = ["MAX_LINES", "MmSsbAdapter"]

MAX_LINES = 500
OFFSET = "+06:30"


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


DIALECT = Dialect(offset=OFFSET, national_id_in=_nrc_in, national_id_out=_nrc_out)


class MmSsbAdapter:
    """Signed JSON Lines batches of PX/1 envelopes in MM-SSB's spellings."""

    name = "mm_ssb"
    media_types = frozenset({"application/x-ndjson", "application/jsonl"})
    wire_media_type = "application/x-ndjson"
    receipt_media_type = "application/x-ndjson"
    batch = True

    def decode(self, wire: bytes) -> list[DecodedItem]:
        lines = wire.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if not lines:
            raise schema_violation("the batch is empty: send one PX/1 envelope per line")
        if len(lines) > MAX_LINES:
            raise schema_violation(f"the batch has {len(lines)} lines; at most {MAX_LINES}")
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
            return dump(to_canonical(data, DIALECT, ""))
        except ValueError as exc:
            raise schema_violation(f"{where}: {exc}", message_id) from None

    def encode(self, envelope: bytes) -> bytes:
        try:
            return dump(to_wire(orjson.loads(envelope), DIALECT))
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
