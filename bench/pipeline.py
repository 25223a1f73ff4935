"""Pipeline benchmark: sustained signed claim intake, processed and answered end to end.

    .venv/bin/python -m bench.pipeline [--seconds 300] [--dispatchers 1|2] [--workers 2]
                                       [--concurrency 16] [--calibrate 20] [--drain 120]
                                       [--rate N]

On PostgreSQL: ``gateway serve`` (API only, ``GATEWAY_DISPATCH_IN_SERVE=false``, ``--workers``
processes), ``--dispatchers`` separate ``gateway dispatch`` processes, and the ID-BPJSTK partner
simulator in its own process, registered as the partner's push endpoint, so every claim.notify
is accepted (202 + receipt), processed (the claim recorded, a ``claim.status received`` queued)
and delivered (the simulator verifies it and answers with its signed receipt, which the hub
verifies and stores). A separate load process sends signed claims (each its own case and
claim_ref, as partners send them) over ``--concurrency`` keep-alive connections, as fast as the
gateway answers, for ``--seconds``. With ``--rate N`` the load is open-loop instead: claim
``i`` is due at ``start + i / N`` whatever the answers (a sender that falls behind the schedule
sends at once and the claim counts as late), so a run shows whether the dispatchers keep the
backlog bounded at that intake rate; the highest such rate is the pipeline's capacity on the
machine.

First a calibration slice: the same load for ``--calibrate`` seconds with no dispatcher running
(what the intake benchmark measures: intake alone), on its own database. Then the pipeline run.

Printed: a line every 10 s (accepted, processed, delivered, the open outbox tasks: the
backlog); then accepted/s, processed/s and delivered/s over the run, the end-to-end latency
(the 202 at the sender -> the simulator has the claim's claim.status, p50/p99, of the claims
answered within the run), and the same-run ratios delivered/accepted (floor 1.0: the pipeline
keeps up) and accepted/calibration (what sharing the cores with the dispatchers costs intake).
Then the backlog's trend over the second half of the run (tasks/s; bounded if it grows by less
than 2 % of the accepted rate) and the capacity figure: dispatcher CPU per processed claim over
intake CPU per accepted claim, i.e. how many dispatcher processes (cores) keep up with one
saturated ``serve`` worker. Then, for at most ``--drain`` seconds without load, how long the
backlog takes to empty.

Everything runs on this machine's cores, the load generator and simulator included; on a
shared machine figures move between runs: compare the ratios of one run.
PostgreSQL: GATEWAY_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

PG_ADMIN = os.environ.get("GATEWAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PARTNER = "ID-BPJSTK"
TICK = 10.0  # seconds between progress lines


# ---- the partner simulator, with the arrival time of each claim's first claim.status ------

def _sim_main(folder: str, port: int, hub_url: str) -> None:
    import logging

    import uvicorn
    from fastapi import FastAPI

    from gateway.protocol.keys import load_signer
    from gateway.protocol.signing import KeyRing
    from gateway.runtime.bootstrap import dev_key_path
    from gateway.sandbox.simulators import PARTNER_SIMULATORS

    logging.disable(logging.INFO)
    registry = Path(folder) / "partners.toml"
    signer = load_signer(dev_key_path(registry, PARTNER), PARTNER)
    hub = load_signer(Path(folder) / "hub.jwk.json", "MY-PERKESO")
    ring = KeyRing()
    ring.add_keyset("MY-PERKESO", hub.jwks())
    sim = PARTNER_SIMULATORS["px1"](PARTNER, signer, hub_url=hub_url, hub_keys=ring)
    arrivals: dict[str, float] = {}  # correlation id -> wall time of its first claim.status
    take_in = sim._take_in

    def timed_take_in(body: bytes) -> tuple[dict[str, Any], bool]:
        env, new = take_in(body)
        if new and env.get("type") == "claim.status":
            arrivals.setdefault(env.get("correlation_id") or "", time.time())
        return env, new

    sim._take_in = timed_take_in  # type: ignore[method-assign]
    api = FastAPI()

    @api.get("/_bench/arrivals")
    async def get_arrivals() -> dict[str, float]:
        return arrivals

    inner = sim.app

    async def app(scope: Any, receive: Any, send: Any) -> None:
        target = api if scope.get("path", "").startswith("/_bench") else inner
        await target(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False, lifespan="off")


# ---- the load: signed claims, each its own case, over keep-alive connections --------------

def due_at(start: float, i: int, rate: float | None) -> float:
    """When claim ``i`` (0-based) is due: at once without a rate (closed loop), else on the
    open-loop schedule ``start + i / rate``."""
    return start if rate is None else start + i / rate


def backlog_trend(samples: list[tuple[float, int]]) -> float:
    """The backlog's growth in tasks/s over the second half of ``samples`` ((t, backlog),
    least squares; 0.0 with fewer than two points there)."""
    if not samples:
        return 0.0
    half = [(t, b) for t, b in samples if t >= samples[-1][0] / 2]
    if len(half) < 2:
        return 0.0
    mt = sum(t for t, _ in half) / len(half)
    mb = sum(b for _, b in half) / len(half)
    var = sum((t - mt) ** 2 for t, _ in half)
    return sum((t - mt) * (b - mb) for t, b in half) / var if var else 0.0


def _load_main(folder: str, port: int, concurrency: int, seconds: float, tag: str,
               out: mp.Queue, rate: float | None = None) -> None:  # type: ignore[type-arg]
    from gateway.protocol.keys import load_signer
    from gateway.runtime.bootstrap import dev_key_path

    signer = load_signer(dev_key_path(Path(folder) / "partners.toml", PARTNER), PARTNER)
    payload = json.loads((Path(__file__).parent / "claim_payload.json").read_text())
    accepted: dict[str, float] = {}  # correlation id -> wall time of its 202
    refused = [0]
    counter = [0]
    late = [0]  # open loop: claims sent more than a second after they were due

    def request() -> tuple[str, bytes]:
        counter[0] += 1
        ref = f"PIPE-{tag}-{counter[0]:07d}"
        body = orjson.dumps({
            "id": str(uuid.uuid4()), "type": "claim.notify", "version": 1, "sender": PARTNER,
            "recipient": "MY-PERKESO", "sent_at": datetime.now(UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"), "correlation_id": ref,
            "payload": {**payload, "claim_ref": ref}})
        head = (f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nX-JWS-Signature: {signer.sign(body)}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        return ref, head + body

    async def worker(start: float, deadline: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                due = due_at(start, counter[0], rate)
                if due >= deadline:
                    break
                ref, req = request()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                elif rate is not None and wait < -1.0:
                    late[0] += 1
                status = 0
                # A paced sender's connection may sit idle past the server's keep-alive and be
                # closed: the claim then goes once more on a fresh connection.
                for _ in range(2):
                    try:
                        writer.write(req)
                        head = await reader.readuntil(b"\r\n\r\n")
                        status = int(head[9:12])
                        length = 0
                        for line in head.split(b"\r\n"):
                            if line[:15].lower() == b"content-length:":
                                length = int(line[15:])
                        await reader.readexactly(length)
                        break
                    except (OSError, asyncio.IncompleteReadError, ValueError):
                        status = 0
                        writer.close()
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                if status == 202:
                    accepted[ref] = time.time()
                else:
                    refused[0] += 1
        finally:
            writer.close()

    async def main() -> None:
        start = time.monotonic()
        deadline = start + seconds
        await asyncio.gather(*[worker(start, deadline) for _ in range(concurrency)])

    asyncio.run(main())
    out.put((accepted, refused[0], late[0]))


# ---- helpers -----------------------------------------------------------------------------

async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE state IN ('pending', 'leased', 'dead')) AS open,"
            " count(*) FILTER (WHERE kind = 'process_inbound' AND state = 'done') AS processed,"
            " count(*) FILTER (WHERE kind = 'deliver' AND state = 'done') AS delivered,"
            " count(*) FILTER (WHERE state = 'dead') AS dead FROM outbox")
        return dict(row)
    finally:
        await conn.close()


def _wait_port(port: int, proc: subprocess.Popen[bytes] | mp.Process,
               timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = proc.poll() is None if isinstance(proc, subprocess.Popen) else proc.is_alive()
        if not alive:
            raise SystemExit(f"the process for port {port} exited early")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children, alive ones included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu(int(k)) for k in kids)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


@dataclass
class Slice:
    accepted: dict[str, float]
    refused: int
    seconds: float
    late: int = 0


def _drive(folder: Path, port: int, concurrency: int, seconds: float, tag: str,
           on_tick: Any = None, rate: float | None = None) -> Slice:
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    load = mp.Process(target=_load_main,
                      args=(str(folder), port, concurrency, seconds, tag, q, rate))
    started = time.monotonic()
    load.start()
    next_tick = started + TICK
    result = None
    while result is None:
        try:
            result = q.get(timeout=max(0.1, min(1.0, next_tick - time.monotonic())))
        except Exception:  # queue.Empty: not done yet
            if not load.is_alive() and load.exitcode not in (None, 0):
                raise SystemExit("the load process failed") from None
        if time.monotonic() >= next_tick:
            if on_tick is not None:
                on_tick(time.monotonic() - started)
            next_tick += TICK
    load.join(30)
    return Slice(result[0], result[1], time.monotonic() - started, result[2])


def _warm_up(folder: Path, port: int, sim_port: int, timeout: float = 180) -> None:
    """One claim through the whole pipeline, so that the run starts with every process up."""
    import httpx

    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    _load_main(str(folder), port, 1, 0.5, "warm", q)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"http://127.0.0.1:{sim_port}/_bench/arrivals", timeout=30).json():
            return
        time.sleep(0.5)
    raise SystemExit("no claim.status reached the partner simulator: see the processes' log")


# ---- the run -------------------------------------------------------------------------------

def run(seconds: float, dispatchers: int, workers: int, concurrency: int, calibrate: float,
        drain: float, pool_size: int, rate: float | None = None) -> int:
    from adapters.simulation import free_port
    from gateway.protocol.keys import write_private_key
    from gateway.runtime.bootstrap import DEV_PARTNERS, write_dev_registry
    from gateway.storage.migrate import upgrade

    folder = Path(tempfile.mkdtemp(prefix="px-pipeline-"))
    sim_port = free_port()
    partners = tuple(dataclasses.replace(p, port=sim_port) if p.id == PARTNER else p
                     for p in DEV_PARTNERS)
    write_private_key(folder / "hub.jwk.json", "MY-PERKESO-bench-1")
    write_dev_registry(folder / "partners.toml", partners)
    names = {k: f"px_pipe_{k}_{uuid.uuid4().hex[:8]}" for k in ("cal", "run")}
    base = PG_ADMIN.rpartition("/")[0]
    log = open(folder / "processes.log", "wb")  # noqa: SIM115 - closed below
    procs: list[subprocess.Popen[bytes]] = []
    sim: mp.Process | None = None
    print(f"# pipeline benchmark: PostgreSQL, serve --workers {workers} (API only), "
          f"{dispatchers} dispatcher process(es), ID-BPJSTK simulator answering, "
          f"{concurrency} connections, {os.cpu_count()} cores shared by all of them and the "
          f"load generator; load "
          + (f"open-loop at {rate:g} claims/s" if rate else "closed-loop (as fast as answered)")
          + f"; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    try:
        for name in names.values():
            asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
            asyncio.run(upgrade(f"{base}/{name}".replace("postgresql://",
                                                        "postgresql+asyncpg://", 1)))

        def env_for(name: str) -> dict[str, str]:
            return dict(os.environ, GATEWAY_DATABASE_URL=f"{base}/{name}".replace(
                "postgresql://", "postgresql+asyncpg://", 1),
                GATEWAY_PARTNERS_FILE=str(folder / "partners.toml"),
                GATEWAY_SIGNING_KEY_FILE=str(folder / "hub.jwk.json"),
                GATEWAY_DISPATCH_IN_SERVE="false", GATEWAY_LOG_LEVEL="WARNING",
                GATEWAY_DB_POOL_SIZE=str(pool_size))

        def serve(name: str) -> tuple[subprocess.Popen[bytes], int]:
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--workers", str(workers),
                 "--port", str(port)], env=env_for(name), cwd=folder, stdout=log,
                stderr=subprocess.STDOUT)
            procs.append(proc)
            _wait_port(port, proc)
            return proc, port

        # Calibration: intake alone (no dispatcher), as the intake benchmark measures it.
        cal_rate = None
        if calibrate > 0:
            server, port = serve(names["cal"])
            cal = _drive(folder, port, concurrency, calibrate, "cal")
            _stop(server)
            cal_rate = len(cal.accepted) / cal.seconds
            print(f"calibration, intake alone: {cal_rate:.0f} accepted/s over "
                  f"{cal.seconds:.0f} s ({cal.refused} refused)", flush=True)

        server, port = serve(names["run"])
        hub_url = f"http://127.0.0.1:{port}"
        sim = mp.Process(target=_sim_main, args=(str(folder), sim_port, hub_url), daemon=True)
        sim.start()
        _wait_port(sim_port, sim)
        for _ in range(dispatchers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "dispatch"], env=env_for(names["run"]),
                cwd=folder, stdout=log, stderr=subprocess.STDOUT))
        dsn = f"{base}/{names['run']}"
        _warm_up(folder, port, sim_port)
        backlog: list[tuple[float, int]] = []

        def tick(t: float) -> None:
            c = asyncio.run(_counts(dsn))
            backlog.append((t, c["open"]))
            print(f"  t={t:5.0f} s  processed {c['processed']:>7}  delivered "
                  f"{c['delivered']:>7}  open outbox tasks (backlog) {c['open']:>7}"
                  + (f"  dead {c['dead']}" if c["dead"] else ""), flush=True)

        print(f"pipeline run, {seconds:.0f} s:", flush=True)
        before = asyncio.run(_counts(dsn))
        roles = {"serve": [server.pid], "dispatchers": [p.pid for p in procs[-dispatchers:]],
                 "simulator": [sim.pid or 0]}
        cpu0 = {k: sum(_cpu(p) for p in v) for k, v in roles.items()}
        run_ = _drive(folder, port, concurrency, seconds, "run", tick, rate)
        end = asyncio.run(_counts(dsn))
        cpu = {k: sum(_cpu(p) for p in v) - cpu0[k] for k, v in roles.items()}
        import httpx
        arrivals: dict[str, float] = httpx.get(
            f"http://127.0.0.1:{sim_port}/_bench/arrivals", timeout=30).json()
        accepted = len(run_.accepted)
        answered = [arrivals[r] - t for r, t in run_.accepted.items() if r in arrivals]
        answered.sort()
        processed = end["processed"] - before["processed"]
        delivered = len(answered)
        s = run_.seconds
        print(f"\n  accepted/s  {accepted / s:8.0f}   ({accepted} in {s:.0f} s, "
              f"{run_.refused} refused"
              + (f", {run_.late} sent over 1 s late: intake fell behind the rate" if run_.late
                 else "") + ")")
        print(f"  processed/s {processed / s:8.0f}   (claims recorded, claim.status queued)")
        print(f"  delivered/s {delivered / s:8.0f}   (claim.status at the partner, within the "
              "run)")
        print(f"  backlog at the end: {end['open']} open outbox tasks "
              f"(largest seen {max([b for _, b in backlog] + [end['open']])})")
        if answered:
            print(f"  end-to-end latency (202 -> partner has its claim.status): "
                  f"p50 {statistics.median(answered) * 1000:.0f} ms, "
                  f"p99 {_pct(answered, 0.99) * 1000:.0f} ms ({len(answered)} of {accepted} "
                  "answered within the run)")
        if accepted and processed:
            print(f"  CPU ms per message: serve (intake) {1000 * cpu['serve'] / accepted:.1f} "
                  f"per accepted; dispatchers {1000 * cpu['dispatchers'] / processed:.1f} per "
                  f"processed; partner simulator {1000 * cpu['simulator'] / max(1, delivered):.1f}"
                  " per delivered")
        if accepted and processed and cpu["serve"] > 0:
            per_disp = cpu["dispatchers"] / processed
            per_intake = cpu["serve"] / accepted
            print(f"  capacity: a dispatcher spends {per_disp / per_intake:.2f}x intake's CPU "
                  f"per claim: one saturated serve worker needs {per_disp / per_intake:.1f} "
                  f"dispatcher process(es) (cores) of its own; this machine's "
                  f"{os.cpu_count()} cores carry at most "
                  f"{(os.cpu_count() or 1) / (per_intake + per_disp):.0f} claims/s through "
                  "intake and dispatch at these figures (an upper bound: PostgreSQL, the "
                  "load generator and the simulator use the same cores)")
        trend = backlog_trend(backlog + [(s, end["open"])])
        bounded = trend < 0.02 * max(1.0, accepted / s)
        print(f"  backlog trend over the second half: {trend:+.1f} tasks/s "
              f"({'bounded' if bounded else 'growing'})")
        ratio = delivered / accepted if accepted else 0.0
        print(f"  same-run ratio delivered/accepted: {ratio:.2f} (floor 1.00: "
              f"{'kept up' if ratio >= 0.99 else 'fell behind'})")
        if cal_rate:
            print(f"  same-run ratio accepted/s pipeline / intake alone: "
                  f"{accepted / s / cal_rate:.2f}")
        if drain > 0:
            drain_start = time.monotonic()
            while time.monotonic() - drain_start < drain:
                if asyncio.run(_counts(dsn))["open"] == 0:
                    break
                time.sleep(1)
            left = asyncio.run(_counts(dsn))["open"]
            print(f"  drain without load: backlog {end['open']} -> {left} in "
                  f"{time.monotonic() - drain_start:.0f} s")
        return 0
    finally:
        for p in reversed(procs):
            _stop(p)
        if sim is not None:
            sim.terminate()
            sim.join(5)
        log.close()
        for name in names.values():
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(folder, ignore_errors=True)


def positive_rate(text: str) -> float:
    """``--rate``: claims per second, a positive number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of claims/s") from None
    if not 0 < value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text} is not a rate between 0 and 100000 claims/s")
    return value


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="length of the run")
    ap.add_argument("--dispatchers", type=int, choices=(1, 2, 3, 4), default=2)
    ap.add_argument("--workers", type=int, default=2, help="gateway serve worker processes")
    ap.add_argument("--concurrency", type=int, default=16, help="sender connections")
    ap.add_argument("--calibrate", type=float, default=20.0,
                    help="seconds of intake alone first (0 to skip)")
    ap.add_argument("--drain", type=float, default=120.0,
                    help="at most this many seconds without load for the backlog to empty")
    ap.add_argument("--pool-size", type=int, default=32, help="GATEWAY_DB_POOL_SIZE")
    ap.add_argument("--rate", type=positive_rate, default=None,
                    help="open-loop load: this many claims/s whatever the answers "
                    "(default: closed loop, as fast as the gateway answers)")
    a = ap.parse_args(argv)
    mp.set_start_method("spawn")
    sys.exit(run(a.seconds, a.dispatchers, a.workers, a.concurrency, a.calibrate, a.drain,
                 a.pool_size, a.rate))


if __name__ == "__main__":
    main()
