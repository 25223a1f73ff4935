"""Signed-intake benchmark: POST /v1/messages against a floor endpoint, side by side.

    .venv/bin/python -m bench.intake [--seconds 8] [--workers 2] [--concurrency 16,64]
                                     [--databases postgresql,sqlite] [--one-case]

For each database and concurrency it runs the floor (bench/floor.py: verify one Ed25519
signature, insert one row) and the gateway (``gateway serve``, background jobs off) on the same
uvicorn stack with the same number of worker processes, drives each with the same pre-signed
requests from a separate load process over keep-alive connections on loopback, and prints
requests/s, p50/p99 latency, peak RSS and the gateway/floor ratios. The load generator shares
the machine's two cores with the servers, for both sides alike.

Each claim is its own case (its own correlation id), as partners' traffic is. ``--one-case``
sends every message on one case instead: the hub keeps a case's messages in order, so on
PostgreSQL their inserts then take turns on the case's lock (gateway.storage.commit_order),
which bounds that workload by the commit latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import asyncpg
import orjson

from adapters.simulation import free_port
from bench.floor import create_schema
from gateway.protocol.keys import load_signer, write_private_key
from gateway.runtime.bootstrap import dev_key_path, write_dev_registry
from gateway.storage.migrate import upgrade

PG_ADMIN = os.environ.get("GATEWAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    rss_mb: float
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


# ---- a minimal HTTP/1.1 keep-alive client: cheap enough to leave the cores to the servers --

async def _worker(port: int, reqs: list[bytes], idx: list[int], deadline: float,
                  lat: list[float], errs: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline and idx[0] < len(reqs):
            req = reqs[idx[0]]
            idx[0] += 1
            t0 = time.perf_counter()
            try:
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                # The server dropped the connection: count it, open another, go on.
                errs[0] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            lat.append(time.perf_counter() - t0)
            if status not in (200, 202):
                errs[0] += 1
    finally:
        writer.close()


def _load(port: int, reqs: list[bytes], concurrency: int, seconds: float,
          out: mp.Queue) -> None:  # type: ignore[type-arg]
    async def main() -> None:
        lat: list[float] = []
        errs = [0]
        idx = [0]
        # Warm up connections and code paths before timing.
        warm = reqs[: concurrency * 5]
        reqs_timed = reqs[len(warm):]
        wdl = time.perf_counter() + 2
        await asyncio.gather(*[_worker(port, warm, idx, wdl, [], [0])
                               for _ in range(concurrency)])
        idx[0] = 0
        start = time.perf_counter()
        await asyncio.gather(*[_worker(port, reqs_timed, idx, start + seconds, lat, errs)
                               for _ in range(concurrency)])
        elapsed = time.perf_counter() - start
        out.put((len(lat), errs[0], elapsed, lat))

    asyncio.run(main())


def _requests(path: str, port: int, bodies: list[tuple[bytes, str]]) -> list[bytes]:
    return [
        (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
         f"X-JWS-Signature: {sig}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        for body, sig in bodies
    ]


def _tree_rss_mb(pid: int) -> float:
    """Sum of peak RSS (VmHWM) of a process and its children."""
    pids = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited early")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


def _merge(parts: list[Result]) -> Result:
    lat = sorted(x for p in parts for x in p.latencies)
    return Result(parts[0].name, sum(p.requests for p in parts),
                  sum(p.errors for p in parts), sum(p.seconds for p in parts),
                  statistics.median(lat) * 1000 if lat else 0.0,
                  lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else 0.0,
                  max(p.rss_mb for p in parts))


def _measure(name: str, port: int, server: subprocess.Popen[bytes], reqs: list[bytes],
             concurrency: int, seconds: float) -> Result:
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    p = mp.Process(target=_load, args=(port, reqs, concurrency, seconds, q))
    p.start()
    n, errs, elapsed, lat = q.get(timeout=seconds + 120)
    p.join(30)
    lat.sort()
    p50 = statistics.median(lat) * 1000 if lat else 0.0
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else 0.0
    return Result(name, n, errs, elapsed, p50, p99, _tree_rss_mb(server.pid), lat)


def _measure_fresh(kind: str, command: list[str], path: str, env: dict[str, str], cwd: Path,
                   log: IO[bytes], bodies: list[tuple[bytes, str]], concurrency: int,
                   seconds: float) -> Result:
    """Start one server, measure it, stop it: each side has the database's connections (and
    the machine) to itself while it is measured."""
    port = free_port()
    proc = subprocess.Popen(command + [str(port)], env=env, cwd=cwd, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc)
        return _measure(kind, port, proc, _requests(path, port, bodies), concurrency, seconds)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


async def _pg_db(action: str, name: str) -> None:
    conn = await asyncpg.connect("postgresql://" + PG_ADMIN.partition("://")[2])
    try:
        if action == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run(databases: list[str], concurrencies: list[int], seconds: float, workers: int,
        rounds: int = 3, pool_size: int = 32, one_case: bool = False) -> int:
    work = Path(tempfile.mkdtemp(prefix="px-bench-"))
    write_private_key(work / "hub.jwk.json", "MY-PERKESO-bench-1")
    write_dev_registry(work / "partners.toml")
    partner = load_signer(dev_key_path(work / "partners.toml", "ID-BPJSTK"), "ID-BPJSTK")
    public_x = json.loads((work / "keys" / "ID-BPJSTK.jwks.json").read_text())["keys"][0]["x"]
    payload = json.loads((Path(__file__).parent / "claim_payload.json").read_text())
    rows = []
    print(f"# intake benchmark: {workers} workers, {seconds:.0f} s per measurement in "
          f"{rounds} alternating slices, database pool {pool_size} per worker (both sides), "
          f"{os.cpu_count()} cores, load generator on the same machine")
    for db in databases:
        pg_name = f"px_bench_{uuid.uuid4().hex[:8]}"
        if db == "postgresql":
            asyncio.run(_pg_db("create", pg_name))
            url = PG_ADMIN.rpartition("/")[0] + "/" + pg_name
            url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
        else:
            url = f"sqlite:///{work / 'bench.db'}"
        asyncio.run(upgrade(url))
        asyncio.run(create_schema(url))
        env = dict(os.environ, GATEWAY_DATABASE_URL=url,
                   GATEWAY_PARTNERS_FILE=str(work / "partners.toml"),
                   GATEWAY_SIGNING_KEY_FILE=str(work / "hub.jwk.json"),
                   GATEWAY_DISPATCH_IN_SERVE="false", GATEWAY_LOG_LEVEL="WARNING",
                   FLOOR_DB_URL=url, FLOOR_PUBLIC_X=public_x)
        env["GATEWAY_DB_POOL_SIZE"] = str(pool_size)
        log = open(work / f"servers-{db}.log", "wb")  # noqa: SIM115
        commands = {
            "floor": [sys.executable, "-m", "uvicorn", "bench.floor:app", "--workers",
                      str(workers), "--log-level", "warning", "--no-access-log", "--port"],
            "gateway": [sys.executable, "-m", "gateway.cli", "serve", "--workers", str(workers),
                        "--port"],
        }
        paths = {"floor": "/floor", "gateway": "/v1/messages"}

        try:
            for c in concurrencies:
                n = int(seconds * 4000) + c * 5 * rounds
                bodies = []
                for i in range(n):
                    env_ = {"id": str(uuid.uuid4()), "type": "claim.notify", "version": 1,
                            "sender": "ID-BPJSTK", "recipient": "MY-PERKESO",
                            "sent_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "correlation_id": "BENCH" if one_case else f"BENCH-{i}",
                            "payload": payload}
                    body = orjson.dumps(env_)
                    bodies.append((body, partner.sign(body)))
                # Alternate short slices of floor and gateway so that the machine's noise
                # (it is shared) falls on both sides alike.
                slices = max(1, rounds)
                per = seconds / slices
                chunk = len(bodies) // slices
                floor_parts: list[Result] = []
                gate_parts: list[Result] = []
                for i in range(slices):
                    part = bodies[i * chunk:(i + 1) * chunk]
                    for kind, parts in (("floor", floor_parts), ("gateway", gate_parts)):
                        parts.append(_measure_fresh(
                            kind, commands[kind], paths[kind], env,
                            work if kind == "gateway" else Path.cwd(), log, part, c, per))
                floor, gate = _merge(floor_parts), _merge(gate_parts)
                rows.append((db, c, floor, gate))
                _print_pair(db, c, floor, gate)
        finally:
            log.close()
            if db == "postgresql":
                asyncio.run(_pg_db("drop", pg_name))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _print_pair(db: str, c: int, floor: Result, gate: Result) -> None:
    print(f"\n{db}, {c} connections")
    print(f"  {'':8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'peak RSS MB':>12} {'errors':>7}")
    for r in (floor, gate):
        print(f"  {r.name:8} {r.rps:8.0f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} {r.rss_mb:12.0f} "
              f"{r.errors:7d}")
    print(f"  gateway/floor: throughput {gate.rps / floor.rps:.0%}, "
          f"p99 {gate.p99_ms / floor.p99_ms:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", default="16,64")
    ap.add_argument("--databases", default="postgresql,sqlite")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating floor/gateway slices per measurement")
    ap.add_argument("--pool-size", type=int, default=32,
                    help="GATEWAY_DB_POOL_SIZE for both servers (at least the connections "
                    "per worker, so neither churns database connections)")
    ap.add_argument("--one-case", action="store_true",
                    help="send every message on one correlation id (one case)")
    a = ap.parse_args()
    sys.exit(run(a.databases.split(","), [int(x) for x in a.concurrency.split(",")],
                 a.seconds, a.workers, a.rounds, a.pool_size, a.one_case))


if __name__ == "__main__":
    main()
