"""PX/1 partner endpoints for the hub -> partner direction: inbox (pull) and tracking."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request

from gateway.composition import Hub
from gateway.messages.inbox import MAX_LIMIT

__all__ = ["router"]

router = APIRouter(tags=["PX/1"])

_AUTH = ("Bearer JWT (iss = sub = partner id, aud = MY-PERKESO, exp ≤ iat + 300, unique jti). "
         "Errors are problem+json.")


@router.get(
    "/v1/inbox",
    summary="Hub messages waiting for a pull partner, oldest first",
    description=(
        f"{_AUTH} Returns `{{\"messages\": [{{\"body_b64\", \"signature\"}}], \"next\"}}`: "
        "`body_b64` is the base64url (no padding) of the exact signed message bytes in the "
        "partner's wire format and `signature` the hub's detached JWS over them. Pass `next` "
        "as `after` to page on. A message stays until acknowledged with a `receipt.ack` "
        "(POST /v1/messages) whose receipt names its id and the sha256 of those bytes. "
        f"`limit` is 1..{MAX_LIMIT} (default 100). Push partners get `403 forbidden`."
    ),
)
async def get_inbox(
    request: Request,
    after: Annotated[str | None, Query(max_length=18)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    hub: Hub = request.app.state.hub
    page = await hub.partner_reads.inbox(authorization, after, limit)
    return {"messages": page.messages, "next": page.next}


@router.get(
    "/v1/tracking/{correlation_id}",
    summary="A case end to end: the caller's messages and payments of one correlation id",
    description=(
        f"{_AUTH} Oldest first. Each message has `message_id`, `type`, `direction` (`in`: "
        "partner to hub, `out`: hub to partner), `at` and `state` (`received`, `queued`, "
        "`delivered`, `acknowledged`, `failed`, `cancelled`); each payment its `state` "
        "(`instructed`, `submitted`, `paid`, `failed`, `returned`, `reconciled`). "
        "`404 not_found` if the caller has no such thread."
    ),
)
async def get_tracking(
    request: Request, correlation_id: str,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    hub: Hub = request.app.state.hub
    return await hub.partner_reads.tracking(authorization, correlation_id)
