"""Backup and restore (docs/operations.md, "Backups"): messages acknowledged over HTTP by a
real `gateway serve`, the database dumped and restored into a fresh one, and there every
acknowledged message is found and `gateway audit verify` is clean.

PostgreSQL: `pg_dump -Fc` and `pg_restore`, the logical backup an operator can take at any
time. SQLite: the online backup API (`sqlite3.Connection.backup`), safe while the gateway runs.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.deploytools import require_tool
from tests.support.partners import TestPartner
from tests.support.processes import Server, gateway_env, run_cli

pytestmark = pytest.mark.e2e


def _libpq(url: str) -> str:
    return "postgresql://" + url.partition("://")[2]


def _accept_messages(instance: Path, env: dict[str, str], n: int) -> set[str]:
    partner = TestPartner.from_registry(instance / "partners.toml", "ID-BPJSTK")
    acknowledged: set[str] = set()
    server = Server(env, instance)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(n):
                envelope = partner.envelope(sent_at=datetime.now(UTC))
                body, headers = partner.signed(envelope)
                resp = http.post("/v1/messages", content=body, headers=headers)
                assert resp.status_code == 202, resp.text
                acknowledged.add(envelope["id"])
    finally:
        server.stop()
    chained = run_cli(["audit", "chain"], env, instance)
    assert chained.returncode == 0, chained.stderr
    return acknowledged


def _backup_restore_postgres(source: str, tmp_path: Path) -> tuple[str, str]:
    pg_dump = require_tool("pg_dump", "postgresql-client")
    pg_restore = require_tool("pg_restore", "postgresql-client")
    dump = tmp_path / "px.dump"
    subprocess.run([pg_dump, "-Fc", "--no-owner", "-f", str(dump), _libpq(source)],
                   check=True, capture_output=True, timeout=120)
    base = source.rpartition("/")[0]
    name = f"px_restore_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(_libpq(source), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    restored = f"{base}/{name}"
    result = subprocess.run([pg_restore, "--no-owner", "--exit-on-error", "-d",
                             _libpq(restored), str(dump)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return restored, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


def _message_ids_pg(url: str) -> set[str]:
    async def run() -> set[str]:
        conn = await asyncpg.connect(_libpq(url), timeout=10)
        try:
            return {r["message_id"] for r in await conn.fetch("SELECT message_id FROM messages")}
        finally:
            await conn.close()
    return asyncio.run(run())


def test_acknowledged_messages_survive_dump_and_restore(instance: Path, db_url: str,
                                                       tmp_path: Path) -> None:
    env = gateway_env(instance, db_url, GATEWAY_DISPATCH_IN_SERVE="false")
    acknowledged = _accept_messages(instance, env, 12)

    cleanup = None
    if db_url.startswith("sqlite"):
        source = db_url.removeprefix("sqlite:///")
        copy = tmp_path / "restored.db"
        with sqlite3.connect(source) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)
        restored = f"sqlite:///{copy}"
        with sqlite3.connect(copy) as conn:
            found = {r[0] for r in conn.execute("SELECT message_id FROM messages")}
    else:
        restored, cleanup = _backup_restore_postgres(db_url, tmp_path)
        found = _message_ids_pg(restored)
    try:
        assert acknowledged <= found
        verify = run_cli(["audit", "verify"], {**env, "GATEWAY_DATABASE_URL": restored},
                         instance)
        assert verify.returncode == 0, verify.stderr
        assert verify.stdout.startswith(f"ok: {len(acknowledged)} records"), verify.stdout
    finally:
        if cleanup is not None:
            async def drop(sql: str = cleanup) -> None:
                conn = await asyncpg.connect(_libpq(db_url), timeout=10)
                try:
                    await conn.execute(sql)
                finally:
                    await conn.close()
            asyncio.run(drop())
