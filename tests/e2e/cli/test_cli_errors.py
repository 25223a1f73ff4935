"""Every error path of the CLI is one line on stderr naming the file, entry and field; exit 2.

The commands run as the operator runs them (a subprocess, the real entry point) on a
development instance whose files the test breaks one at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.simulation import free_port
from gateway.backoffice.auth import write_dev_tokens
from gateway.payments.rails import write_dev_rails
from tests.support.databases import pg_admin_url

pytestmark = pytest.mark.e2e


def _run(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    base.update({"GATEWAY_DATABASE_URL": f"sqlite:///{folder}/gateway.db",
                 "GATEWAY_PARTNERS_FILE": str(folder / "partners.toml"),
                 "GATEWAY_SIGNING_KEY_FILE": str(folder / "hub.jwk.json"),
                 "GATEWAY_BACKOFFICE_TOKENS_FILE": str(folder / "backoffice.toml"),
                 "GATEWAY_RAILS_FILE": str(folder / "rails.toml"),
                 "GATEWAY_DISPATCH_IN_SERVE": "false", **env})
    # A command that wrongly starts is stopped by the timeout, which fails the test.
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=base, cwd=folder,
                          capture_output=True, text=True, timeout=60)


def _one_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gateway: ") and "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert "listening" not in result.stdout + result.stderr


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


BREAKS: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "registry-toml": (lambda f: (f / "partners.toml").write_text("[partners.X\n"),
                      ("partner registry", "partners.toml", "TOML")),
    "registry-field": (lambda f: _replace(f / "partners.toml", 'adapter = "px1"',
                                          'adapter = "nope"'),
                       ("partners.toml", "partners.ID-BPJSTK.adapter", "nope")),
    "registry-jwks": (lambda f: (f / "keys" / "MM-SSB.jwks.json").write_text("{"),
                      ("partners.MM-SSB.jwks_file", "MM-SSB.jwks.json", "not JSON")),
    "hub-key-json": (lambda f: (f / "hub.jwk.json").write_text("{not json"),
                     ("signing key file", "hub.jwk.json", "JSON")),
    "hub-key-public": (lambda f: (f / "hub.jwk.json").write_text('{"kty": "OKP"}'),
                       ("signing key file", "hub.jwk.json")),
    "backoffice-field": (lambda f: (f / "backoffice.toml").write_text("[clients.ops]\n"),
                         ("backoffice.toml", "clients.ops.token_sha256")),
    "backoffice-toml": (lambda f: (f / "backoffice.toml").write_text("[[[\n"),
                        ("GATEWAY_BACKOFFICE_TOKENS_FILE", "backoffice.toml", "TOML")),
    "rails-entry": (lambda f: _replace(f / "rails.toml", "[rails.iso20022]",
                                       '[rails.x]\nadapter = "x"\n[rails.iso20022]'),
                    ("rails.toml", "rails.x", "unknown adapter")),
    "rails-toml": (lambda f: (f / "rails.toml").write_text("[[[\n"),
                   ("GATEWAY_RAILS_FILE", "rails.toml", "TOML")),
}


@pytest.fixture
def folder(tmp_path: Path, instance: Path) -> Path:
    write_dev_tokens(instance / "backoffice.toml")
    write_dev_rails(instance / "rails.toml")
    return instance


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["dispatch"]],
                         ids=["serve", "dispatch"])
@pytest.mark.parametrize("name", list(BREAKS))
def test_broken_file_is_one_line(folder: Path, name: str, command: list[str]) -> None:
    breaks, expected = BREAKS[name]
    breaks(folder)
    if command[0] == "serve":
        command = ["serve", "--port", str(free_port())]
    _one_line(_run(folder, *command), *expected)


def _pg(database: str) -> str:
    base = pg_admin_url()[0].rpartition("/")[0]
    return f"{base}/{database}"


def _unreachable() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/px"


@pytest.mark.postgresql  # "missing" asks the test server for a database it does not have
@pytest.mark.parametrize("command", [["db", "upgrade"], ["audit", "verify"], ["serve"],
                                     ["dispatch"]], ids=lambda c: "-".join(c))
@pytest.mark.parametrize("where", ["unreachable", "missing"])
def test_database_unusable_is_one_line(folder: Path, command: list[str], where: str) -> None:
    url = _unreachable() if where == "unreachable" else _pg("px_no_such_database_x")
    if command == ["serve"]:
        command = ["serve", "--port", str(free_port())]
    expected = "cannot be reached" if where == "unreachable" else "does not exist"
    _one_line(_run(folder, *command, GATEWAY_DATABASE_URL=url), "database postgresql://",
              expected)


@pytest.mark.parametrize("port", ["70000", "0"])
def test_bad_port_is_one_line(folder: Path, port: str) -> None:
    _one_line(_run(folder, "serve", "--port", port), f"--port {port}")


def test_port_in_use_is_one_line(folder: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        _one_line(_run(folder, "serve", "--port", str(port)), f"127.0.0.1:{port}")


@pytest.mark.parametrize("command", [["simulate", "rail", "merchantrade"],
                                     ["simulate", "partner", "NP-FEB"]],
                         ids=["rail", "partner"])
def test_a_simulator_on_a_port_in_use_is_one_line(folder: Path, command: list[str]) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        _one_line(_run(folder, *command, "--port", str(port)),
                  f"cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize("command", [["serve"], ["dispatch"]], ids=["serve", "dispatch"])
def test_bad_tracing_endpoint_is_one_line(folder: Path, command: list[str]) -> None:
    if command == ["serve"]:
        command = ["serve", "--port", str(free_port())]
    _one_line(_run(folder, *command, GATEWAY_OTEL_ENABLED="true",
                   OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318"),
              "OTEL_EXPORTER_OTLP_ENDPOINT", "'collector:4318'", "http://")


@pytest.mark.parametrize("command", ["dispatch", "scheduler"])
@pytest.mark.parametrize(("args", "env", "expected"), [
    (["--metrics-port", "70000"], {}, "--metrics-port 70000 is not a TCP port"),
    (["--metrics-port", "0"], {}, "--metrics-port 0 is not a TCP port"),
    ([], {"PORT": "70000"}, "_METRICS_PORT: Input should be less than or equal to 65535"),
    ([], {"PORT": "http"}, "_METRICS_PORT: Input should be a valid integer"),
    (["--metrics-port", "9"], {"PORT": "http"}, "_METRICS_PORT"),  # refused, even if unused
    ([], {"PORT": "9", "HOST": " "}, "_METRICS_HOST is empty"),
    (["--metrics-host", "", "--metrics-port", "9"], {}, "--metrics-host is empty"),
], ids=["option-range", "option-zero", "env-range", "env-text", "env-under-option",
        "env-host-empty", "option-host-empty"])
def test_bad_probe_listener_is_one_line(folder: Path, command: str, args: list[str],
                                        env: dict[str, str], expected: str) -> None:
    prefix = f"GATEWAY_{command.upper()}_METRICS_"
    result = _run(folder, command, *args, **{prefix + k: v for k, v in env.items()})
    _one_line(result, expected)
    assert not (folder / "gateway.db").exists()  # refused before touching the database


@pytest.mark.parametrize("command", ["dispatch", "scheduler"])
@pytest.mark.parametrize("source", ["option", "env"])
def test_probe_listener_port_in_use_is_one_line(folder: Path, command: str,
                                                source: str) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        if source == "option":
            result = _run(folder, command, "--metrics-port", port)
        else:
            result = _run(folder, command, **{f"GATEWAY_{command.upper()}_METRICS_PORT": port})
        _one_line(result, f"cannot listen on 127.0.0.1:{port}")
