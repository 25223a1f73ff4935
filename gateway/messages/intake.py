"""Intake: verify, validate and durably store a partner's message; answer with a signed receipt.

The order of checks is the protocol's: the body's signature is verified over the exact bytes
before anything reads them, so an unauthenticated caller learns nothing about validation. Each
message is one INSERT (evidence row) plus one outbox row, committed together; the receipt is
signed *before* the insert so that it is stored in the same row and a ``2xx`` is only ever sent
for something committed. Idempotency rests on the unique ``(sender, message_id)`` constraint
and ``INSERT ... ON CONFLICT DO NOTHING``: concurrent duplicates on any number of processes
resolve to exactly one insert, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import String, Table, bindparam, cast, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.clock import Clock, iso_millis, utcnow
from gateway.errors import (
    ConflictError,
    ForbiddenError,
    InvalidMessageError,
    PayloadTooLargeError,
    ProblemError,
    UnsupportedMediaTypeError,
)
from gateway.messages.batches import record_batch_lines, store_batch
from gateway.messages.partner_keys import PartnerKeys
from gateway.messages.ratelimit import RateLimiter
from gateway.messages.suspensions import Suspensions
from gateway.observability.logs import bind_ids
from gateway.outbox import records
from gateway.ports.partner import DecodedItem, ItemResult, PartnerAdapter
from gateway.protocol import strictjson
from gateway.protocol.envelope import HUB_PARTY, PARTNER_TO_HUB, Envelope
from gateway.protocol.partners import Partner, PartnerRegistry
from gateway.protocol.signing import Signer, verify_detached
from gateway.storage.tables import messages
from gateway.storage.uow import UnitOfWorkFactory

__all__ = ["Intake", "IntakeResponse", "OutcomeHook", "describe_validation_error"]

# Told of each message's outcome: (partner id if known, None if accepted else a problem code).
OutcomeHook = Callable[[str | None, str | None], None]


def _ignore(_partner: str | None, _code: str | None) -> None:
    return None


@dataclass(frozen=True, slots=True)
class IntakeResponse:
    status_code: int
    body: bytes
    media_type: str
    signature: str


@dataclass(frozen=True, slots=True)
class _Checked:
    envelope: Envelope
    message_id: str


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """Say which fields are wrong and why, in one line."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc or 'body'}: {msg}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


