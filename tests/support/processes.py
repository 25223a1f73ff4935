"""Run ``gateway`` commands as real processes on loopback, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from adapters.simulation import free_port

GATEWAY = [sys.executable, "-m", "gateway.cli"]


def gateway_env(instance: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GATEWAY_DATABASE_URL": db_url,
        "GATEWAY_PARTNERS_FILE": str(instance / "partners.toml"),
        "GATEWAY_SIGNING_KEY_FILE": str(instance / "hub.jwk.json"),
        "GATEWAY_LOG_LEVEL": "WARNING",
    })
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(GATEWAY + args, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class Server:
    """``gateway serve`` in a child process; ``kill()`` is a real SIGKILL."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int | None = None,
                 workers: int = 1) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"serve-{self.port}-{time.monotonic_ns()}.log"
        self._fh = open(self.log, "wb")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(
            GATEWAY + ["serve", "--port", str(self.port), "--workers", str(workers)],
            env=env, cwd=cwd,
            stdout=self._fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"gateway serve not ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._fh.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._fh.close()


class Dispatch:
    """``gateway dispatch`` in a child process, optionally with its metrics listener."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str,
                 metrics_port: int | None = None) -> None:
        self.metrics_port = metrics_port
        self.log = cwd / f"dispatch-{time.monotonic_ns()}.log"
        self._fh = open(self.log, "wb")  # noqa: SIM115 - closed in stop()/kill()
        extra = ["--metrics-port", str(metrics_port)] if metrics_port else []
        self.proc = subprocess.Popen(GATEWAY + ["dispatch", *extra, *args], env=env, cwd=cwd,
                                     stdout=self._fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        if metrics_port:
            self._wait_metrics()

    def _wait_metrics(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway dispatch exited: {self.log.read_text()[-2000:]}")
            try:
                httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"dispatcher metrics not up: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._fh.close()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait (bounded) for the exit; return the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        self._fh.close()
        return self.proc.returncode
