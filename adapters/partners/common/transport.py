"""Push delivery over HTTP: POST signed wire bytes to a partner, map failures to the error tree.

Shared by every push adapter (their bodies differ, the transport does not). The classification
follows the house rule: nothing sent -> ``TransientDeliveryError``; sent but no usable answer
(read timeout, reset after sending) -> ``OutcomeUnknownError``; the partner refused for good
(4xx other than 408/429) -> ``PermanentDeliveryError``. Retrying is never decided here.
"""

from __future__ import annotations

import httpx

from gateway.errors import OutcomeUnknownError, PermanentDeliveryError, TransientDeliveryError
from gateway.ports.partner import DeliveryAnswer

__all__ = ["post_signed"]


async def post_signed(
    client: httpx.AsyncClient, endpoint: str, wire: bytes, signature: str, *,
    media_type: str, timeout: float,
) -> DeliveryAnswer:
    """POST ``wire`` with its detached JWS; return the partner's 2xx answer.

    Raises:
        TransientDeliveryError: nothing was delivered (connect failure, 5xx, 408, 429).
        OutcomeUnknownError: the request went out but no answer came back.
        PermanentDeliveryError: the partner refused the message (other 4xx).
    """
    headers = {"Content-Type": media_type, "X-JWS-Signature": signature}
    try:
        resp = await client.post(endpoint, content=wire, headers=headers,
                                 timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransientDeliveryError(f"cannot reach {endpoint}: {type(exc).__name__}") from exc
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise OutcomeUnknownError(
            f"sent to {endpoint} but no answer: {type(exc).__name__}") from exc
    if resp.status_code >= 500 or resp.status_code in (408, 429):
        raise TransientDeliveryError(f"{endpoint} answered {resp.status_code}")
    if resp.status_code >= 400:
        raise PermanentDeliveryError(
            f"{endpoint} refused the message: {resp.status_code} {resp.text[:200]}")
    if resp.status_code >= 300:
        raise PermanentDeliveryError(f"{endpoint} answered {resp.status_code} (redirects are "
                                     "not followed)")
    return DeliveryAnswer(resp.content, resp.headers.get("X-JWS-Signature"),
                          resp.headers.get("content-type", ""))