class Intake:
    """Receive partner messages (``POST /v1/messages``)."""

    def __init__(
        self,
        registry: PartnerRegistry,
        adapters: Mapping[str, PartnerAdapter],
        signer: Signer,
        uow: UnitOfWorkFactory,
        *,
        max_body_bytes: int,
        max_age: timedelta,
        max_skew: timedelta,
        clock: Clock = utcnow,
        on_outcome: OutcomeHook = _ignore,
        suspensions: Suspensions | None = None,
        keys: PartnerKeys | None = None,
    ) -> None:
        self.registry = registry
        self.on_outcome = on_outcome
        # Operators' suspensions (admin API), read by every process within seconds.
        self.suspensions = suspensions
        # Partner keys as rotated through the admin API, read by every process within seconds.
        self.keys = keys
        self.adapters = adapters
        self.signer = signer
        self.uow = uow
        self.max_body_bytes = max_body_bytes
        self.max_age = max_age
        self.max_skew = max_skew
        self.clock = clock
        self.rate_limiter = RateLimiter()
        self._media_types = frozenset(mt for a in adapters.values() for mt in a.media_types)

    async def receive(
        self, body: bytes, signature: str | None, media_type: str | None,
        client_identity: str | None = None,
    ) -> IntakeResponse:
        """Handle one request body; return the response to send, or raise a ProblemError.

        ``client_identity`` is None when no TLS proxy vouches for the caller (the check is
        off); otherwise the partner id of the verified client certificate, or "" for none.

        Every message's outcome goes to ``on_outcome`` (a batch's once per line; a request
        refused as a whole, once)."""
        sender: list[str] = []  # the verified partner, once known
        try:
            return await self._receive(body, signature, media_type, client_identity, sender)
        except ProblemError as exc:
            self.on_outcome(sender[0] if sender else None, exc.code)
            raise
        except Exception:
            self.on_outcome(sender[0] if sender else None, "internal_error")
            raise

    async def _receive(
        self, body: bytes, signature: str | None, media_type: str | None,
        client_identity: str | None, sender: list[str],
    ) -> IntakeResponse:
        if len(body) > self.max_body_bytes:
            raise PayloadTooLargeError(
                "payload_too_large", f"the body is {len(body)} bytes; at most "
                f"{self.max_body_bytes} are accepted"
            )
        mt = _media_type(media_type)
        if mt not in self._media_types:
            raise UnsupportedMediaTypeError(
                "unsupported_media_type",
                f"Content-Type {media_type!r} is not accepted "
                f"(one of {', '.join(sorted(self._media_types))})",
            )
        ring = await self.keys.ring() if self.keys is not None else self.registry.keys
        signed = verify_detached(body, signature, ring)
        partner = self.registry.get(signed.party)
        assert partner is not None  # every key in the ring belongs to a registered partner
        sender.append(partner.id)
        bind_ids(partner=partner.id)
        if partner.suspended or (self.suspensions is not None
                                 and await self.suspensions.is_suspended(partner.id)):
            raise ForbiddenError("partner_suspended", f"partner {partner.id} is suspended")
        if client_identity is not None:
            _check_client_identity(partner, client_identity)
        adapter = self.adapters[partner.adapter]
        if mt not in adapter.media_types:
            raise UnsupportedMediaTypeError(
                "unsupported_media_type",
                f"{partner.id} sends {', '.join(sorted(adapter.media_types))}, not {mt}",
            )
        self.rate_limiter.take(partner.id, partner.rate_limit_per_minute)

        items = adapter.decode(body)
        if not adapter.batch:
            result = await self._one(partner, adapter, items[0], signature or "", signed.kid)
            self.on_outcome(partner.id, None)
            status = 202 if result.status == "accepted" else 200
            assert result.receipt is not None and result.receipt_signature is not None
            return IntakeResponse(
                status, result.receipt, adapter.receipt_media_type, result.receipt_signature
            )
        async with self.uow() as uow:
            batch_pk = await store_batch(uow.conn, partner_id=partner.id, body=body,
                                         signature=signature or "", kid=signed.kid,
                                         now=self.clock())
            await uow.commit()
        results = []
        for item in items:
            try:
                results.append(
                    await self._one(partner, adapter, item, signature or "", signed.kid)
                )
                self.on_outcome(partner.id, None)
            except ProblemError as exc:
                self.on_outcome(partner.id, exc.code)
                results.append(ItemResult("refused", problem=_problem(exc), line=item.line))
        async with self.uow() as uow:
            await record_batch_lines(uow.conn, batch_pk, partner.id, results)
            await uow.commit()
        rendered = adapter.render_batch(results)
        return IntakeResponse(
            200, rendered, adapter.receipt_media_type, self.signer.sign(rendered)
        )

    async def _one(
        self,
        partner: Partner,
        adapter: PartnerAdapter,
        item: DecodedItem,
        signature: str,
        kid: str,
    ) -> ItemResult:
        if item.error is not None:
            raise item.error
        assert item.envelope is not None
        checked = self._check(partner, item.envelope)
        env = checked.envelope
        bind_ids(message_id=env.id)
        now = self.clock()
        body_sha256 = hashlib.sha256(item.wire).hexdigest()
        receipt = {
            "receipt_id": str(uuid.uuid4()),
            "message_id": env.id,
            "sender": env.sender,
            "status": "accepted",
            "received_at": iso_millis(now),
            "body_sha256": body_sha256,
        }
        receipt_bytes = adapter.render_receipt(receipt)
        receipt_sig = self.signer.sign(receipt_bytes)
        stale = self._timing_problem(env.sent_at, now)
        # One write statement on PostgreSQL (see _insert_message_and_task); a duplicate's
        # lookup after it only reads.
        async with self.uow(single_statement=True) as uow:
            if stale is None:
                now_row = {"state": "pending", "attempts": 0, "next_attempt_at": now,
                           "created_at": now, "updated_at": now}
                inserted = await _insert_message_and_task(uow.conn, {
                    "direction": "in",
                    "partner_id": partner.id,
                    "message_id": checked.message_id,
                    "sender": env.sender,
                    "recipient": env.recipient,
                    "type": env.type,
                    "correlation_id": env.correlation_id,
                    "sent_at": env.sent_at,
                    "received_at": now,
                    "wire": item.wire,
                    "wire_media_type": adapter.wire_media_type,
                    "canonical": None if item.envelope == item.wire else item.envelope,
                    "body_sha256": body_sha256,
                    "signature": signature,
                    "kid": kid,
                    "receipt": receipt_bytes,
                    "receipt_signature": receipt_sig,
                }, {
                    "kind": "process_inbound", "destination": "hub",
                    # Inbound processing is ordered per case among the partner's own
                    # messages only; the "in:" namespace keeps it from queueing behind the
                    # hub's undelivered messages to the partner on the same case.
                    "ordering_key": f"in:{partner.id}:{env.correlation_id}"
                    if env.correlation_id else None,
                    **now_row,
                })
                if inserted:
                    await uow.commit()
                    return ItemResult("accepted", env.id, receipt_bytes, receipt_sig,
                                      line=item.line)
            existing = (await uow.conn.execute(
                select(messages.c.body_sha256, messages.c.receipt)
                .where(messages.c.sender == env.sender,
                       messages.c.message_id == checked.message_id)
            )).first()
        if existing is None:
            assert stale is not None
            raise stale
        if existing.body_sha256 != body_sha256:
            raise ConflictError(
                "id_conflict",
                f"message {env.id} was already received from {env.sender} with a different body",
                message_id=env.id,
            )
        original = adapter.parse_receipt(existing.receipt)
        again = adapter.render_receipt({**original, "status": "duplicate"})
        return ItemResult("duplicate", env.id, again, self.signer.sign(again), line=item.line)

    def _check(self, partner: Partner, raw: bytes) -> _Checked:
        data = strictjson.loads(raw, "the envelope")
        if not isinstance(data, dict):
            raise InvalidMessageError("schema_violation", "the envelope must be a JSON object")
        message_id = data.get("id") if isinstance(data.get("id"), str) else None
        try:
            env = Envelope.model_validate(data)
        except ValidationError as exc:
            raise InvalidMessageError(
                "schema_violation", describe_validation_error(exc), message_id=message_id
            ) from None
        if env.sender != partner.id:
            raise ForbiddenError(
                "sender_mismatch",
                f"the envelope's sender {env.sender} is not the signing partner {partner.id}",
                message_id=env.id,
            )
        if env.recipient != HUB_PARTY:
            raise ForbiddenError(
                "recipient_unknown",
                f"recipient {env.recipient} is not this hub ({HUB_PARTY})",
                message_id=env.id,
            )
        model = PARTNER_TO_HUB.get(env.type)
        if model is None:
            raise InvalidMessageError(
                "unknown_type", f"{env.type!r} is not a partner-to-hub message type of PX/1 "
                f"version 1 (one of {', '.join(sorted(PARTNER_TO_HUB))})", message_id=env.id
            )
        if not partner.allows(env.type):
            raise InvalidMessageError(
                "unknown_type", f"{partner.id} is not configured to send {env.type}",
                message_id=env.id,
            )
        try:
            model.model_validate(env.payload)
        except ValidationError as exc:
            raise InvalidMessageError(
                "schema_violation", describe_validation_error(exc, "payload"), message_id=env.id
            ) from None
        return _Checked(env, env.id.lower())

    def _timing_problem(self, sent_at: datetime, now: datetime) -> InvalidMessageError | None:
        # Not raised at once: a retry of a message that was accepted before it went stale
        # must still get its original receipt (200), so the caller looks for it first.
        if sent_at < now - self.max_age:
            return InvalidMessageError(
                "stale_message", f"sent_at {sent_at.isoformat()} is older than "
                f"{int(self.max_age.total_seconds())} s"
            )
        if sent_at > now + self.max_skew:
            return InvalidMessageError(
                "clock_skew", f"sent_at {sent_at.isoformat()} is more than "
                f"{int(self.max_skew.total_seconds())} s in the future"
            )
        return None


