"""Asking a rail for a statement: what each answer means for the one who asks again."""

from __future__ import annotations

import httpx
import pytest

from adapters.rails._transport import read_error
from gateway.errors import PermanentDeliveryError, TransientDeliveryError


@pytest.mark.parametrize("status, headers, kind, text", [
    (404, {}, TransientDeliveryError, "S 2026-12-01: not available yet"),
    (429, {"Retry-After": "30"}, TransientDeliveryError, "S 2026-12-01: HTTP 429"),
    (503, {}, TransientDeliveryError, "S 2026-12-01: HTTP 503"),
    (500, {}, TransientDeliveryError, "S 2026-12-01: HTTP 500"),
    (401, {}, PermanentDeliveryError, "S 2026-12-01: HTTP 401 (the rail refused the request: "
     "its credentials or address need fixing; asking again will not help)"),
    (403, {}, PermanentDeliveryError, "S 2026-12-01: HTTP 403 (the rail refused"),
    (400, {}, PermanentDeliveryError, "S 2026-12-01: HTTP 400 (the rail refused"),
])
def test_a_statement_read_is_late_or_refused(status: int, headers: dict[str, str],
                                             kind: type[Exception], text: str) -> None:
    err = read_error(httpx.Response(status, headers=headers), "S 2026-12-01")
    assert type(err) is kind and str(err).startswith(text), str(err)
    if status == 429:
        assert err.retry_after == 30
