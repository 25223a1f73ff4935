"""SIGTERM on real processes: a server fails readiness first, finishes the request in flight,
then exits; a dispatcher releases its leased work so another takes it at once."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from gateway.app import create_app
from gateway.composition import build_hub
from gateway.config import Settings
from gateway.outbox.claiming import claim
from gateway.storage.engine import create_engine
from gateway.storage.tables import messages, outbox
from gateway.storage.uow import factory_for
from tests.support.partners import TestPartner
from tests.support.processes import Dispatch, Server, gateway_env

pytestmark = pytest.mark.e2e


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def _read_response(sock: socket.socket, timeout: float = 30) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_sigterm_drains_then_finishes_the_request_in_flight(
        ops_instance: tuple[Path, dict[str, int]], db_url: str) -> None:
    instance, _ = ops_instance
    env = gateway_env(instance, db_url, GATEWAY_DISPATCH_IN_SERVE="false",
                      GATEWAY_DRAIN_SECONDS="1.5")
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    envelope = partner.envelope(sent_at=datetime.now(UTC))
    body, headers = partner.signed(envelope)
    server = Server(env, instance)
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        head = ("POST /v1/messages HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
                f"X-JWS-Signature: {headers['X-JWS-Signature']}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        sock.sendall(head + body[:20])  # a slow client: the request is in flight
        server.proc.send_signal(signal.SIGTERM)
        # Readiness fails first while the process still serves (the proxy drains it).
        deadline = time.monotonic() + 10
        while _status(server.url + "/readyz") != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _status(server.url + "/readyz") == 503
        assert _status(server.url + "/livez") == 200
        # Then it stops accepting; the request in flight is still being served.
        deadline = time.monotonic() + 15
        while _status(server.url + "/livez") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _status(server.url + "/livez") is None
        assert server.proc.poll() is None
        sock.sendall(body[20:])
        response = _read_response(sock)
        sock.close()
        assert response.startswith(b"HTTP/1.1 202"), response[:200]
        server.proc.wait(30)  # and then it exits
    finally:
        server.stop()

    async def stored() -> int:
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                return len((await conn.execute(select(messages.c.pk).where(
                    messages.c.message_id == envelope["id"]))).all())
        finally:
            await engine.dispose()
    assert asyncio.run(stored()) == 1


class SilentPartner:
    """A partner endpoint that takes connections and requests and never answers."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.requests = 0
        self._conns: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)
            conn.settimeout(5)
            try:
                if conn.recv(65536):
                    self.requests += 1
            except OSError:
                pass

    def close(self) -> None:
        self._stop = True
        for c in self._conns:
            c.close()
        self.sock.close()


def test_dispatcher_sigterm_releases_its_leases_for_another_dispatcher(
        ops_instance: tuple[Path, dict[str, int]], db_url: str) -> None:
    instance, ports = ops_instance
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    settings = Settings(database_url=db_url, partners_file=instance / "partners.toml",
                        signing_key_file=instance / "hub.jwk.json", dispatch_in_serve=False)

    async def intake(n: int) -> None:
        hub = build_hub(settings)
        try:
            app = create_app(hub=hub, background_jobs=False)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
                for _ in range(n):
                    body, headers = partner.signed(partner.envelope(
                        sent_at=datetime.now(UTC), correlation_id=f"K-{uuid.uuid4().hex[:8]}"))
                    assert (await c.post("/v1/messages", content=body, headers=headers)
                            ).status_code == 202
        finally:
            await hub.close()

    async def deliveries() -> list[tuple[str, str | None, int]]:
        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                return [(r.state, r.lease_owner, r.attempts) for r in await conn.execute(
                    select(outbox.c.state, outbox.c.lease_owner, outbox.c.attempts)
                    .where(outbox.c.kind == "deliver"))]
        finally:
            await engine.dispose()

    async def take_over() -> int:
        engine = create_engine(db_url)
        try:
            got = await claim(factory_for(engine), owner="other", now=datetime.now(UTC),
                              lease=timedelta(seconds=60), limit=50, kinds=["deliver"])
            return len(got)
        finally:
            await engine.dispose()

    asyncio.run(intake(3))
    silent = SilentPartner(ports["ID-BPJSTK"])
    env = gateway_env(instance, db_url, GATEWAY_DISPATCH_STOP_GRACE_SECONDS="0.5")
    dispatch = Dispatch(env, instance)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = asyncio.run(deliveries())
            if silent.requests >= 1 and len(rows) == 3 and any(r[0] == "leased" for r in rows):
                break
            time.sleep(0.2)
        rows = asyncio.run(deliveries())
        assert len(rows) == 3 and any(r[0] == "leased" for r in rows), (
            rows, dispatch.log.read_text()[-2000:])
        assert dispatch.stop(timeout=30) == 0
    finally:
        dispatch.kill()
        silent.close()
    rows = asyncio.run(deliveries())
    assert all(state == "pending" and owner is None for state, owner, _ in rows), rows
    # Another dispatcher can take them now, not after the 60 s lease.
    assert asyncio.run(take_over()) == 3
