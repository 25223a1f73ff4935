"""Evidence benchmark: does the chainer keep up with signed intake, in constant memory, and how
fast does ``gateway audit verify`` check a large chain? PostgreSQL.

    .venv/bin/python -m bench.evidence [--seconds 300] [--workers 2] [--concurrency 64]
                                       [--records 1000000] [--big-records 1000]
                                       [--signature-records 20000] [--skip intake,memory,...]

1. intake: ``gateway serve`` (as bench.intake runs it: background jobs off, pre-signed PX/1
   claims over keep-alive connections from a separate load process, 64 connections) for
   ``--seconds``, with the chainer running beside it in its own process (the housekeeping job
   of ``gateway dispatch``); every 5 s it samples messages stored and records chained. Prints
   the intake rate, the chain append rate, the backlog over time and whether it stayed
   bounded, and the chainer's peak RSS.
2. memory: the chainer's peak RSS catching up a backlog of small records and of 1 MiB records
   (bulk-inserted), each in a fresh process.
3. verify: ``gateway audit verify`` (a subprocess, as an operator runs it) over a chain of
   ``--records`` records, bulk-inserted then chained: records/s and peak RSS, re-hashing the
   bytes in the database (the default) and trusting stored hashes; then ``--signatures`` over
   ``--signature-records``.

Same-run ratios against the targets: chain append rate / intake rate (>= 1, backlog bounded),
verify records/s / 50,000 (>= 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from pathlib import Path

import asyncpg
import orjson

from adapters.simulation import free_port
from bench.intake import PG_ADMIN, _pg_db, _stop, _wait_port, _worker
from gateway.protocol.keys import load_signer, write_private_key
from gateway.runtime.bootstrap import dev_key_path, write_dev_registry
from gateway.storage.migrate import upgrade

VERIFY_TARGET = 50_000
SAMPLE_EVERY = 5.0


def _vmhwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Instance:
    """A bench database and the instance files (hub key, registry, partner keys)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.name = f"px_bench_ev_{uuid.uuid4().hex[:8]}"
        base = PG_ADMIN.rpartition("/")[0]
        self.url = (base + "/" + self.name).replace("postgresql://", "postgresql+asyncpg://", 1)
        self.dsn = "postgresql://" + (base + "/" + self.name).partition("://")[2]

    def __enter__(self) -> Instance:
        asyncio.run(_pg_db("create", self.name))
        asyncio.run(upgrade(self.url))
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run(_pg_db("drop", self.name))

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(GATEWAY_DATABASE_URL=self.url,
                   GATEWAY_PARTNERS_FILE=str(self.work / "partners.toml"),
                   GATEWAY_SIGNING_KEY_FILE=str(self.work / "hub.jwk.json"),
                   GATEWAY_BACKOFFICE_TOKENS_FILE=str(self.work / "backoffice.toml"),
                   GATEWAY_DISPATCH_IN_SERVE="false", GATEWAY_LOG_LEVEL="WARNING", **extra)
        return env


def _chainer_main(env: dict[str, str]) -> None:
    """The chainer alone: the real housekeeping job of `gateway dispatch` (chaining, evidence
    checkpoints, jti purge, pension schedules), without the outbox dispatcher beside it."""
    os.environ.update(env)
    from gateway.composition import build_hub
    from gateway.config import Settings
    from gateway.runtime.jobs import run_housekeeping

    async def main() -> None:
        hub = build_hub(Settings())
        try:
            # Never set: the benchmark ends this process by terminating it.
            await run_housekeeping(hub, asyncio.Event())
        finally:
            await hub.close()

    asyncio.run(main())


def _start_chainer(inst: Instance) -> BaseProcess:
    p = mp.get_context("spawn").Process(target=_chainer_main, args=(inst.env(),), daemon=True)
    p.start()
    return p


