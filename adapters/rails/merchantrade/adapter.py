"""The Merchantrade e-wallet rail adapter (wire format in the package docstring)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from adapters.rails import _hmac
from adapters.rails._results import raise_for_results
from adapters.rails._transport import error_for_response, read_error, send
from adapters.rails.merchantrade.config import MerchantradeConfig
from adapters.rails.merchantrade.settlement import parse_settlement, scan_settlement
from gateway.errors import (
    DeliveryError,
    InvalidMessageError,
    OutcomeUnknownError,
    TransientDeliveryError,
)
from gateway.ports.rail import (
    PayoutInstruction,
    PayoutResult,
    PayoutState,
    PayoutStatus,
    StatementItem,
    StatementLine,
)

__all__ = ["MerchantradeRail", "parse_status", "payout_body"]

_STATES = {s.value: s for s in PayoutState}


def payout_body(payout: PayoutInstruction) -> bytes:
    """Return the exact JSON bytes of a payout request (deterministic: same payout, same bytes)."""
    doc = {
        "amount": payout.amount.amount_str(),
        "currency": payout.amount.currency,
        "beneficiary_name": payout.beneficiary_name,
        "account": payout.account,
        "provider": payout.provider,
        "reference": payout.reference,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def parse_status(doc: Any, where: str) -> PayoutStatus:
    """Parse the rail's payout JSON (answer, status query or callback) into a status.

    Raises:
        InvalidMessageError: schema_violation naming the field.
    """
    if not isinstance(doc, dict):
        raise InvalidMessageError("schema_violation", f"{where}: expected a JSON object")
    key, state = doc.get("idempotency_key"), doc.get("state")
    if not isinstance(key, str) or not key:
        raise InvalidMessageError("schema_violation", f"{where}: idempotency_key missing")
    if state not in _STATES:
        raise InvalidMessageError("schema_violation", f"{where}: state {state!r} unknown")
    ref, reason, at = doc.get("rail_reference"), doc.get("reason"), doc.get("updated_at")
    if ref is not None and not isinstance(ref, str):
        raise InvalidMessageError("schema_violation", f"{where}: rail_reference not a string")
    if reason is not None and not isinstance(reason, str):
        raise InvalidMessageError("schema_violation", f"{where}: reason not a string")
    when: datetime | None = None
    if at is not None:
        try:
            when = datetime.fromisoformat(str(at))
        except ValueError:
            raise InvalidMessageError("schema_violation", f"{where}: updated_at invalid") from None
        if when.tzinfo is None:
            raise InvalidMessageError("schema_violation", f"{where}: updated_at lacks an offset")
    return PayoutStatus(key, _STATES[state], rail_reference=ref, reason=reason, at=when)


class MerchantradeRail:
    """Merchantrade REST rail: one signed JSON request per payout, HMAC callbacks, CSV."""

    name = "merchantrade"

    def __init__(self, config: MerchantradeConfig) -> None:
        self.config = config
        self._timeout = config.timeouts.httpx()
        self._payout_url = config.base_url + "/v1/payouts"
        self._payout_path = httpx.URL(self._payout_url).raw_path.decode("ascii")  # as signed

    def _headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        secret = self.config.hmac_secret.get_secret_value()
        return _hmac.request_headers(self.config.api_key_id, secret, method, path, body)

    async def submit(
        self, client: httpx.AsyncClient, payouts: Sequence[PayoutInstruction]
    ) -> list[PayoutStatus]:
        """Send each payout; return the statuses in order or raise (see ``raise_for_results``)."""
        return raise_for_results(await self.submit_each(client, payouts))

    async def submit_each(
        self, client: httpx.AsyncClient, payouts: Sequence[PayoutInstruction]
    ) -> list[PayoutResult]:
        """Send each payout concurrently (bounded); return one result per payout, in order."""
        gate = asyncio.Semaphore(self.config.max_concurrency)

        async def one(payout: PayoutInstruction) -> PayoutResult:
            async with gate:
                try:
                    status = await self._submit_one(client, payout)
                except DeliveryError as exc:
                    return PayoutResult(payout.idempotency_key, error=exc)
                return PayoutResult(payout.idempotency_key, status=status)

        return list(await asyncio.gather(*(one(p) for p in payouts)))

    async def _submit_one(
        self, client: httpx.AsyncClient, payout: PayoutInstruction
    ) -> PayoutStatus:
        url = self._payout_url
        body = payout_body(payout)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": payout.idempotency_key,
            **self._headers("POST", self._payout_path, body),
        }
        what = f"merchantrade payout {payout.idempotency_key}"
        response = await send(
            client, "POST", url, timeout=self._timeout, headers=headers, content=body, what=what
        )
        if response.status_code not in (200, 201, 202):
            raise error_for_response(response, what)
        try:
            status = parse_status(response.json(), what)
        except (ValueError, InvalidMessageError) as exc:
            # The rail said yes but we cannot read what: it may have acted.
            raise OutcomeUnknownError(f"{what}: unreadable answer ({exc})") from exc
        if status.idempotency_key != payout.idempotency_key:
            raise OutcomeUnknownError(f"{what}: answer is about another payout")
        return status

    async def status(self, client: httpx.AsyncClient, idempotency_key: str) -> PayoutStatus | None:
        """Query one payout by idempotency key; ``None`` if the rail never received it."""
        url = f"{self.config.base_url}/v1/payouts/{quote(idempotency_key, safe='')}"
        what = f"merchantrade status {idempotency_key}"
        response = await self._get(client, url, what)
        if response.status_code == 404:
            return None
        try:
            return parse_status(response.json(), what)
        except (ValueError, InvalidMessageError) as exc:
            raise TransientDeliveryError(f"{what}: unreadable answer ({exc})") from exc

    async def cancel(self, client: httpx.AsyncClient, idempotency_key: str) -> PayoutStatus:
        """``POST /v1/payouts/{key}/cancel``; return the payout's state afterwards."""
        url = f"{self.config.base_url}/v1/payouts/{quote(idempotency_key, safe='')}/cancel"
        what = f"merchantrade cancel {idempotency_key}"
        headers = self._headers("POST", httpx.URL(url).raw_path.decode("ascii"), b"")
        try:
            response = await send(
                client, "POST", url, timeout=self._timeout, headers=headers, what=what
            )
        except OutcomeUnknownError as exc:  # a cancel is idempotent: asking again is safe
            raise TransientDeliveryError(str(exc)) from exc
        if response.status_code != 200:
            raise TransientDeliveryError(str(error_for_response(response, what)))
        try:
            status = parse_status(response.json(), what)
        except (ValueError, InvalidMessageError) as exc:
            raise TransientDeliveryError(f"{what}: unreadable answer ({exc})") from exc
        if status.idempotency_key != idempotency_key:
            raise TransientDeliveryError(f"{what}: answer is about another payout")
        return status

    async def fetch_statement(self, client: httpx.AsyncClient, day: date) -> bytes:
        """Download the settlement CSV of ``day`` (bytes for ``parse_statement``).

        Raises:
            TransientDeliveryError: not available yet (404), or Merchantrade could not be asked.
            PermanentDeliveryError: Merchantrade refused the request (401, 403, another 4xx).
        """
        url = f"{self.config.base_url}/v1/settlements/{day.isoformat()}.csv"
        what = f"merchantrade settlement {day}"
        response = await self._get(client, url, what)
        if response.status_code == 404:
            raise read_error(response, what)
        return response.content

    async def _get(self, client: httpx.AsyncClient, url: str, what: str) -> httpx.Response:
        # A read changes nothing: what may have reached the rail is simply asked again, and
        # only a refusal of the request itself is permanent (read_error).
        headers = self._headers("GET", httpx.URL(url).raw_path.decode("ascii"), b"")
        try:
            response = await send(
                client, "GET", url, timeout=self._timeout, headers=headers, what=what
            )
        except OutcomeUnknownError as exc:
            raise TransientDeliveryError(str(exc)) from exc
        if response.status_code in (200, 404):
            return response
        raise read_error(response, what)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> PayoutStatus:
        """Verify a callback's HMAC and freshness, then parse its payout status.

        Raises:
            AuthError: signature_missing / signature_invalid.
            InvalidMessageError: stale_message / clock_skew / malformed_json / schema_violation.
        """
        _hmac.verify_callback(
            self.config.callback_secret.get_secret_value(),
            headers,
            body,
            max_age=self.config.callback_max_age_seconds,
        )
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise InvalidMessageError("malformed_json", f"callback is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("event") != "payout.status":
            raise InvalidMessageError("schema_violation", "callback event must be payout.status")
        return parse_status(doc.get("payout"), "callback payout")

    def parse_statement(self, data: bytes) -> list[StatementLine]:
        """Parse a daily settlement CSV (see ``settlement``)."""
        return parse_settlement(data)

    def scan_statement(self, source: BinaryIO) -> Iterator[StatementItem]:
        """Stream a settlement CSV: its record, lines, bad rows and proofs (``settlement``)."""
        return scan_settlement(source)
