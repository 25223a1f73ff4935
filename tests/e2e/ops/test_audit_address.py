"""The audit trail's client address through a real ``gateway serve``: the server in front of
the app must not rewrite the peer from ``X-Forwarded-For`` itself (uvicorn does by default for
loopback peers), or any caller on the host names whatever address it likes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.admin.auth import mint_token
from gateway.config import Settings
from tests.support.processes import Server, gateway_env

pytestmark = pytest.mark.e2e


def _audited_address(server: Server, settings: Settings, forwarded: str) -> str:
    def as_(role: str) -> dict[str, str]:
        return {"Authorization": "Bearer " + mint_token(settings, user="ada", roles=[role],
                                                        minutes=10)}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/admin/v1/partners", headers={**as_("viewer"),
                                                       "X-Forwarded-For": forwarded}
                        ).status_code == 200
        page = http.get("/admin/v1/audit", params={"action": "partners.list"},
                        headers=as_("auditor"))
        assert page.status_code == 200, page.text
        return str(page.json()["records"][0]["client_ip"])


@pytest.mark.parametrize("trusted", [False, True], ids=["no-proxy", "loopback-proxy"])
def test_the_audit_trail_believes_forwarded_for_only_from_a_trusted_proxy(
        ops_instance: tuple[Path, dict[str, int]], db_url: str, trusted: bool) -> None:
    instance, _ = ops_instance
    extra = {"GATEWAY_ADMIN_TRUSTED_PROXIES": '["127.0.0.1/32"]'} if trusted else {}
    env = gateway_env(instance, db_url, GATEWAY_DISPATCH_IN_SERVE="false", **extra)
    settings = Settings(database_url=db_url, partners_file=instance / "partners.toml",
                        signing_key_file=instance / "hub.jwk.json")
    server = Server(env, instance)
    try:
        seen = _audited_address(server, settings, "203.0.113.9")
        assert seen == ("203.0.113.9" if trusted else "127.0.0.1")
    finally:
        server.stop()
