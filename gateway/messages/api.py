"""PX/1 partner endpoints: thin HTTP over the intake, receipts and key services."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.responses import Response

from gateway.composition import Hub
from gateway.protocol.envelope import Envelope
from gateway.web.edge import read_body

__all__ = ["router"]

router = APIRouter(tags=["PX/1"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": f"problem+json; codes: {codes}",
             "content": {"application/problem+json": {}}}
    for status, codes in {
        400: "malformed_json", 401: "signature_missing, signature_invalid, unknown_key",
        403: "sender_mismatch, recipient_unknown, partner_suspended, "
             "client_identity_mismatch, client_certificate_required", 409: "id_conflict",
        413: "payload_too_large", 415: "unsupported_media_type",
        422: "schema_violation, stale_message, clock_skew, unknown_type",
        429: "rate_limited (Retry-After)",
    }.items()
}


@router.post(
    "/v1/messages",
    status_code=202,
    summary="Send a signed PX/1 message (or an adapter's wire format) to the hub",
    description=(
        "Body: the envelope's exact bytes; header `X-JWS-Signature: <protected>..<signature>` "
        "(detached JWS, EdDSA or ES256). `202` new message stored (signed receipt), `200` "
        "duplicate (same id, same bytes: the original receipt, status `duplicate`), `409` "
        "same id with a different body. A `2xx` is sent only after the message is committed. "
        "The receipt's signature is in the response's `X-JWS-Signature`."
    ),
    responses={200: {"description": "duplicate: the original receipt again"}, **_PROBLEMS},
    openapi_extra={
        "parameters": [{"name": "X-JWS-Signature", "in": "header", "required": True,
                        "schema": {"type": "string"},
                        "description": "detached JWS <protected>..<signature>"}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": Envelope.model_json_schema()}}},
    },
)
async def post_message(request: Request) -> Response:
    # Headers are read from the request directly: this is the hot path, and FastAPI's
    # per-parameter dependency resolution costs more than the lookups.
    hub: Hub = request.app.state.hub
    body = await read_body(request, hub.settings.max_body_bytes)
    identity_header = hub.settings.client_identity_header
    identity = request.headers.get(identity_header, "") if identity_header else None
    result = await hub.intake.receive(body, request.headers.get("x-jws-signature"),
                                      request.headers.get("content-type"), identity)
    return Response(result.body, status_code=result.status_code, media_type=result.media_type,
                    headers={"X-JWS-Signature": result.signature})


@router.get(
    "/v1/receipts/{message_id}",
    summary="The receipt the hub gave for one of the caller's messages, byte for byte",
    description="Bearer JWT (iss = sub = partner id, aud = MY-PERKESO, exp ≤ iat + 300, "
    "unique jti). The original signature is in `X-JWS-Signature`. A partner sees only its own.",
    responses={401: _PROBLEMS[401], 404: {"description": "not_found"}},
)
async def get_receipt(
    request: Request, message_id: str,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    hub: Hub = request.app.state.hub
    receipt = await hub.partner_reads.receipt(authorization, message_id)
    return Response(receipt.body, media_type="application/json",
                    headers={"X-JWS-Signature": receipt.signature})


@router.get("/.well-known/jwks.json", summary="The hub's public signing keys (JWKS)",
            description="Every key that signs or will sign (``nbf``: signs from then on). "
                        "A key is listed at least ``GATEWAY_HUB_KEY_LEAD_MINUTES`` before it "
                        "signs; the response may be cached for its ``Cache-Control`` max-age, "
                        "which is always shorter (docs/admin.md, hub key rotation).")
async def jwks(request: Request, response: Response) -> dict[str, object]:
    hub: Hub = request.app.state.hub
    response.headers["Cache-Control"] = f"public, max-age={hub.settings.jwks_max_age_seconds}"
    return hub.signer.jwks()


@router.get("/healthz", summary="Liveness and database reachability", tags=["ops"])
async def healthz(request: Request) -> dict[str, str]:
    hub: Hub = request.app.state.hub
    await hub.ping_database()
    return {"status": "ok"}
