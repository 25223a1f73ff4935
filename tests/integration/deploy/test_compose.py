"""deploy/compose.yaml parsed with PyYAML (anchors resolved): the services the issue asks
for, each with a healthcheck, the gateway's read-only and started in order."""

from __future__ import annotations

import yaml

from tests.support.deploytools import DEPLOY

SERVICES = {"postgres", "migrate", "gateway-1", "gateway-2", "dispatcher-1", "dispatcher-2",
            "scheduler", "nginx", "prometheus"}


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_services_and_commands() -> None:
    services = _compose()["services"]
    assert set(services) == SERVICES
    commands = {name: s.get("command") for name, s in services.items()}
    assert commands["gateway-1"][0] == commands["gateway-2"][0] == "serve"
    assert commands["dispatcher-1"] == commands["dispatcher-2"] == ["dispatch"]
    assert commands["scheduler"] == ["scheduler"]
    assert commands["migrate"] == ["db", "upgrade"]


def test_healthchecks_read_only_and_order() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        if name != "migrate":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        if name not in {"postgres"}:
            assert service.get("read_only") is True, f"{name} is not read_only"
    for name in ("gateway-1", "dispatcher-1", "scheduler"):
        s = services[name]
        assert s["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert s["cap_drop"] == ["ALL"] and s["tmpfs"] == ["/tmp"]
        assert "GATEWAY_SIGNING_KEY_FILE" not in s["environment"]  # a secret, not env
        assert {x["target"] for x in s["secrets"]} >= {"/run/secrets/px/hub.jwk.json"}
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "/readyz" in " ".join(services["gateway-1"]["healthcheck"]["test"])
    assert set(services["nginx"]["depends_on"]) == {"gateway-1", "gateway-2"}


def test_secrets_are_files() -> None:
    compose = _compose()
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"file"}, name
    text = (DEPLOY / "compose.yaml").read_text()
    assert "PASSWORD:" not in text.replace("POSTGRES_PASSWORD_FILE:", "")
