"""``gateway admin token`` mints development tokens the API accepts; the admin audit trail
passes ``gateway audit verify``."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import app as cli
from gateway.composition import build_hub
from gateway.config import Settings
from gateway.runtime.bootstrap import prepare_instance
from tests.support.processes import gateway_env, run_cli


def _env(settings: Settings) -> dict[str, str]:
    return {"GATEWAY_DATABASE_URL": settings.database_url,
            "GATEWAY_PARTNERS_FILE": str(settings.partners_file),
            "GATEWAY_SIGNING_KEY_FILE": str(settings.signing_key_file),
            "GATEWAY_BACKOFFICE_TOKENS_FILE": str(settings.backoffice_tokens_file)}


async def _calls(settings: Settings, token: str) -> list[int]:
    hub = build_hub(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(hub=hub, background_jobs=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
            auth = {"Authorization": f"Bearer {token}"}
            return [(await c.get(path, headers=auth)).status_code
                    for path in ("/admin/v1/partners", "/admin/v1/audit", "/admin/v1/outbox")]
    finally:
        await hub.close()


def test_minted_tokens_work_and_the_trail_verifies(settings: Settings) -> None:
    runner = CliRunner()
    env = _env(settings)
    minted = runner.invoke(cli, ["admin", "token", "--user", "vera", "--role", "viewer",
                                 "--minutes", "5"], env=env)
    assert minted.exit_code == 0, minted.output
    assert asyncio.run(_calls(settings, minted.output.strip())) == [200, 403, 200]
    chained = runner.invoke(cli, ["audit", "chain"], env=env)
    assert chained.output.strip() == "chained 3 record(s)"
    verified = runner.invoke(cli, ["audit", "verify", "--settle-minutes", "0"], env=env)
    assert verified.exit_code == 0 and verified.output.startswith("ok: 3 records")


def test_a_bad_role_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = os.environ | {"GATEWAY_SIGNING_KEY_FILE": str(tmp_path / "hub.jwk.json")}
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "admin", "token", "--user", "u",
                           "--role", "root"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "gateway: role root is not one of viewer, operator, approver, auditor, admin"]
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "admin", "token", "--user", "u",
                           "--role", "viewer"], env=env | {"GATEWAY_ENV": "production"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "identity provider" in done.stderr


def test_production_refuses_to_serve_without_the_identity_provider(tmp_path: Path) -> None:
    dev = Settings(database_url=f"sqlite:///{tmp_path}/g.db",
                   partners_file=tmp_path / "partners.toml",
                   signing_key_file=tmp_path / "hub.jwk.json",
                   backoffice_tokens_file=tmp_path / "backoffice.toml")
    prepare_instance(dev)
    env = gateway_env(tmp_path, dev.database_url, GATEWAY_ENV="production",
                      GATEWAY_BACKOFFICE_TOKENS_FILE=str(tmp_path / "backoffice.toml"),
                      GATEWAY_RAILS_FILE=str(tmp_path / "rails.toml"))
    with socket.socket() as s:  # a port that is free now: the refusal comes before binding
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = run_cli(["serve", "--port", str(port)], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "gateway: the admin API needs GATEWAY_ADMIN_OIDC_ISSUER, GATEWAY_ADMIN_OIDC_AUDIENCE "
        "and GATEWAY_ADMIN_OIDC_JWKS_FILE or GATEWAY_ADMIN_OIDC_JWKS_URL"]
    assert not (tmp_path / "admin-issuer.jwk.json").exists()
