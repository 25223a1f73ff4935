"""A partner simulator: the partner's side of PX/1, in the partner's own wire format.

One class serves every partner; each partner package's ``simulator.py`` gives it the partner's
adapter (the codec its real system would implement) and sample messages with the partner's
identifiers and scripts. A simulator

- **sends** messages to the hub in the partner's format, signed with the partner's key, and
  verifies the hub's signed receipt (``send``; ``send_batch`` for batch partners);
- **receives** pushed hub messages at ``POST /px``: verifies the hub's signature over the exact
  bytes, translates them, de-duplicates by id and answers with its own signed receipt;
- **polls** (pull partners) ``GET /v1/inbox`` with a bearer JWT, verifies each message and
  acknowledges it with ``receipt.ack`` (``poll``);
- can be told to fail (``faults``, the shared ``adapters.simulation.Faults``): ``slow``
  (seconds), ``error_5xx`` (answer 503 without taking the message), ``error_after`` (take it,
  then answer 500: the hub sends it again), ``reset`` (drop the connection), ``bad_signature``
  (sign the receipt wrongly), ``down`` (refuse everything with 503 until cleared) and
  ``duplicate`` (send each message twice).

Run in-process (``app`` with any ASGI server, or ``adapters.simulation.LoopbackServer``) or
alone with ``gateway simulate partner <ID>``. The admin endpoints under ``/_sim`` set faults,
list what arrived and trigger a sample claim.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.simulation import PARTNER_FAULTS, Fault, Faults, abort_connection
from gateway.clock import iso_millis
from gateway.errors import GatewayError, ProblemError
from gateway.ports.partner import PartnerAdapter
from gateway.protocol.envelope import HUB_PARTY, Envelope
from gateway.protocol.signing import KeyRing, Signer, b64url_decode, verify_detached

__all__ = ["FAULTS", "PartnerSimulator", "SendResult"]

FAULTS = PARTNER_FAULTS
Sample = Callable[[str], dict[str, Any]]  # claim_ref -> canonical claim.notify payload


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int
    receipts: list[dict[str, Any]]  # canonical receipts (one per accepted/duplicate message)
    results: list[dict[str, Any]]  # batch: the per-line results; else [] (or the problem)


class _ResetMiddleware:
    """Drop the TCP connection (RST) when the app asks for it, under uvicorn."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reset = False

        async def guarded(message: Any) -> None:
            nonlocal reset
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if headers.get(b"x-sim-reset") == b"1":
                    reset = True
                    abort_connection(send)  # not under uvicorn: the answer is just never sent
                    return
            if not reset:
                await send(message)

        await self.app(scope, receive, guarded)


