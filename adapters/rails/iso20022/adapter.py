"""The ISO 20022 bank rail adapter: pain.001 batches, pain.002 status, camt statements."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import BinaryIO
from urllib.parse import quote

import httpx

from adapters.rails import _hmac
from adapters.rails._results import raise_for_results
from adapters.rails._transport import error_for_response, read_error, send
from adapters.rails.iso20022.camt import parse_camt, scan_camt
from adapters.rails.iso20022.config import Iso20022Config
from adapters.rails.iso20022.pain import (
    Debtor,
    build_pain001,
    check_payout,
    parse_pain002,
)
from gateway.errors import (
    InvalidMessageError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.ports.rail import (
    PayoutInstruction,
    PayoutResult,
    PayoutStatus,
    StatementItem,
    StatementLine,
)

__all__ = ["Iso20022Rail"]

XML = "application/xml"
DUPLICATE_REASON = "AM05"  # the bank already has this EndToEndId with other content


class Iso20022Rail:
    """Bank rail: one signed pain.001 upload per submit, answered by a pain.002."""

    name = "iso20022"

    def __init__(self, config: Iso20022Config) -> None:
        self.config = config
        self._timeout = config.timeouts.httpx()
        self._debtor = Debtor(config.debtor_name, config.debtor_account, config.debtor_bic)

    def _headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        return _hmac.request_headers(
            self.config.api_key_id,
            self.config.hmac_secret.get_secret_value(),
            method,
            httpx.URL(url).raw_path.decode("ascii"),
            body,
        )

    async def submit(
        self, client: httpx.AsyncClient, payouts: Sequence[PayoutInstruction]
    ) -> list[PayoutStatus]:
        """Upload the batch; return statuses in order or raise (whole-batch errors)."""
        return raise_for_results(await self.submit_each(client, payouts))

    async def submit_each(
        self, client: httpx.AsyncClient, payouts: Sequence[PayoutInstruction]
    ) -> list[PayoutResult]:
        """Upload the batch; return one result per payout, in order.

        A payout that cannot be written as pain.001 (too long an id, say) is refused on its own
        and left out of the file; a failure of the upload itself is every sent payout's error.
        """
        refused = {p.idempotency_key: why for p in payouts if (why := check_payout(p))}
        keys = [p.idempotency_key for p in payouts]
        if len(set(keys)) != len(keys):
            raise PermanentDeliveryError("iso20022 batch: duplicate idempotency keys")
        sendable = [p for p in payouts if p.idempotency_key not in refused]
        answers: dict[str, PayoutResult] = {
            key: PayoutResult(key, error=PermanentDeliveryError(f"iso20022 {key}: {why}"))
            for key, why in refused.items()
        }
        if sendable:
            answers.update(await self._upload(client, sendable))
        return [answers[p.idempotency_key] for p in payouts]

    async def _upload(
        self, client: httpx.AsyncClient, payouts: Sequence[PayoutInstruction]
    ) -> dict[str, PayoutResult]:
        now = datetime.now(UTC)
        msg_id, body = build_pain001(payouts, self._debtor, now, now.date())
        url = f"{self.config.base_url}/pain001"
        what = f"iso20022 pain.001 {msg_id}"
        headers = {
            "Content-Type": XML,
            "Idempotency-Key": msg_id,
            **self._headers("POST", url, body),
        }
        try:
            response = await send(
                client, "POST", url, timeout=self._timeout, headers=headers, content=body, what=what
            )
            if response.status_code not in (200, 201, 202):
                raise error_for_response(response, what)
            try:
                original, group, statuses = parse_pain002(response.content)
            except InvalidMessageError as exc:
                raise OutcomeUnknownError(f"{what}: unreadable pain.002 ({exc})") from exc
            if original != msg_id:
                raise OutcomeUnknownError(f"{what}: acknowledgement is for {original}")
        except (TransientDeliveryError, OutcomeUnknownError, PermanentDeliveryError) as exc:
            return {p.idempotency_key: PayoutResult(p.idempotency_key, error=exc) for p in payouts}
        by_key = {s.idempotency_key: s for s in statuses}
        results: dict[str, PayoutResult] = {}
        for p in payouts:
            key = p.idempotency_key
            status = by_key.get(key)
            if status is None and group == "RJCT":
                err = PermanentDeliveryError(f"{what}: the bank rejected the whole file")
                results[key] = PayoutResult(key, error=err)
            elif status is None:
                err2 = OutcomeUnknownError(f"{what}: acknowledgement does not mention {key}")
                results[key] = PayoutResult(key, error=err2)
            elif status.reason == DUPLICATE_REASON:
                err3 = PermanentDeliveryError(f"{what}: {key} already used for another payout")
                results[key] = PayoutResult(key, error=err3)
            else:
                results[key] = PayoutResult(key, status=status)
        return results

    async def status(self, client: httpx.AsyncClient, idempotency_key: str) -> PayoutStatus | None:
        """Fetch the pain.002 of one EndToEndId; ``None`` if the bank never received it."""
        url = f"{self.config.base_url}/pain002/{quote(idempotency_key, safe='')}"
        what = f"iso20022 status {idempotency_key}"
        try:
            response = await send(
                client,
                "GET",
                url,
                timeout=self._timeout,
                headers=self._headers("GET", url, b""),
                what=what,
            )
        except OutcomeUnknownError as exc:  # a read acts on nothing: just ask again later
            raise TransientDeliveryError(str(exc)) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            err = error_for_response(response, what)
            if isinstance(err, PermanentDeliveryError):
                raise err
            raise TransientDeliveryError(str(err)) from err
        return _status_of(response.content, idempotency_key, what)

    async def cancel(self, client: httpx.AsyncClient, idempotency_key: str) -> PayoutStatus:
        """``POST /cancel/{EndToEndId}``; the bank answers a pain.002 of the state after it."""
        url = f"{self.config.base_url}/cancel/{quote(idempotency_key, safe='')}"
        what = f"iso20022 cancel {idempotency_key}"
        try:
            response = await send(
                client, "POST", url, timeout=self._timeout,
                headers=self._headers("POST", url, b""), what=what,
            )
        except OutcomeUnknownError as exc:  # a cancel is idempotent: asking again is safe
            raise TransientDeliveryError(str(exc)) from exc
        if response.status_code != 200:
            raise TransientDeliveryError(str(error_for_response(response, what)))
        return _status_of(response.content, idempotency_key, what)

    async def fetch_statement(self, client: httpx.AsyncClient, day: date) -> bytes:
        """Download the camt.053 of ``day``.

        Raises:
            TransientDeliveryError: not available yet (404), or the bank could not be asked.
            PermanentDeliveryError: the bank refused the request (401, 403, another 4xx).
        """
        return await self._fetch(client, "camt053", day)

    async def fetch_notifications(self, client: httpx.AsyncClient, day: date) -> bytes:
        """Download the camt.054 debit/credit notifications of ``day`` (same errors)."""
        return await self._fetch(client, "camt054", day)

    async def _fetch(self, client: httpx.AsyncClient, kind: str, day: date) -> bytes:
        url = f"{self.config.base_url}/{kind}/{day.isoformat()}"
        what = f"iso20022 {kind[:4]}.{kind[4:]} {day}"
        try:
            response = await send(
                client,
                "GET",
                url,
                timeout=self._timeout,
                headers=self._headers("GET", url, b""),
                what=what,
            )
        except OutcomeUnknownError as exc:  # a read changes nothing: asking again is safe
            raise TransientDeliveryError(str(exc)) from exc
        if response.status_code != 200:
            raise read_error(response, what)
        return response.content

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> PayoutStatus:
        """Verify a pushed pain.002 (HMAC over timestamp and body) with exactly one transaction.

        Raises:
            AuthError: signature_missing / signature_invalid.
            InvalidMessageError: stale_message / clock_skew / schema_violation / unknown_type.
        """
        _hmac.verify_callback(
            self.config.callback_secret.get_secret_value(),
            headers,
            body,
            max_age=self.config.callback_max_age_seconds,
        )
        _, _, statuses = parse_pain002(body)
        if len(statuses) != 1:
            raise InvalidMessageError(
                "schema_violation",
                f"callback pain.002 must carry 1 transaction, has {len(statuses)}",
            )
        return statuses[0]

    def parse_statement(self, data: bytes) -> list[StatementLine]:
        """Parse a camt.053 or camt.054 (see ``camt``)."""
        return parse_camt(data)

    def scan_statement(self, source: BinaryIO) -> Iterator[StatementItem]:
        """Stream a camt.053 or camt.054: records, lines, bad entries and proofs (``camt``)."""
        return scan_camt(source)


def _status_of(pain002: bytes, idempotency_key: str, what: str) -> PayoutStatus:
    """The payout's status in a bank's pain.002 answer (status query or cancel)."""
    try:
        _, _, statuses = parse_pain002(pain002)
    except InvalidMessageError as exc:
        raise TransientDeliveryError(f"{what}: unreadable pain.002 ({exc})") from exc
    for status in statuses:
        if status.idempotency_key == idempotency_key:
            return status
    raise TransientDeliveryError(f"{what}: pain.002 does not mention it")
