"""A message acknowledged with 2xx survives kill -9 of the server; duplicates still known."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.support.partners import TestPartner
from tests.support.processes import Server, gateway_env, run_cli

pytestmark = pytest.mark.e2e


def test_acknowledged_messages_survive_kill_9(instance: Path, db_url: str) -> None:
    env = gateway_env(instance, db_url, GATEWAY_DISPATCH_IN_SERVE="false")
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    server = Server(env, instance)
    sent: dict[str, tuple[bytes, dict[str, str], dict]] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(25):
                env_ = partner.envelope(sent_at=datetime.now(UTC))
                body, headers = partner.signed(env_)
                resp = http.post("/v1/messages", content=body, headers=headers)
                assert resp.status_code == 202
                sent[env_["id"]] = (body, headers, resp.json())
    finally:
        server.kill()  # SIGKILL right after the last 202: no graceful shutdown

    server = Server(env, instance)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for mid, (body, headers, receipt) in sent.items():
                again = http.post("/v1/messages", content=body, headers=headers)
                assert again.status_code == 200
                assert again.json()["receipt_id"] == receipt["receipt_id"]
                got = http.get(f"/v1/receipts/{mid}",
                               headers=partner.token(now=datetime.now(UTC)))
                assert got.status_code == 200 and got.json() == receipt
    finally:
        server.stop()


def test_concurrent_duplicates_across_worker_processes(instance: Path, db_url: str) -> None:
    """One message sent on 24 connections at once to 2 worker processes: one 202, the rest
    200, all with the same receipt."""
    import asyncio

    env = gateway_env(instance, db_url, GATEWAY_DISPATCH_IN_SERVE="false")
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    server = Server(env, instance, workers=2)

    async def burst() -> list[httpx.Response]:
        body, headers = partner.signed(partner.envelope(sent_at=datetime.now(UTC)))
        limits = httpx.Limits(max_connections=24)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
            return await asyncio.gather(*[http.post("/v1/messages", content=body,
                                                    headers=headers) for _ in range(24)])

    try:
        responses = asyncio.run(burst())
    finally:
        server.stop()
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 23 + [202]
    assert len({r.json()["receipt_id"] for r in responses}) == 1


def test_audit_verify_cli_finds_a_flipped_byte(instance: Path, tmp_path: Path) -> None:
    """Through the real CLI on SQLite: chain, verify ok, flip one byte, verify names it."""
    from adapters.simulation import free_port

    db = tmp_path / "audit.db"
    env = gateway_env(instance, f"sqlite:///{db}", GATEWAY_DISPATCH_IN_SERVE="false")
    assert run_cli(["db", "upgrade"], env, tmp_path).returncode == 0
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    server = Server(env, tmp_path, free_port())
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(3):
                body, headers = partner.signed(partner.envelope(sent_at=datetime.now(UTC)))
                assert http.post("/v1/messages", content=body, headers=headers).status_code == 202
    finally:
        server.stop()
    assert "chained 3 record(s)" in run_cli(["audit", "chain"], env, tmp_path).stdout
    ok = run_cli(["audit", "verify"], env, tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 3 records"), ok.stderr
    with sqlite3.connect(db) as conn:
        pk, wire = conn.execute("SELECT pk, wire FROM messages ORDER BY pk LIMIT 1 OFFSET 1"
                                ).fetchone()
        flipped = bytearray(wire)
        flipped[10] ^= 0x20
        conn.execute("UPDATE messages SET wire = ? WHERE pk = ?", (bytes(flipped), pk))
    bad = run_cli(["audit", "verify"], env, tmp_path)
    assert bad.returncode == 1
    assert f"messages pk {pk}" in bad.stderr and "altered" in bad.stderr


def test_production_refuses_to_start_without_key_and_registry(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", GATEWAY_ENV="production")
    result = run_cli(["serve", "--port", "1"], env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "production needs GATEWAY_SIGNING_KEY_FILE" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_bad_settings_are_one_line(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, "mysql://nope")
    result = run_cli(["db", "upgrade"], env, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "GATEWAY_DATABASE_URL" in result.stderr
