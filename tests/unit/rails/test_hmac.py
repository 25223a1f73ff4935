"""HMAC request and callback signatures: both directions, tampering, staleness."""

from __future__ import annotations

import time

import pytest

from adapters.rails import _hmac
from gateway.errors import AuthError, InvalidMessageError

SECRET = "s3cret"


def test_request_signature_round_trip() -> None:
    body = b'{"amount":"1.00"}'
    headers = _hmac.request_headers("kid", SECRET, "POST", "/v1/payouts", body)
    assert _hmac.verify_request({"kid": SECRET}, headers, "POST", "/v1/payouts", body) == "kid"


def test_request_signature_known_vector() -> None:
    # timestamp "\n" METHOD "\n" path "\n" body, hex HMAC-SHA256 (documented wire format).
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"100\nGET\n/p\n", hashlib.sha256).hexdigest()
    assert _hmac.sign_request("k", "100", "get", "/p", b"") == expected


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/v1/payouts", b"{}x"), ("PUT", "/v1/payouts", b"{}"), ("POST", "/v1/other", b"{}")],
)
def test_request_signature_covers_method_path_body(method: str, path: str, body: bytes) -> None:
    headers = _hmac.request_headers("kid", SECRET, "POST", "/v1/payouts", b"{}")
    with pytest.raises(AuthError) as err:
        _hmac.verify_request({"kid": SECRET}, headers, method, path, body)
    assert err.value.code == "signature_invalid"


def test_request_unknown_key_and_missing_headers() -> None:
    headers = _hmac.request_headers("other", SECRET, "GET", "/", b"")
    with pytest.raises(AuthError) as err:
        _hmac.verify_request({"kid": SECRET}, headers, "GET", "/", b"")
    assert err.value.code == "unknown_key"
    with pytest.raises(AuthError) as err:
        _hmac.verify_request({"kid": SECRET}, {}, "GET", "/", b"")
    assert err.value.code == "signature_missing"


def test_callback_signature_round_trip_case_insensitive_headers() -> None:
    body = b'{"event":"payout.status"}'
    headers = {k.lower(): v for k, v in _hmac.callback_headers(SECRET, body).items()}
    _hmac.verify_callback(SECRET, headers, body)
    with pytest.raises(AuthError):
        _hmac.verify_callback(SECRET, headers, body + b" ")
    with pytest.raises(AuthError):
        _hmac.verify_callback("wrong", headers, body)


def test_callback_stale_and_future_refused() -> None:
    body = b"{}"
    old = _hmac.callback_headers(SECRET, body, now=time.time() - 301)
    with pytest.raises(InvalidMessageError) as err:
        _hmac.verify_callback(SECRET, old, body)
    assert err.value.code == "stale_message"
    future = _hmac.callback_headers(SECRET, body, now=time.time() + 301)
    with pytest.raises(InvalidMessageError) as err:
        _hmac.verify_callback(SECRET, future, body)
    assert err.value.code == "clock_skew"
    _hmac.verify_callback(SECRET, _hmac.callback_headers(SECRET, body, time.time() - 200), body)
