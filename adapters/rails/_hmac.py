"""HMAC-SHA256 signatures shared by the rails and their simulators.

Requests (hub -> rail) carry three headers::

    X-Key-Id:    the API key id (which shared secret)
    X-Timestamp: Unix seconds, decimal ASCII
    X-Signature: hex(HMAC-SHA256(secret, timestamp "\\n" METHOD "\\n" path "\\n" body))

``path`` is the URL path as sent (no query string; no query is ever signed because none is used);
``body`` is the exact raw bytes (empty for GET). Callbacks (rail -> hub) carry ``X-Timestamp``
and ``X-Signature`` = hex(HMAC-SHA256(callback_secret, timestamp "\\n" body)). Verification is
constant-time and refuses timestamps more than ``max_age`` seconds away from now, so a captured
message cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from gateway.errors import AuthError, InvalidMessageError

__all__ = [
    "KEY_ID",
    "SIGNATURE",
    "TIMESTAMP",
    "callback_headers",
    "request_headers",
    "sign_callback",
    "sign_request",
    "verify_callback",
    "verify_request",
]

KEY_ID = "X-Key-Id"
TIMESTAMP = "X-Timestamp"
SIGNATURE = "X-Signature"
MAX_AGE_SECONDS = 300


def _mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_request(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """Return the hex request signature."""
    head = f"{timestamp}\n{method.upper()}\n{path}\n".encode()
    return _mac(secret, head + body)


def sign_callback(secret: str, timestamp: str, body: bytes) -> str:
    """Return the hex callback signature."""
    return _mac(secret, f"{timestamp}\n".encode() + body)


def request_headers(
    key_id: str, secret: str, method: str, path: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """Return the signature headers for one request."""
    ts = str(int(time.time() if now is None else now))
    return {KEY_ID: key_id, TIMESTAMP: ts, SIGNATURE: sign_request(secret, ts, method, path, body)}


def callback_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Return the signature headers for one callback."""
    ts = str(int(time.time() if now is None else now))
    return {TIMESTAMP: ts, SIGNATURE: sign_callback(secret, ts, body)}


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _check_time(ts: str, now: float | None, max_age: int) -> None:
    # Checked only after the signature verified, so an attacker learns nothing from the answer.
    current = time.time() if now is None else now
    skew = int(ts) - current
    if skew > max_age:
        raise InvalidMessageError("clock_skew", f"timestamp is {int(skew)} s in the future")
    if -skew > max_age:
        raise InvalidMessageError("stale_message", f"timestamp is {int(-skew)} s old")


def _timestamp(h: dict[str, str]) -> tuple[str, str]:
    ts, sig = h.get(TIMESTAMP.lower()), h.get(SIGNATURE.lower())
    if not ts or not sig:
        raise AuthError("signature_missing", f"{TIMESTAMP} and {SIGNATURE} headers are required")
    if not ts.isascii() or not ts.isdigit() or len(ts) > 12:
        raise AuthError("signature_invalid", f"{TIMESTAMP} must be Unix seconds")
    return ts, sig


def verify_callback(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    max_age: int = MAX_AGE_SECONDS,
) -> None:
    """Verify a callback's signature and freshness.

    Raises:
        AuthError: signature_missing / signature_invalid.
        InvalidMessageError: stale_message / clock_skew for an authentic but old message.
    """
    ts, sig = _timestamp(_lower(headers))
    if not hmac.compare_digest(sign_callback(secret, ts, body), sig.lower()):
        raise AuthError("signature_invalid", "callback signature does not verify")
    _check_time(ts, now, max_age)


def verify_request(
    secrets: Mapping[str, str],
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    now: float | None = None,
    max_age: int = MAX_AGE_SECONDS,
) -> str:
    """Verify a request's signature and freshness; return the key id.

    Raises:
        AuthError: signature_missing / unknown_key / signature_invalid.
        InvalidMessageError: stale_message / clock_skew.
    """
    h = _lower(headers)
    ts, sig = _timestamp(h)
    key_id = h.get(KEY_ID.lower(), "")
    secret = secrets.get(key_id)
    if secret is None:
        raise AuthError("unknown_key", f"unknown {KEY_ID} {key_id!r}")
    if not hmac.compare_digest(sign_request(secret, ts, method, path, body), sig.lower()):
        raise AuthError("signature_invalid", "request signature does not verify")
    _check_time(ts, now, max_age)
    return key_id
