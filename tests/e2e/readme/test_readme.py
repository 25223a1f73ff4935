"""The README's shell examples, run as written against a real ``gateway serve``.

Every ``sh`` block of README.md carries a ``<!-- readme-test: ... -->`` comment on the line
before it, so a new example cannot go untested by accident:

- ``serve``: the block starts the hub; the test starts it (in the background) and waits for it;
- ``expect "TEXT"`` [``within N s``] [``once /PATH is served``]: the block's output must
  contain TEXT (it is run again until it does, for at most N seconds; skipped while the hub
  answers 404 at PATH);
- ``skip (why)``: not run here (installing, the test suite, benchmarks).

The blocks run in README order in one bash session, as a newcomer types them into one
terminal: in the repository folder of a fresh development instance, whose ``.venv`` is the
environment running these tests, with no ``gateway`` on ``PATH`` until the README's own
``. .venv/bin/activate`` puts it there, and shell variables kept from block to block. The only
liberty taken is the ports: the hub, the partner endpoints and the rails listen on free
loopback ports (the instance's registry and rails file say so before ``serve`` first starts),
and each block's ``127.0.0.1:PORT`` is rewritten to match, so the test never collides with a
hub on 8400.
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
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("GATEWAY_") and k != "VIRTUAL_ENV"}
        # No `gateway` on PATH: the README must say how to get it (`. .venv/bin/activate`).
        path = [d for d in env.get("PATH", "").split(os.pathsep)
                if d and not (Path(d) / "gateway").exists()]
        env.update(GATEWAY_DATABASE_URL=db_url, GATEWAY_PORT=str(self.hub),
                   GATEWAY_LOG_LEVEL="INFO", PATH=os.pathsep.join(path))
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


class _Terminal:
    """One bash session fed block after block, as a person pastes them into a terminal."""

    def __init__(self, inst: _Instance) -> None:
        self.inst = inst
        self.log = inst.folder / "terminal.log"
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=inst.folder,
                                     env=inst.env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)

    def paste(self, body: str, timeout: float = 60) -> tuple[int, str]:
        """Run ``body``; return its exit status and output (bounded by ``timeout``)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        mark = f"__readme_block_done_{time.monotonic_ns()}__"
        # Run in the session itself, so what a block sets (`. .venv/bin/activate`, TOKEN=...)
        # stays for the next; the ERR trap records any command of the block that failed.
        script = self.inst.rewrite(body)
        self.proc.stdin.write(f"set -o pipefail; __rc=0; trap '__rc=$?' ERR\n{script}\n"
                              f"trap - ERR; echo; echo {mark} $__rc\n")
        self.proc.stdin.flush()
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            assert line, "the shell ended:\n" + "".join(out)
            if line.startswith(mark):
                text = "".join(out)
                with open(self.log, "a", encoding="utf-8") as fh:
                    fh.write(f"$ {body}\n{text}\n")
                return int(line.split()[1]), text
            out.append(line)
        raise AssertionError(f"the block did not finish in {timeout}s:\n{body}\n{''.join(out)}")

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _run(term: _Terminal, block: Block) -> None:
    m = _EXPECT.match(block.directive)
    assert m is not None
    want = m["text"].replace('\\"', '"')
    hub = term.inst.hub
    if m["route"] and httpx.get(f"http://127.0.0.1:{hub}{m['route']}").status_code == 404:
        return  # documented ahead of the branch that serves it
    deadline = time.monotonic() + int(m["within"] or 0)
    while True:
        rc, out = term.paste(block.body)
        if rc == 0 and want in out:
            return
        assert time.monotonic() < deadline, (
            f"README.md:{block.line}: exit {rc}, wanted {want!r} in:\n{out[-3000:]}"
            f"\n--- the block ---\n{block.body}")
        time.sleep(0.5)


def test_the_readme_walk_through_works_as_written(tmp_path: Path, db_url: str) -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    inst = _Instance(tmp_path / "px", db_url)
    proc: subprocess.Popen[bytes] | None = None
    log = inst.folder / "serve.log"
    term = _Terminal(inst)
    try:
        rc, out = term.paste("command -v gateway || echo none")
        assert out.strip() == "none", out  # only the README's activation provides it
        for block in blocks:
            if block.directive == "serve":
                proc, log = _serve(inst, block.body)
            elif block.directive.startswith("expect"):
                assert proc is not None, f"README.md:{block.line} runs before the hub starts"
                _run(term, block)
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
        term.close()
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
