"""Translate httpx failures and rail answers into the seam's delivery errors, in one place.

The rule (style.md, rule 3): the class of the error says what a retry may do.

- The request certainly never left (connection refused, connect or pool timeout):
  ``TransientDeliveryError``; sending again is safe.
- It may have arrived (read/write timeout, reset or half answer after sending, 5xx):
  ``OutcomeUnknownError``; ask the rail's status before sending again.
- 429, 408, or 503 with ``Retry-After``: the rail says it did not act; ``TransientDeliveryError``
  carrying ``retry_after`` (seconds) when given.
- Any other 4xx: ``PermanentDeliveryError`` with the HTTP status and the rail's short reason.

A read (a statement, a status) changes nothing, so what may have arrived is simply asked again: 404
(not made yet), 408, 429 and 5xx are ``TransientDeliveryError``; any other 4xx is the rail
refusing the request itself (credentials, address), ``PermanentDeliveryError``, which asking
again will not mend (``read_error``).
"""

from __future__ import annotations

import httpx

from gateway.errors import (
    DeliveryError,
    OutcomeUnknownError,
    PermanentDeliveryError,
    TransientDeliveryError,
)

__all__ = ["error_for_response", "retry_after", "send", "read_error"]

# Phases in which httpx guarantees no byte of the request reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def retry_after(response: httpx.Response) -> int | None:
    """Return the Retry-After delay in whole seconds, if the answer has a numeric one."""
    value = response.headers.get("Retry-After", "").strip()
    return int(value) if value.isdigit() else None


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    timeout: httpx.Timeout,
    headers: dict[str, str],
    content: bytes = b"",
    what: str,
) -> httpx.Response:
    """Send one request with an explicit timeout; translate transport failures.

    Raises:
        TransientDeliveryError: the request was never sent.
        OutcomeUnknownError: it may have been received and acted on.
        PermanentDeliveryError: the URL itself is unusable (configuration).
    """
    request = client.build_request(method, url, headers=headers, content=content, timeout=timeout)
    try:
        response = await client.send(request)
        await response.aread()
    except _NOT_SENT as exc:
        raise TransientDeliveryError(f"{what}: not sent ({type(exc).__name__})") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise PermanentDeliveryError(f"{what}: unusable URL ({exc})") from exc
    except httpx.TransportError as exc:
        # ReadTimeout, WriteTimeout, ReadError (reset), RemoteProtocolError (closed mid-answer):
        # the bytes may have reached the rail.
        raise OutcomeUnknownError(f"{what}: no complete answer ({type(exc).__name__})") from exc
    return response


def error_for_response(response: httpx.Response, what: str) -> DeliveryError:
    """Return the delivery error for a non-2xx answer to a request that may change state."""
    code = response.status_code
    reason = _reason(response)
    delay = retry_after(response)
    if code == 429 or code == 408 or (code == 503 and delay is not None):
        err: DeliveryError = TransientDeliveryError(f"{what}: HTTP {code} {reason}".strip())
        err.retry_after = delay
    elif 400 <= code < 500:
        err = PermanentDeliveryError(f"{what}: HTTP {code} {reason}".strip())
    else:
        # A 5xx (or anything unexpected) from a rail that may already have acted.
        err = OutcomeUnknownError(f"{what}: HTTP {code} {reason}".strip())
    err.http_status = code
    return err


def read_error(response: httpx.Response, what: str) -> DeliveryError:
    """Return the delivery error for a non-200 answer to a read, which changes nothing at
    the rail (a statement, a payout's status; a 404 is what was asked for not there yet)."""
    code = response.status_code
    if code == 404:
        return TransientDeliveryError(f"{what}: not available yet")
    err = error_for_response(response, what)
    if isinstance(err, PermanentDeliveryError):
        refused = PermanentDeliveryError(f"{err} (the rail refused the request: its "
                                         "credentials or address need fixing; asking again "
                                         "will not help)")
        refused.http_status = code
        return refused
    transient = TransientDeliveryError(str(err))
    transient.retry_after, transient.http_status = err.retry_after, code
    return transient


def _reason(response: httpx.Response) -> str:
    # Only the rail's short machine reason is kept: bodies may echo account numbers (rule 8).
    try:
        data = response.json()
    except ValueError:
        return ""
    if isinstance(data, dict):
        for key in ("error", "code", "reason"):
            value = data.get(key)
            if isinstance(value, str):
                return value[:80]
    return ""
