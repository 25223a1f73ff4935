"""The README's shell examples, run as written against a real ``gateway serve``.

Every ``sh`` block of README.md carries a ``<!-- readme-test: ... -->`` comment on the line
before it, so a new example cannot go untested by accident:

- ``serve``: the block starts the hub; the test starts it (in the background) and waits for it;
- ``expect "TEXT"`` [``within N s``] [``once /PATH is served``]: the block runs in bash (``set
  -e``, in the repository folder of a fresh development instance, the installed ``gateway`` on
  ``PATH`` as after ``. .venv/bin/activate``) and its output must contain TEXT (rerun until it
  does, at most N seconds; skipped while the hub answers 404 at PATH);
- ``skip (why)``: not run here (installing, the test suite, benchmarks).

The blocks run in README order, like a newcomer typing them. The only liberty taken is the
ports: the hub, the partner endpoints and the rails listen on free loopback ports (the
instance's registry and rails file say so before ``serve`` first starts), and each block's
``127.0.0.1:PORT`` is rewritten to match, so the test never collides with a hub on 8400.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.simulation import free_port
from gateway.payments.rails import write_dev_rails
from gateway.runtime.bootstrap import DEV_PARTNERS, write_dev_registry

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[3] / "README.md"
_BLOCK = re.compile(r"^<!-- readme-test: (?P<directive>.*?) -->\n```sh\n(?P<body>.*?)^```$",
                    re.M | re.S)
_EXPECT = re.compile(r'^expect "(?P<text>(?:[^"\\]|\\.)*)"'
                     r"(?: within (?P<within>\d+) s)?(?: once (?P<route>/\S+) is served)?$")


@dataclass(frozen=True)
class Block:
    line: int
    directive: str
    body: str


def readme_blocks(text: str) -> list[Block]:
    """Every ``sh`` block with its directive; fails on a block without one."""
    blocks = [Block(text.count("\n", 0, m.start()) + 2, m["directive"], m["body"])
              for m in _BLOCK.finditer(text)]
    fences = [n + 1 for n, line in enumerate(text.splitlines()) if line == "```sh"]
    assert [b.line for b in blocks] == fences, (
        "every ```sh block of README.md needs a <!-- readme-test: ... --> line just above it; "
        f"blocks at lines {sorted(set(fences) - {b.line for b in blocks})} have none")
    return blocks


def test_every_readme_example_is_marked_and_parses() -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    kinds = [b.directive.split()[0] for b in blocks]
    assert kinds.count("serve") == 1
    assert kinds.count("expect") >= 8
    for b in blocks:
        if b.directive.startswith("expect"):
            assert _EXPECT.match(b.directive), f"README.md:{b.line}: {b.directive}"
        else:
            assert b.directive == "serve" or re.fullmatch(r"skip \(.+\)", b.directive), \
                f"README.md:{b.line}: unknown directive {b.directive!r}"
        assert "..." not in b.body and "…" not in b.body, f"README.md:{b.line}: a placeholder"


def test_the_marker_check_fails_on_an_unmarked_block() -> None:
    with pytest.raises(AssertionError, match="have none"):
        readme_blocks("<!-- readme-test: skip (x) -->\n```sh\ntrue\n```\n\n```sh\nfalse\n```\n")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class _Instance:
    """A repository folder on a fresh development instance, on free ports."""

    def __init__(self, folder: Path, db_url: str) -> None:
        self.folder = folder
        self.hub = free_port()
        self.partners = {p.id: free_port() for p in DEV_PARTNERS if p.mode == "push"}
        self.rails = {"merchantrade": free_port(), "iso20022": free_port()}
        folder.mkdir()
        # `. .venv/bin/activate` must find the environment the set-up line made: this one.
        (folder / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
        write_dev_registry(folder / "partners.toml", tuple(
            dataclasses.replace(p, port=self.partners[p.id]) if p.id in self.partners else p
            for p in DEV_PARTNERS))
        write_dev_rails(folder / "rails.toml", self.rails)
        self.ports = {8400: self.hub, 8701: self.rails["merchantrade"],
                      8702: self.rails["iso20022"]}
        self.ports.update({p.port: self.partners[p.id] for p in DEV_PARTNERS
                           if p.id in self.partners})
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(GATEWAY_DATABASE_URL=db_url, GATEWAY_PORT=str(self.hub),
                   GATEWAY_LOG_LEVEL="INFO",
                   PATH=f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}")
        self.env = env

    def rewrite(self, body: str) -> str:
        return re.sub(r"127\.0\.0\.1:(\d+)",
                      lambda m: f"127.0.0.1:{self.ports.get(int(m[1]), int(m[1]))}", body)


def _serve(inst: _Instance, body: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = inst.folder / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(shlex.split(body.strip()), cwd=inst.folder, env=inst.env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # seven simulator processes start first, on 2 cores
    while not _listening(inst.hub):
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    return proc, log


def _run(inst: _Instance, block: Block) -> None:
    m = _EXPECT.match(block.directive)
    assert m is not None
    want = m["text"].replace('\\"', '"')
    if m["route"] and httpx.get(f"http://127.0.0.1:{inst.hub}{m['route']}").status_code == 404:
        return  # documented ahead of the branch that serves it
    deadline = time.monotonic() + int(m["within"] or 0)
    while True:
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", inst.rewrite(block.body)],
                              cwd=inst.folder, env=inst.env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        out = done.stdout + done.stderr
        if done.returncode == 0 and want in out:
            return
        assert time.monotonic() < deadline, (
            f"README.md:{block.line}: exit {done.returncode}, wanted {want!r} in:\n{out[-3000:]}"
            f"\n--- the block ---\n{block.body}")
        time.sleep(0.5)


def test_the_readme_walk_through_works_as_written(tmp_path: Path, db_url: str) -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    inst = _Instance(tmp_path / "px", db_url)
    proc: subprocess.Popen[bytes] | None = None
    log = inst.folder / "serve.log"
    try:
        for block in blocks:
            if block.directive == "serve":
                proc, log = _serve(inst, block.body)
            elif block.directive.startswith("expect"):
                assert proc is not None, f"README.md:{block.line} runs before the hub starts"
                _run(inst, block)
        assert proc is not None
        text = log.read_text()
        # serve named what it calls, with the command that simulates each ...
        port = inst.partners["NP-FEB"]
        assert (f"partner NP-FEB pushes to http://127.0.0.1:{port}/px (simulator: gateway "
                f"simulate partner NP-FEB --port {port} --hub http://127.0.0.1:{inst.hub})"
                in text), text[-3000:]
        assert f"rail iso20022 pays through http://127.0.0.1:{inst.rails['iso20022']}" in text
        assert text.count("started the partner simulator of") == 5
        assert text.count("started the rail simulator of") == 2
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    # ... and stopped every simulator it started when it stopped.
    assert proc.returncode is not None
    assert "stopped 7 simulator(s)" in log.read_text()
    for sim_port in (*inst.partners.values(), *inst.rails.values()):
        assert not _listening(sim_port), f"a simulator still listens on {sim_port}"