class PartnerSimulator:
    """The partner side of PX/1 for one partner, speaking its wire format."""

    def __init__(self, partner_id: str, adapter: PartnerAdapter, signer: Signer, *,
                 hub_url: str = "http://127.0.0.1:8400", hub_keys: KeyRing | None = None,
                 sample_claim: Sample | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.partner_id = partner_id
        self.adapter = adapter
        self.signer = signer
        self.hub_url = hub_url.rstrip("/")
        self.hub_keys = hub_keys
        self.sample_claim = sample_claim
        self.clock = clock
        self.faults = Faults()
        self.received: dict[str, dict[str, Any]] = {}  # message id -> canonical envelope
        self.received_wire: dict[str, bytes] = {}  # message id -> wire bytes as received
        self.deliveries: list[str] = []  # every delivery's message id, duplicates included
        self.app = self._build_app()

    # ---- keys -------------------------------------------------------------------------

    async def _hub_ring(self, client: httpx.AsyncClient) -> KeyRing:
        if self.hub_keys is None:
            resp = await client.get(f"{self.hub_url}/.well-known/jwks.json", timeout=10)
            resp.raise_for_status()
            ring = KeyRing()
            ring.add_keyset(HUB_PARTY, resp.json())
            self.hub_keys = ring
        return self.hub_keys

    def _verify_hub(self, body: bytes, signature: str | None) -> None:
        assert self.hub_keys is not None
        signed = verify_detached(body, signature, self.hub_keys)
        if signed.party != HUB_PARTY:
            raise GatewayError(f"signed by {signed.party}, not the hub")

    # ---- building messages --------------------------------------------------------------

    def envelope(self, type_: str, payload: dict[str, Any], *,
                 correlation_id: str | None = None) -> dict[str, Any]:
        """A canonical envelope from this partner, sent now."""
        now = self.clock().astimezone(UTC)
        return {"id": str(uuid.uuid4()), "type": type_, "version": 1, "sender": self.partner_id,
                "recipient": HUB_PARTY, "sent_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "correlation_id": correlation_id, "payload": payload}

    def claim(self, claim_ref: str) -> dict[str, Any]:
        """A sample claim.notify envelope with this partner's identifiers and script."""
        if self.sample_claim is None:
            raise GatewayError(f"no sample claim for {self.partner_id}")
        return self.envelope("claim.notify", self.sample_claim(claim_ref),
                             correlation_id=claim_ref)

    def wire(self, envelope: dict[str, Any]) -> bytes:
        """The envelope in this partner's wire format."""
        return self.adapter.encode(orjson.dumps(envelope))

    # ---- sending --------------------------------------------------------------------

    async def send(self, client: httpx.AsyncClient, envelope: dict[str, Any]) -> SendResult:
        """Send one message in the partner's format; verify the hub's signed receipt."""
        if self.adapter.batch:
            return await self.send_batch(client, [envelope])
        return await self._post(client, self.wire(envelope))

    async def send_batch(self, client: httpx.AsyncClient,
                         envelopes: list[dict[str, Any]]) -> SendResult:
        """Send several messages in one signed batch (batch partners)."""
        body = b"\n".join(self.wire(e) for e in envelopes) + b"\n"
        return await self._post(client, body)

    async def send_raw(self, client: httpx.AsyncClient, body: bytes) -> httpx.Response:
        """POST already-encoded wire bytes, signed (for fixtures and refusal tests)."""
        return await client.post(f"{self.hub_url}/v1/messages", content=body, headers={
            "Content-Type": self.adapter.wire_media_type,
            "X-JWS-Signature": self.signer.sign(body)}, timeout=30)

    async def _post(self, client: httpx.AsyncClient, body: bytes) -> SendResult:
        ring = await self._hub_ring(client)
        resp = await self.send_raw(client, body)
        if self.faults.duplicate:
            resp = await self.send_raw(client, body)
        if resp.status_code >= 300:
            return SendResult(resp.status_code, [], [resp.json()])
        verify_detached(resp.content, resp.headers.get("X-JWS-Signature"), ring)
        if not self.adapter.batch:
            return SendResult(resp.status_code, [self.adapter.parse_receipt(resp.content)], [])
        results = [orjson.loads(line) for line in resp.content.splitlines() if line.strip()]
        receipts = []
        for r in results:
            if "receipt_b64" in r:
                raw = b64url_decode(r["receipt_b64"])
                verify_detached(raw, r["receipt_signature"], ring)
                receipts.append(self.adapter.parse_receipt(raw))
        return SendResult(resp.status_code, receipts, results)

    # ---- receiving ------------------------------------------------------------------

    def _take_in(self, body: bytes) -> tuple[dict[str, Any], bool]:
        """Translate a hub message; return it and whether it is new (de-duplicated by id)."""
        if self.adapter.batch:
            canonical = self.adapter.decode_one(body)  # type: ignore[attr-defined]
        else:
            item = self.adapter.decode(body)[0]
            if item.error is not None:
                raise item.error
            assert item.envelope is not None
            canonical = item.envelope
        env = Envelope.model_validate_json(canonical)
        if env.recipient != self.partner_id or env.sender != HUB_PARTY:
            raise GatewayError(f"message {env.id} is not from the hub to {self.partner_id}")
        self.deliveries.append(env.id)
        new = env.id not in self.received
        if new:
            self.received[env.id] = orjson.loads(canonical)
            self.received_wire[env.id] = body
        return self.received[env.id], new

    def _receipt(self, body: bytes, message_id: str, new: bool) -> dict[str, Any]:
        return {"receipt_id": str(uuid.uuid4()), "message_id": message_id, "sender": HUB_PARTY,
                "status": "accepted" if new else "duplicate",
                "received_at": iso_millis(self.clock()),
                "body_sha256": hashlib.sha256(body).hexdigest()}

    async def _push_endpoint(self, request: Request) -> Response:
        body = await request.body()
        if self.faults.down or self.faults.take("error_5xx"):
            return JSONResponse({"error": "unavailable"}, status_code=503)
        if slow := self.faults.draw(Fault.slow):
            await asyncio.sleep(slow.seconds)
        if self.faults.take("reset"):
            return Response(b"", headers={"x-sim-reset": "1"})
        if self.hub_keys is None:
            # Run alone (`gateway simulate partner`), a push partner may be pushed to before it
            # ever sent anything: it learns the hub's keys here, as it would before sending.
            async with httpx.AsyncClient() as client:
                await self._hub_ring(client)
        try:
            self._verify_hub(body, request.headers.get("X-JWS-Signature"))
            env, new = self._take_in(body)
        except ProblemError as exc:
            return JSONResponse({"code": exc.code, "detail": exc.detail}, status_code=exc.status)
        except GatewayError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        if self.faults.take("error_after"):
            return JSONResponse({"error": "internal"}, status_code=500)
        rendered = self.adapter.render_receipt(self._receipt(body, env["id"], new))
        signature = self.signer.sign(rendered)
        if self.faults.take("bad_signature"):
            signature = self.signer.sign(rendered + b" ")
        return Response(rendered, media_type=self.adapter.receipt_media_type,
                        headers={"X-JWS-Signature": signature})

    # ---- pulling --------------------------------------------------------------------

    async def poll(self, client: httpx.AsyncClient, limit: int = 100) -> list[dict[str, Any]]:
        """Fetch the inbox, verify and translate each message, acknowledge them all.

        Returns:
            The canonical envelopes that were new to this partner.
        """
        await self._hub_ring(client)
        token = self.signer.token(HUB_PARTY, ttl=120, now=self.clock().timestamp())
        resp = await client.get(f"{self.hub_url}/v1/inbox", params={"limit": limit},
                                headers={"Authorization": f"Bearer {token}"}, timeout=30)
        resp.raise_for_status()
        fresh, acks = [], []
        for item in resp.json()["messages"]:
            body = base64.urlsafe_b64decode(item["body_b64"] + "=" * (-len(item["body_b64"]) % 4))
            self._verify_hub(body, item["signature"])
            env, new = self._take_in(body)
            if new:
                fresh.append(env)
            acks.append(self.envelope("receipt.ack",
                                      {"receipt": self._receipt(body, env["id"], True)},
                                      correlation_id=env.get("correlation_id")))
        if acks:
            result = await self.send_batch(client, acks) if self.adapter.batch else None
            if result is None:
                for ack in acks:
                    await self.send(client, ack)
            elif result.status_code != 200:
                raise GatewayError(f"acknowledging failed: {result.results}")
        return fresh

    async def poll_forever(self, client: httpx.AsyncClient, every: float = 2.0) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError, GatewayError):
                await self.poll(client)
            await asyncio.sleep(every)

    # ---- the app --------------------------------------------------------------------

    def _build_app(self) -> ASGIApp:
        app = FastAPI(title=f"{self.partner_id} simulator", docs_url=None, redoc_url=None)
        app.add_api_route("/px", self._push_endpoint, methods=["POST"])

        @app.post("/_sim/faults")
        async def set_fault(request: Request) -> dict[str, Any]:
            data = await request.json()
            if data.get("fault") == "clear":
                self.faults.clear()
            else:
                try:
                    self.faults.set(str(data.get("fault")), int(data.get("count", 1)),
                                    float(data.get("seconds", 0)))
                except ValueError as exc:
                    return {"error": str(exc)}
            return {"counts": self.faults.counts, "down": self.faults.down,
                    "duplicate": self.faults.duplicate}

        @app.get("/_sim/received")
        async def received() -> dict[str, Any]:
            return {"messages": list(self.received.values()), "deliveries": len(self.deliveries)}

        @app.post("/_sim/send/claim")
        async def send_claim(request: Request) -> dict[str, Any]:
            ref = (await request.json()).get("claim_ref") or f"SIM-{uuid.uuid4().hex[:8]}"
            async with httpx.AsyncClient() as client:
                result = await self.send(client, self.claim(ref))
            return {"status": result.status_code, "receipts": result.receipts,
                    "results": result.results}

        return _ResetMiddleware(app)