async def _counts(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        stored = await conn.fetchval("SELECT coalesce(max(pk), 0) FROM messages")
        chained = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM evidence_chain")
        return int(stored), int(chained)
    finally:
        await conn.close()


def _signed_bodies(work: Path, n: int) -> list[tuple[bytes, str]]:
    partner = load_signer(dev_key_path(work / "partners.toml", "ID-BPJSTK"), "ID-BPJSTK")
    payload = json.loads((Path(__file__).parent / "claim_payload.json").read_text())
    out = []
    for i in range(n):
        env = {"id": str(uuid.uuid4()), "type": "claim.notify", "version": 1,
               "sender": "ID-BPJSTK", "recipient": "MY-PERKESO",
               "sent_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "correlation_id": f"EVBENCH-{i}", "payload": payload}
        body = orjson.dumps(env)
        out.append((body, partner.sign(body)))
    return out


# ---- 1. sustained intake with the chainer beside it ----------------------------------------

class _Requests:
    """Signed requests made as the load process sends them: five minutes of pre-signed
    requests would take a gigabyte; signing one costs the load process ~0.1 ms."""

    def __init__(self, work: Path, port: int) -> None:
        self.partner = load_signer(dev_key_path(work / "partners.toml", "ID-BPJSTK"),
                                   "ID-BPJSTK")
        self.payload = json.loads((Path(__file__).parent / "claim_payload.json").read_text())
        self.port = port
        self.i = 0

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, _idx: int) -> bytes:
        self.i += 1
        env = {"id": str(uuid.uuid4()), "type": "claim.notify", "version": 1,
               "sender": "ID-BPJSTK", "recipient": "MY-PERKESO",
               "sent_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "correlation_id": f"EVBENCH-{self.i}", "payload": self.payload}
        body = orjson.dumps(env)
        return (f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: application/json\r\nX-JWS-Signature: {self.partner.sign(body)}"
                f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def _lazy_load(work: Path, port: int, concurrency: int, seconds: float,
               out: mp.Queue) -> None:  # type: ignore[type-arg]
    async def main() -> None:
        reqs = _Requests(work, port)
        lat: list[float] = []
        errs, idx = [0], [0]
        start = time.perf_counter()
        await asyncio.gather(*[_worker(port, reqs, idx, start + seconds,  # type: ignore[arg-type]
                                       lat, errs) for _ in range(concurrency)])
        lat.sort()
        p50 = lat[len(lat) // 2] * 1000 if lat else 0.0
        out.put((len(lat), errs[0], time.perf_counter() - start, p50))

    asyncio.run(main())


def bench_intake(work: Path, seconds: float, workers: int, concurrency: int,
                 pool_size: int) -> dict[str, float]:
    print(f"\n## 1. sustained signed intake, {seconds:.0f} s, {workers} workers, "
          f"{concurrency} connections, chainer in its own process")
    with Instance(work) as inst:
        port = free_port()
        log = open(work / "serve.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--workers", str(workers), "--port",
             str(port)], env=inst.env(GATEWAY_DB_POOL_SIZE=str(pool_size)), cwd=work,
            stdout=log, stderr=subprocess.STDOUT)
        chainer = _start_chainer(inst)
        try:
            _wait_port(port, server)
            q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
            load = mp.Process(target=_lazy_load, args=(work, port, concurrency, seconds, q))
            load.start()
            samples: list[tuple[float, int, int]] = []
            t0 = time.monotonic()
            while load.is_alive() and time.monotonic() - t0 < seconds + 60:
                stored, chained = asyncio.run(_counts(inst.dsn))
                samples.append((time.monotonic() - t0, stored, chained))
                load.join(SAMPLE_EVERY)
            n, errs, elapsed, p50 = q.get(timeout=60)
            load.join(30)
            # Let the chainer finish what intake left, to see the drain.
            drain_start = time.monotonic()
            while time.monotonic() - drain_start < 60:
                stored, chained = asyncio.run(_counts(inst.dsn))
                if chained >= stored:
                    break
                time.sleep(0.5)
            drained_in = time.monotonic() - drain_start
            rss = _vmhwm_mb(chainer.pid or 0)
        finally:
            _stop(server)
            chainer.terminate()
            chainer.join(10)
            log.close()
    print(f"  {'t s':>6} {'stored':>9} {'chained':>9} {'backlog':>8}")
    for t, s, c in samples:
        print(f"  {t:6.0f} {s:9d} {c:9d} {s - c:8d}")
    run_s = samples[-1][0] - samples[0][0] if len(samples) > 1 else elapsed
    stored_run = samples[-1][1] - samples[0][1]
    chained_run = samples[-1][2] - samples[0][2]
    intake_rate = n / elapsed
    append_rate = chained_run / run_s if run_s else 0.0
    backlogs = [s - c for _t, s, c in samples]
    third = max(1, len(backlogs) // 3)
    bounded = max(backlogs[-third:]) <= max(max(backlogs[:third]) * 1.5, intake_rate * 5)
    print(f"  intake {intake_rate:.0f} msg/s ({n} accepted, {errs} errors in {elapsed:.0f} s, "
          f"p50 {p50:.0f} ms); "
          f"stored {stored_run} and chained {chained_run} in the {run_s:.0f} s sampled")
    print(f"  chain append {append_rate:.0f} records/s; backlog max {max(backlogs)}, "
          f"at the end {backlogs[-1]}, drained {drained_in:.1f} s after intake stopped; "
          f"bounded: {'yes' if bounded else 'NO'}")
    print(f"  chainer peak RSS {rss:.0f} MB")
    ratio = append_rate / intake_rate if intake_rate else 0.0
    print(f"  ratio chain append / intake: {ratio:.2f} (the chain trails intake by one chainer "
          "tick, 1 s; target: the backlog bounded; the chainer's capacity is in part 3)")
    return {"intake": intake_rate, "append": append_rate, "ratio": ratio,
            "backlog_max": max(backlogs), "rss": rss}


# ---- bulk records -------------------------------------------------------------------------

_INSERT = """
INSERT INTO messages (direction, partner_id, message_id, sender, recipient, type,
    correlation_id, sent_at, received_at, wire, wire_media_type, canonical, body_sha256,
    signature, kid, receipt, receipt_signature)
SELECT 'in', 'ID-BPJSTK', {message_id}, 'ID-BPJSTK', 'MY-PERKESO', 'claim.notify',
    'BULK-' || g, now(), now(), {wire}, 'application/json', NULL, $1, $2, $3, $4, $5
FROM generate_series($6::bigint, $7::bigint) AS g
"""


async def _bulk(dsn: str, count: int, wire: bytes, signature: str, kid: str, receipt: bytes,
                receipt_sig: str, size: int | None = None, chunk: int = 100_000) -> float:
    """Insert ``count`` message rows in a few INSERT ... SELECT statements; return seconds.

    Every row carries the same (really signed) wire bytes under its own message id, so the
    signatures verify; with ``size`` the wire is ``size`` bytes made in the database (a
    distinct first line per row, so each is hashed separately), for the memory test."""
    import hashlib

    conn = await asyncpg.connect(dsn)
    t0 = time.perf_counter()
    try:
        if size is None:
            sql = _INSERT.format(message_id="gen_random_uuid()::text", wire="$8::bytea")
            extra: tuple[object, ...] = (wire,)
            body_sha = hashlib.sha256(wire).hexdigest()
        else:
            sql = _INSERT.format(
                message_id="gen_random_uuid()::text",
                wire=f"convert_to(g::text || repeat('x', {size}), 'UTF8')")
            extra = ()
            body_sha = "0" * 64  # not the wire's: the memory test does not verify
        done = 0
        while done < count:
            n = min(chunk, count - done)
            await conn.execute(sql, body_sha, signature, kid, receipt, receipt_sig,
                               done + 1, done + n, *extra)
            done += n
    finally:
        await conn.close()
    return time.perf_counter() - t0


def _one_signed_message(work: Path) -> tuple[bytes, str, bytes, str]:
    hub = load_signer(work / "hub.jwk.json", "MY-PERKESO")
    body, sig = _signed_bodies(work, 1)[0]
    receipt = orjson.dumps({"message_id": "bulk", "status": "accepted"})
    return body, sig, receipt, hub.sign(receipt)


def _kid(work: Path) -> str:
    jwk = json.loads(dev_key_path(work / "partners.toml", "ID-BPJSTK").read_text())
    return str(jwk.get("kid") or jwk["keys"][0]["kid"])


def _chain_all_in_process(inst: Instance) -> tuple[int, float]:
    os.environ.update(inst.env())
    from gateway.evidence.chain import chain_pending
    from gateway.storage.engine import create_engine
    from gateway.storage.uow import factory_for

    async def main() -> int:
        engine = create_engine(inst.url)
        total = 0
        try:
            while n := await chain_pending(factory_for(engine), full_sweep=total == 0,
                                           lookback=total == 0):
                total += n
        finally:
            await engine.dispose()
        return total

    t0 = time.perf_counter()
    n = asyncio.run(main())
    return n, time.perf_counter() - t0


# ---- 2. chainer memory: small vs 1 MiB records ---------------------------------------------

def bench_memory(work: Path, count: int) -> dict[str, float]:
    print(f"\n## 2. chainer peak RSS catching up {count} records, small vs 1 MiB")
    body, sig, receipt, rsig = _one_signed_message(work)
    kid = _kid(work)
    out: dict[str, float] = {}
    for label, size in (("small", None), ("1 MiB", 1024 * 1024)):
        with Instance(work) as inst:
            asyncio.run(_bulk(inst.dsn, count, body, sig, kid, receipt, rsig, size=size,
                              chunk=200))
            chainer = _start_chainer(inst)
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < 600:
                    stored, chained = asyncio.run(_counts(inst.dsn))
                    if chained >= stored:
                        break
                    time.sleep(0.5)
                took = time.monotonic() - t0
                rss = _vmhwm_mb(chainer.pid or 0)
            finally:
                chainer.terminate()
                chainer.join(10)
        out[label] = rss
        print(f"  {label:6} records: chained {chained} in {took:.1f} s "
              f"({chained / took:.0f}/s, the process's start included), peak RSS {rss:.0f} MB")
    print(f"  ratio peak RSS 1 MiB / small: {out['1 MiB'] / out['small']:.2f} "
          "(target ~1: constant memory)")
    return out


# ---- 3. audit verify on a large chain ------------------------------------------------------

def _verify(inst: Instance, *args: str) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "audit", "verify", *args],
                            env=inst.env(), cwd=inst.work, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    _pid, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t0
    out = proc.stdout.read().strip() if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"audit verify {' '.join(args)} failed: {out}")
    return took, usage.ru_maxrss / 1024, out


def bench_verify(work: Path, records: int, signature_records: int,
                 intake_rate: float | None) -> dict[str, float]:
    print(f"\n## 3. gateway audit verify over {records} records")
    body, sig, receipt, rsig = _one_signed_message(work)
    kid = _kid(work)
    out: dict[str, float] = {}
    with Instance(work) as inst:
        took = asyncio.run(_bulk(inst.dsn, records, body, sig, kid, receipt, rsig))
        print(f"  bulk insert: {records / took:.0f} records/s")
        n, took = _chain_all_in_process(inst)
        print(f"  chainer catching up the whole backlog: {n} records in {took:.0f} s "
              f"({n / took:.0f} records/s)")
        if intake_rate:
            print(f"  ratio chainer capacity / intake rate of part 1: {n / took / intake_rate:.1f}"
                  " (target >= 1)")
        for label, args in (("re-hash bytes in the database", ()),
                            ("trust stored body_sha256", ("--trust-stored-hashes",))):
            took, rss, _o = _verify(inst, *args)
            out[label] = records / took
            print(f"  verify, {label}: {records / took:.0f} records/s ({took:.1f} s), "
                  f"peak RSS {rss:.0f} MB; ratio to {VERIFY_TARGET:,}/s: "
                  f"{records / took / VERIFY_TARGET:.2f}")
    with Instance(work) as inst:
        asyncio.run(_bulk(inst.dsn, signature_records, body, sig, kid, receipt, rsig))
        _chain_all_in_process(inst)
        took, rss, text = _verify(inst, "--signatures")
        out["signatures"] = signature_records / took
        print(f"  verify --signatures over {signature_records} records (2 signatures each): "
              f"{signature_records / took:.0f} records/s, peak RSS {rss:.0f} MB ({text[:60]}...)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--pool-size", type=int, default=32)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--big-records", type=int, default=1000,
                    help="records of each size in the memory test")
    ap.add_argument("--signature-records", type=int, default=20_000)
    ap.add_argument("--skip", default="", help="comma-separated: intake,memory,verify")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="px-bench-ev-"))
    write_private_key(work / "hub.jwk.json", "MY-PERKESO-bench-1")
    write_dev_registry(work / "partners.toml")
    from gateway.backoffice.auth import write_dev_tokens

    write_dev_tokens(work / "backoffice.toml")
    print(f"# evidence benchmark, PostgreSQL, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}")
    try:
        intake = None
        if "intake" not in skip:
            intake = bench_intake(work, a.seconds, a.workers, a.concurrency,
                                  a.pool_size)["intake"]
        if "memory" not in skip:
            bench_memory(work, a.big_records)
        if "verify" not in skip:
            bench_verify(work, a.records, a.signature_records, intake)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n# peak RSS of this driver: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
