"""Every probe, healthcheck and scrape target in deploy/ asks a port and path that the process
there serves, per its command, its environment (the image's, then the manifest's) and the real
Settings: Kubernetes probes, Service and NetworkPolicy ports, compose healthchecks and the
Prometheus targets. (The dispatcher and scheduler were once probed on ports they never
opened, and Kubernetes restarted them in a loop.)"""

from __future__ import annotations

import re

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from gateway.config import Settings
from gateway.observability import listener, probes
from tests.support.deploytools import DEPLOY

# The paths each command's HTTP server answers.
SERVES = {"serve": frozenset(r.path for r in probes.router.routes),  # type: ignore[attr-defined]
          "dispatch": listener.PATHS, "scheduler": listener.PATHS}
URL = re.compile(r"https?://([^/:'\"]+):(\d+)(/[\w/]*)")


def _image_env() -> dict[str, str]:
    with open(DEPLOY / "Containerfile", "rb") as fh:
        return dict(DockerfileParser(fileobj=fh).envs)


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def served(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
           ) -> tuple[str, int | None]:
    """The bind address and port of ``gateway *args`` run with ``env`` (port None: no HTTP)."""
    import os

    for name in [n for n in os.environ if n.startswith("GATEWAY_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    command = args[0]
    if command == "serve":
        port = _option(args, "--port")
        return (_option(args, "--host") or settings.host,
                settings.port if port is None else int(port))
    assert command in ("dispatch", "scheduler"), command
    port = _option(args, "--metrics-port")
    host = _option(args, "--metrics-host")
    if command == "dispatch":
        return (host or settings.dispatch_metrics_host,
                settings.dispatch_metrics_port if port is None else int(port))
    return (host or settings.scheduler_metrics_host,
            settings.scheduler_metrics_port if port is None else int(port))


def _k8s() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for path in sorted((DEPLOY / "k8s").glob(
        "*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d}


@pytest.mark.parametrize("name", ["px-gateway", "px-dispatcher", "px-scheduler"])
def test_kubernetes_probes_ask_what_the_container_serves(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = _k8s()
    (container,) = kinds[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
    env = _image_env() | {e["name"]: e["value"] for e in container["env"] if "value" in e}
    args = container["args"]
    host, port = served(args, env, monkeypatch)
    assert port is not None, f"{name} is probed but serves no HTTP"
    assert host == "0.0.0.0", f"{name} listens on {host}: the kubelet probes the pod's address"
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(named.values()) == {port}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert named.get(get["port"], get["port"]) == port, (name, probe)
        assert get["path"] in SERVES[args[0]], (name, probe, get["path"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (service_port,) = kinds[("Service", name)]["spec"]["ports"]
    assert named.get(service_port["targetPort"], service_port["targetPort"]) == port
    policy = kinds[("NetworkPolicy", name)]["spec"]["ingress"]
    assert port in {p["port"] for rule in policy for p in rule["ports"]}
    if args[0] != "serve":  # read by `serve` only: a GATEWAY_PORT here would mislead
        assert all(e["name"] != "GATEWAY_PORT" for e in container["env"]), name


def _compose() -> dict[str, dict]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]


def _compose_served(service: dict, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int | None]:
    return served(service["command"], _image_env() | service.get("environment", {}),
                  monkeypatch)


@pytest.mark.parametrize("name", ["gateway-1", "gateway-2", "dispatcher-1", "dispatcher-2",
                                  "scheduler"])
def test_compose_healthchecks_ask_what_the_service_serves(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _compose()[name]
    host, port = _compose_served(service, monkeypatch)
    assert port is not None, f"{name} has an HTTP healthcheck but serves no HTTP"
    assert host == "0.0.0.0", f"{name} listens on {host}: Prometheus scrapes it by name"
    (url,) = URL.findall(" ".join(service["healthcheck"]["test"]))
    check_host, check_port, path = url
    assert (check_host, int(check_port)) == ("127.0.0.1", port), (name, url)
    assert path in SERVES[service["command"][0]], (name, path)
    assert path == "/readyz", name


def test_prometheus_scrapes_each_process_where_it_serves_metrics(
        monkeypatch: pytest.MonkeyPatch) -> None:
    services = _compose()
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    scraped = set()
    for job in jobs.values():
        for group in job["static_configs"]:
            for target in group["targets"]:
                name, _, port = target.rpartition(":")
                host, served_port = _compose_served(services[name], monkeypatch)
                assert served_port == int(port), (job["job_name"], target)
                assert host == "0.0.0.0", (job["job_name"], target)
                assert job["metrics_path"] in SERVES[services[name]["command"][0]]
                scraped.add(name)
    assert scraped == {"gateway-1", "gateway-2", "dispatcher-1", "dispatcher-2", "scheduler"}
