"""A client that disconnects in the middle of its body costs one log line, not a traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.app import create_app
from gateway.composition import Hub
from tests.support.fakes import FakeRail

pytestmark = pytest.mark.anyio


async def _disconnect_mid_body(app: Any, path: str) -> list[dict[str, Any]]:
    events = iter([{"type": "http.request", "body": b'{"id": "half', "more_body": True},
                   {"type": "http.disconnect"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(events, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8400),
             "client": ("127.0.0.1", 50000),
             "headers": [(b"host", b"hub.test"), (b"content-type", b"application/json"),
                         (b"content-length", b"5000"), (b"x-jws-signature", b"a..b")]}
    await app(scope, receive, send)
    return sent


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/rails/merchantrade/callbacks"])
async def test_disconnect_mid_body_logs_one_line(hub: Hub, caplog: pytest.LogCaptureFixture,
                                                 path: str) -> None:
    hub.payments.rails["merchantrade"] = FakeRail()  # a configured rail reads its body
    app = create_app(hub=hub, background_jobs=False)
    with caplog.at_level(logging.DEBUG):
        await _disconnect_mid_body(app, path)
    ours = [r for r in caplog.records if r.name.startswith("gateway")]
    assert [r.exc_info for r in caplog.records if r.exc_info] == []
    assert "Traceback" not in caplog.text
    assert len([r for r in ours if "disconnected" in r.getMessage()]) == 1