_MESSAGE_COLS = [c for c in messages.c if c.name not in ("pk", "xact_id")]  # xact_id: hub messages


def _check_client_identity(partner: Partner, identity: str) -> None:
    # A certificate proves who holds the connection, the signature who wrote the message:
    # a partner's certificate must not carry another partner's signed messages.
    if identity and identity != partner.id:
        raise ForbiddenError(
            "client_identity_mismatch",
            f"the client certificate is {identity}'s, the message is signed by {partner.id}")
    if not identity and partner.require_client_certificate:
        raise ForbiddenError(
            "client_certificate_required",
            f"partner {partner.id} must connect with its verified client certificate")


def _params(table: Table, names: list[str]) -> dict[str, Any]:
    return {n: bindparam(n, type_=table.c[n].type) for n in names}


def _build_pg_statement() -> Any:
    # Built once: constructing a statement with 26 values costs more CPU per request than
    # executing it. One statement, one round trip: the outbox row exists only if the
    # message row was inserted (a duplicate inserts neither).
    m = (pg_insert(messages).values(_params(messages, [c.name for c in _MESSAGE_COLS]))
         .on_conflict_do_nothing(index_elements=["sender", "message_id"])
         .returning(messages.c.pk).cte("m"))
    return records.enqueue_from(cast(m.c.pk, String))


_PG_INTAKE = _build_pg_statement()
_SQLITE_MESSAGE = (sqlite_insert(messages)
                   .values(_params(messages, [c.name for c in _MESSAGE_COLS]))
                   .on_conflict_do_nothing(index_elements=["sender", "message_id"])
                   .returning(messages.c.pk))
_SQLITE_TASK = records.enqueue_statement()


async def _insert_message_and_task(
    conn: AsyncConnection, row: dict[str, Any], task: dict[str, Any]
) -> bool:
    """Insert the message unless (sender, id) exists, and its processing task; True if new."""
    if conn.dialect.name == "postgresql":
        return (await conn.execute(_PG_INTAKE, {**row, **task})).first() is not None
    pk = (await conn.execute(_SQLITE_MESSAGE, row)).scalar_one_or_none()
    if pk is None:
        return False
    await conn.execute(_SQLITE_TASK, {**task, "ref": str(pk)})
    return True


def _media_type(value: str | None) -> str:
    if not value:
        return ""
    main, _, params = value.partition(";")
    charset = params.strip().lower()
    if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
        return f"{main.strip().lower()};{charset}"
    return main.strip().lower()


def _problem(exc: ProblemError) -> dict[str, Any]:
    return {"code": exc.code, "status": exc.status, "detail": exc.detail, **exc.extra}
