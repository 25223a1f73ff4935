"""``gateway example`` and the signing shortcuts, as a person runs them (real processes).

A message to stdout or a file, the exact command to sign and send what was written, a
signature that verifies against the partner's registered key; an unknown type, partner,
format or missing registry is one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.composition import partner_adapters
from gateway.protocol.partners import load_registry
from gateway.protocol.signing import verify_detached
from gateway.runtime.bootstrap import write_dev_registry

pytestmark = pytest.mark.e2e


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=env, cwd=folder,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_dev_registry(tmp_path / "partners.toml")  # what `gateway serve` writes at first start
    return tmp_path


def test_a_message_to_stdout(folder: Path) -> None:
    done = _run(folder, "example", "claim.notify", "--partner", "PK-MOPHRD",
                "--format", "canonical")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    env = json.loads(done.stdout)
    assert (env["type"], env["sender"]) == ("claim.notify", "PK-MOPHRD")
    assert env["payload"]["worker"]["national_id"]["scheme"] == "PK-CNIC"


def test_a_message_to_a_file_with_the_command_that_signs_and_sends_it(folder: Path) -> None:
    done = _run(folder, "example", "claim.notify", "--partner", "ID-BPJSTK", "--out",
                "claim.json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "wrote claim.json (claim.notify, ID-BPJSTK); send it with:" in done.stderr
    assert ("curl -s http://127.0.0.1:8400/v1/messages -H 'Content-Type: application/json' "
            '-H "X-JWS-Signature: $(gateway keys sign --partner ID-BPJSTK claim.json)" '
            "--data-binary @claim.json") in done.stderr
    signed = _run(folder, "keys", "sign", "--partner", "ID-BPJSTK", "claim.json")
    assert signed.returncode == 0, signed.stderr
    registry = load_registry(folder / "partners.toml", frozenset(partner_adapters()))
    body = (folder / "claim.json").read_bytes()
    assert verify_detached(body, signed.stdout.strip(), registry.keys).party == "ID-BPJSTK"
    token = _run(folder, "keys", "token", "--partner", "ID-BPJSTK")
    assert token.returncode == 0 and token.stdout.count(".") == 2, token.stderr


def test_a_hub_message_is_a_back_office_request(folder: Path) -> None:
    done = _run(folder, "example", "claim.status", "--partner", "NP-FEB", "--out", "s.json")
    assert done.returncode == 0, done.stderr
    assert "/v1/backoffice/messages" in done.stderr and "backoffice.token" in done.stderr
    assert json.loads((folder / "s.json").read_text())["type"] == "claim.status"


@pytest.mark.parametrize(("args", "says"), [
    (("example", "claim.notfy", "--partner", "ID-BPJSTK"), "unknown message type 'claim.notfy'"),
    (("example", "claim.notify", "--partner", "XX-NOPE"), "partner 'XX-NOPE' is not in"),
    (("example", "claim.notify", "--partner", "ID-BPJSTK", "--format", "xml"),
     "--format 'xml' must be wire or canonical"),
    (("keys", "sign", "missing.json"), "give exactly one of --key FILE or --partner ID"),
    (("keys", "sign", "--partner", "XX-NOPE", "partners.toml"), "no development key for XX-NOPE"),
])
def test_bad_input_is_one_line_and_exit_2(folder: Path, args: tuple[str, ...],
                                          says: str) -> None:
    done = _run(folder, *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("gateway: ") and says in lines[0], lines[0]
    assert done.stdout == ""


def test_without_a_registry_it_says_how_to_get_one(tmp_path: Path) -> None:
    done = _run(tmp_path, "example", "claim.notify", "--partner", "ID-BPJSTK")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no partner registry at partners.toml: run `gateway serve` once" in done.stderr
