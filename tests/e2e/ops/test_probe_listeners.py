"""The probes of the processes with no web app, as Kubernetes and compose ask them: the real
`gateway dispatch --metrics-port` and `gateway scheduler` (its port from
GATEWAY_SCHEDULER_METRICS_PORT) answer /livez, /readyz and /metrics on loopback, 404 anything
else, and stop on SIGTERM with exit 0 (deploy/k8s probes these paths on these ports)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.simulation import free_port
from gateway.backoffice.auth import write_dev_tokens
from gateway.payments.rails import write_dev_rails
from tests.support.databases import PgTemplate
from tests.support.processes import GATEWAY, gateway_env

pytestmark = pytest.mark.e2e


def _start(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(GATEWAY + args, env=env, cwd=cwd, stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait_live(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # bounded
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(url + "/livez", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"no /livez at {url}: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise
    return proc.returncode


def test_dispatch_and_scheduler_serve_their_probes_and_stop_on_sigterm(
        instance: Path, db_url: str) -> None:
    write_dev_tokens(instance / "backoffice.toml")
    # Rails where nothing listens: the scheduler's runs reach no one else's simulator.
    write_dev_rails(instance / "rails.toml",
                    {"merchantrade": free_port(), "iso20022": free_port()})
    dispatch_port, scheduler_port, env_port = free_port(), free_port(), free_port()
    env = gateway_env(instance, db_url, GATEWAY_BACKOFFICE_TOKENS_FILE=str(
        instance / "backoffice.toml"), GATEWAY_RAILS_FILE=str(instance / "rails.toml"),
        GATEWAY_DISPATCH_IN_SERVE="false", GATEWAY_DISPATCH_STOP_GRACE_SECONDS="1",
        # the option wins over the environment
        GATEWAY_DISPATCH_METRICS_PORT=str(env_port),
        GATEWAY_SCHEDULER_METRICS_PORT=str(scheduler_port))
    logs = {"dispatch": instance / "dispatch.log", "scheduler": instance / "scheduler.log"}
    procs = {
        "dispatch": _start(["dispatch", "--metrics-port", str(dispatch_port)], env, instance,
                           logs["dispatch"]),
        "scheduler": _start(["scheduler", "--every", "3600"], env, instance,
                            logs["scheduler"]),
    }
    urls = {"dispatch": f"http://127.0.0.1:{dispatch_port}",
            "scheduler": f"http://127.0.0.1:{scheduler_port}"}
    try:
        for name, proc in procs.items():
            _wait_live(proc, urls[name], logs[name])
        for name, url in urls.items():
            with httpx.Client(base_url=url, timeout=10) as http:
                live = http.get("/livez")
                assert (live.status_code, live.text) == (200, "ok\n"), name
                ready = http.get("/readyz")
                assert (ready.status_code, ready.text) == (200, "ready\n"), (name, ready.text)
                metrics = http.get("/metrics")
                assert metrics.status_code == 200, name
                assert metrics.headers["content-type"].startswith("text/plain")
                list(text_string_to_metric_families(metrics.text))  # Prometheus text
                assert http.get("/").status_code == 404
                assert http.get("/healthz").status_code == 404
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{env_port}/livez", timeout=2)
        codes = {name: _stop(proc) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert codes == {"dispatch": 0, "scheduler": 0}, {n: p.read_text()[-2000:]
                                                       for n, p in logs.items()}


def test_dispatch_processes_answer_on_one_listener(instance: Path,
                                                   pg_template: PgTemplate) -> None:
    """`--processes 2` (PostgreSQL only): the parent serves the probes, the children's metrics
    summed, and SIGTERM stops all of them."""
    write_dev_tokens(instance / "backoffice.toml")
    write_dev_rails(instance / "rails.toml",
                    {"merchantrade": free_port(), "iso20022": free_port()})
    name = asyncio.run(pg_template.clone())
    port = free_port()
    env = gateway_env(instance, pg_template.url(name), GATEWAY_BACKOFFICE_TOKENS_FILE=str(
        instance / "backoffice.toml"), GATEWAY_RAILS_FILE=str(instance / "rails.toml"),
        GATEWAY_DISPATCH_IN_SERVE="false", GATEWAY_DISPATCH_STOP_GRACE_SECONDS="1",
        GATEWAY_DISPATCH_METRICS_PORT=str(port), GATEWAY_LOG_LEVEL="INFO")
    log = instance / "dispatch.log"
    proc = _start(["dispatch", "--processes", "2"], env, instance, log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_live(proc, url, log)
        assert httpx.get(url + "/readyz", timeout=10).status_code == 200
        assert httpx.get(url + "/metrics", timeout=10).status_code == 200
        code = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        asyncio.run(pg_template.drop(name))
    assert code == 0, log.read_text()[-2000:]
    assert log.read_text().count("dispatcher started") == 2
