"""The ``gateway`` command. Bad input ends with one line on stderr and exit status 2.

Every error an operator can cause (a settings value, a registry, rails, back-office or key
file, a port, an unreachable or missing database) ends the command with one line naming the
file, entry and field; ``main`` is the one place that turns errors into that line. ``serve``
and ``dispatch`` load everything the hub loads and reach the database before they say they
are running.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from gateway.config import Settings
from gateway.errors import ConfigError, GatewayError
from gateway.runtime.bootstrap import prepare_instance

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="PERKESO cross-border benefit portability gateway (PX/1 hub).")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
audit_app = typer.Typer(no_args_is_help=True, help="The evidence log's hash chain.")
keys_app = typer.Typer(no_args_is_help=True, help="Signing keys and tokens.")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
simulate_app = typer.Typer(no_args_is_help=True, help="Simulators of partners and rails.")
schemas_app = typer.Typer(no_args_is_help=True, help="The JSON Schemas under schemas/.")
app.add_typer(simulate_app, name="simulate")
app.add_typer(schemas_app, name="schemas")

if TYPE_CHECKING:
    from gateway.reconciliation.schedule import RailSchedule, RetryPlan

log = logging.getLogger(__name__)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "GATEWAY_" + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"{name}: {first['msg']}") from None


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


async def _ensure_schema(settings: Settings) -> None:
    from gateway.storage.migrate import current_revision, head_revision, upgrade

    if settings.is_production:
        current, head = await current_revision(settings.database_url), head_revision(
            settings.database_url)
        if current != head:
            raise ConfigError(f"database schema is at {current}, not {head}: "
                              "run `gateway db upgrade` first")
        return
    await upgrade(settings.database_url)
    log.info("database schema is at head (%s)", _redact(settings.database_url))


def _redact(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest}"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (GATEWAY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (GATEWAY_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Run the hub. With no settings, creates a development instance on SQLite."""
    import os

    import uvicorn

    settings = _settings()
    _logging(settings.log_level)
    bind_host = host or settings.host
    bind_port = settings.port if port is None else port
    if not 1 <= bind_port <= 65535:
        raise ConfigError(f"--port {bind_port} is not a TCP port (1-65535)")
    _check_bind(bind_host, bind_port)
    prepare_instance(settings)
    asyncio.run(_preflight(settings, ensure_schema=True))
    n = workers or settings.workers
    log.info("PX gateway listening on http://%s:%s (%s worker%s, database %s)",
             bind_host, bind_port, n, "s" if n > 1 else "",
             _redact(settings.database_url))
    # Workers re-read settings from the environment; pin what the command line chose.
    os.environ.setdefault("GATEWAY_ENV", settings.env)
    uvicorn.run("gateway.app:app_from_env", factory=True, host=host or settings.host,
                port=bind_port, workers=n, log_level=settings.log_level.lower(),
                access_log=False)


@app.command()
def dispatch(
    processes: Annotated[int, typer.Option(help="Dispatcher processes to run.")] = 1,
    batch: Annotated[int, typer.Option(help="Tasks claimed per round.")] = 200,
) -> None:
    """Run outbox dispatchers (and the evidence chainer) until interrupted.

    On PostgreSQL any number of dispatchers may run, in any number of hosts. On SQLite run
    one (or let `gateway serve` run it).
    """
    settings = _settings()
    _logging(settings.log_level)
    if processes < 1:
        raise ConfigError("--processes must be at least 1")
    if processes > 1 and settings.async_url.startswith("sqlite"):
        raise ConfigError("SQLite takes one dispatcher; use PostgreSQL for several")
    asyncio.run(_preflight(settings))
    if processes == 1:
        _dispatch_forever(settings, batch)
        return
    import multiprocessing

    procs = [multiprocessing.Process(target=_dispatch_forever, args=(settings, batch))
             for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()


async def _preflight(settings: Settings, *, ensure_schema: bool = False) -> None:
    """Load what the hub loads at start (registry, keys, rails, back-office tokens) and reach
    its database, so a mistake is one line here, not a traceback in a worker."""
    from gateway.composition import build_hub

    hub = build_hub(settings)  # the files first: no database I/O yet
    try:
        if ensure_schema:
            await _ensure_schema(settings)
        await hub.ping_database()
    finally:
        await hub.close()


def _check_bind(host: str, port: int) -> None:
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _dispatch_forever(settings: Settings, batch: int) -> None:
    import signal

    from gateway.composition import build_hub
    from gateway.runtime.jobs import run_housekeeping

    async def run() -> None:
        hub = build_hub(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        chain = asyncio.create_task(run_housekeeping(hub))
        log.info("dispatcher started (batch %d)", batch)
        try:
            await hub.dispatcher(batch=batch).run(stop)
        finally:
            chain.cancel()
            await hub.close()

    asyncio.run(run())


@app.command()
def scheduler(
    every: Annotated[float, typer.Option(help="Seconds between ticks (1-3600).")] = 60.0,
    lookback_days: Annotated[int, typer.Option(help="Missed dates are caught up this many "
                                               "days back (2-62).")] = 7,
    retry_first: Annotated[float, typer.Option(help="Minutes before asking again for a late "
                                               "statement; the wait doubles each time.")]
    = 5.0,
    retry_max: Annotated[float, typer.Option(help="The longest wait, in minutes.")] = 60.0,
    give_up_hours: Annotated[float, typer.Option(help="Hours after the cut-off when a "
                                                 "missing statement is recorded incomplete.")]
    = 24.0,
) -> None:
    """Reconcile each rail's statement after its cut-off (Asia/Kuala_Lumpur) until SIGTERM.

    Any number may run, on any hosts: each (rail, date) is run once (docs/scheduling.md).
    """
    from datetime import timedelta

    from gateway.payments import rails_file_of
    from gateway.reconciliation.schedule import RetryPlan, load_schedules

    settings = _settings()
    _logging(settings.log_level)
    if not 1 <= every <= 3600:
        raise ConfigError(f"--every {every:g} must be between 1 and 3600 seconds")
    if not 2 <= lookback_days <= 62:
        raise ConfigError(f"--lookback-days {lookback_days} must be between 2 and 62")
    try:
        retry = RetryPlan(initial=timedelta(minutes=retry_first),
                          ceiling=timedelta(minutes=retry_max),
                          give_up_after=timedelta(hours=give_up_hours))
    except ValueError as exc:
        raise ConfigError(f"--retry-first/--retry-max/--give-up-hours: {exc}") from None
    if retry.give_up_after >= timedelta(days=lookback_days):
        raise ConfigError(f"--give-up-hours {give_up_hours:g} must end within "
                          f"--lookback-days {lookback_days}")
    schedules = load_schedules(rails_file_of(settings))
    if not schedules:
        raise ConfigError("no rails to reconcile: GATEWAY_RAILS_FILE names none")
    asyncio.run(_preflight(settings))
    _schedule_forever(settings, schedules, retry, every, lookback_days)


def _schedule_forever(settings: Settings, schedules: dict[str, RailSchedule], retry: RetryPlan,
                      every: float, lookback_days: int) -> None:
    import signal

    from gateway.composition import build_hub, reconciler_for
    from gateway.reconciliation.scheduler import Scheduler
    from gateway.storage.job_locks import job_locks_for

    async def run() -> None:
        hub = build_hub(settings)
        try:
            try:
                locks = job_locks_for(hub.engine, hub.uow, "reconcile")
            except ValueError as exc:
                raise ConfigError(f"GATEWAY_DATABASE_URL: {exc}") from None
            job = Scheduler(reconciler_for(hub), schedules, locks, retry=retry,
                            lookback_days=lookback_days, clock=hub.clock)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            log.info("reconciliation scheduler started (rails %s, every %gs)",
                     ", ".join(sorted(schedules)), every)
            await job.run_forever(stop, every)
            log.info("reconciliation scheduler stopped")
        finally:
            await hub.close()

    asyncio.run(run())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema to the newest revision."""
    from gateway.storage.migrate import head_revision, upgrade

    settings = _settings()
    asyncio.run(upgrade(settings.database_url))
    typer.echo(f"database at revision {head_revision(settings.database_url)}")


@audit_app.command("verify")
def audit_verify(
    settle_minutes: Annotated[int, typer.Option(help="Unchained records older than this "
                                                "are reported.")] = 5,
    checkpoint: Annotated[Path | None, typer.Option(
        help="A checkpoint export file (gateway audit checkpoint --out): prove that nothing "
        "before its checkpoints changed.")] = None,
    signatures: Annotated[bool, typer.Option(
        help="Also check every record's partner and receipt signatures.")] = False,
    hub_jwks: Annotated[Path | None, typer.Option(
        help="The hub's published JWKS (default: the public part of the signing key file).")]
    = None,
    trust_stored_hashes: Annotated[bool, typer.Option(
        help="Take stored body_sha256 columns as the wire's hash (faster, proves less).")]
    = False,
) -> None:
    """Check the evidence chain and every chained record; name the first broken record."""
    from datetime import timedelta

    from gateway.evidence.chain import verify_chain
    from gateway.evidence.checkpoints import load_checkpoints, verification_keys
    from gateway.storage.engine import create_engine
    from gateway.storage.uow import factory_for

    settings = _settings()
    hub_keys = keys = None
    if checkpoint is not None or signatures:
        hub_keys, keys = verification_keys(settings.signing_key_file, hub_jwks,
                                           settings.partners_file if signatures or checkpoint
                                           else None)
    trusted = [c.point() for c in load_checkpoints(checkpoint, hub_keys)] \
        if checkpoint is not None and hub_keys is not None else []

    async def run() -> int:
        engine = create_engine(settings.database_url)
        try:
            report = await verify_chain(factory_for(engine),
                                        settle=timedelta(minutes=settle_minutes),
                                        trust_stored_hashes=trust_stored_hashes,
                                        keys=keys if signatures else None, trusted=trusted,
                                        probe_keys=keys)
        finally:
            await engine.dispose()
        if report.broken:
            typer.echo(f"BROKEN after {report.checked} good records: {report.broken}", err=True)
            return 1
        if report.unchained:
            typer.echo(f"{report.unchained} record(s) older than {settle_minutes} min are not "
                       "in the chain (is the chainer running?)", err=True)
            return 1
        assert report.head is not None
        extra = ""
        if trusted:
            extra += f", {report.checkpoints_matched} checkpoint(s) matched"
        if signatures:
            extra += f", {report.signatures_checked} signatures checked"
            if report.unverifiable:
                extra += f", {report.unverifiable} unverifiable signature(s) (key unknown; " \
                         f"first: {report.first_unverifiable})"
        typer.echo(f"ok: {report.checked} records{extra}, head seq {report.head.seq} "
                   f"{report.head.chain_sha256}")
        return 0

    raise typer.Exit(asyncio.run(run()))


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[Path | None, typer.Option(
        help="Write the latest checkpoints here (JSON), for storage off the database.")] = None,
    latest: Annotated[int, typer.Option(help="How many checkpoints the file holds.")] = 100,
) -> None:
    """Sign a checkpoint of the chain head now (the job does this on a schedule); export."""
    from gateway.evidence.checkpoints import (
        latest_checkpoints,
        make_checkpoint,
        write_checkpoint_file,
    )
    from gateway.protocol.envelope import HUB_PARTY
    from gateway.protocol.keys import load_signer
    from gateway.storage.engine import create_engine
    from gateway.storage.uow import factory_for

    settings = _settings()
    if latest < 1:
        raise ConfigError("--latest must be at least 1")
    signer = load_signer(settings.signing_key_file, HUB_PARTY)

    async def run() -> str:
        engine = create_engine(settings.database_url)
        try:
            factory = factory_for(engine)
            cp = await make_checkpoint(factory, signer)
            cps = await latest_checkpoints(factory, latest)
        finally:
            await engine.dispose()
        if out is not None:
            try:
                write_checkpoint_file(out, cps, signer.jwks())
            except OSError as exc:
                raise ConfigError(f"--out {out}: {exc.strerror or exc}") from None
        if cp is not None:
            return f"checkpoint seq {cp.seq} {cp.chain_sha256} signed {cp.signed_at}"
        if cps:
            return f"head already checkpointed: seq {cps[-1].seq} {cps[-1].chain_sha256}"
        return "the chain is empty: nothing to checkpoint"

    typer.echo(asyncio.run(run()))


@audit_app.command("chain")
def audit_chain() -> None:
    """Append every committed, unchained record to the chain now (the job does this too)."""
    from gateway.evidence.chain import chain_pending
    from gateway.storage.engine import create_engine
    from gateway.storage.uow import factory_for

    settings = _settings()

    async def run() -> int:
        engine = create_engine(settings.database_url)
        total = 0
        try:
            while n := await chain_pending(factory_for(engine), full_sweep=True):
                total += n
        finally:
            await engine.dispose()
        return total

    typer.echo(f"chained {asyncio.run(run())} record(s)")


@audit_app.command("head")
def audit_head() -> None:
    """Print the chain's head (sequence and hash), to anchor it outside the database."""
    from gateway.evidence.chain import chain_head
    from gateway.storage.engine import create_engine
    from gateway.storage.uow import UnitOfWork

    settings = _settings()

    async def run() -> str:
        engine = create_engine(settings.database_url)
        try:
            async with UnitOfWork(engine, read_only=True) as uow:
                head = await chain_head(uow.conn)
        finally:
            await engine.dispose()
        return f"{head.seq} {head.chain_sha256}"

    typer.echo(asyncio.run(run()))


@keys_app.command("generate")
def keys_generate(
    kid: Annotated[str, typer.Option(help="Key id, unique across all parties.")],
    out: Annotated[Path, typer.Option(help="Private JWK file to create (mode 600).")],
    alg: Annotated[str, typer.Option(help="EdDSA or ES256.")] = "EdDSA",
    public_out: Annotated[Path | None, typer.Option(help="Also write the public JWKS here.")]
    = None,
) -> None:
    """Generate a signing key (the hub's, or a partner's for testing)."""
    from gateway.protocol.keys import write_private_key, write_public_jwks

    if out.exists():
        raise ConfigError(f"{out} already exists; refusing to overwrite a key")
    jwk = write_private_key(out, kid, alg)
    if public_out:
        write_public_jwks(public_out, [jwk])
    typer.echo(f"wrote {out}" + (f" and {public_out}" if public_out else ""))


@keys_app.command("sign")
def keys_sign(
    key: Annotated[Path, typer.Option(help="Private JWK (or JWKS) of the signer.")],
    body: Annotated[Path, typer.Argument(help="File whose exact bytes to sign.")],
) -> None:
    """Print the detached JWS (X-JWS-Signature value) of a file's exact bytes."""
    from gateway.protocol.keys import load_signer

    if not body.is_file():
        raise ConfigError(f"{body} is not a file")
    typer.echo(load_signer(key, "signer").sign(body.read_bytes()))


@keys_app.command("token")
def keys_token(
    key: Annotated[Path, typer.Option(help="The partner's private JWK.")],
    partner: Annotated[str, typer.Option(help="The partner id (iss and sub).")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds (at most 300).")] = 120,
) -> None:
    """Print a bearer JWT for a partner's GET requests (testing and integration)."""
    from gateway.protocol.envelope import HUB_PARTY
    from gateway.protocol.keys import load_signer

    if not 1 <= ttl <= 300:
        raise ConfigError("--ttl must be between 1 and 300 seconds")
    typer.echo(load_signer(key, partner).token(HUB_PARTY, ttl=ttl))


@simulate_app.command("partner")
def simulate_partner(
    partner_id: Annotated[str, typer.Argument(help="Partner id, e.g. NP-FEB.")],
    port: Annotated[int, typer.Option(help="Port of the simulator's endpoint.")],
    hub: Annotated[str, typer.Option(help="The hub's base URL.")] = "http://127.0.0.1:8400",
    registry: Annotated[Path, typer.Option(help="Partner registry (its keys/ folder holds "
                                           "the partners' development keys).")]
    = Path("partners.toml"),
    poll_every: Annotated[float, typer.Option(help="Inbox polling period (pull).")] = 2.0,
) -> None:
    """Run a partner's simulator: its wire format, its key, push endpoint or inbox polling."""
    from gateway.sandbox.simulate import run_partner_simulator

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port")
    if not hub.startswith(("http://", "https://")):
        raise ConfigError(f"--hub {hub!r} must be an http(s) URL")
    _logging("INFO")
    run_partner_simulator(partner_id, port=port, hub_url=hub, registry_file=registry,
                          poll_every=poll_every)


@simulate_app.command("rail")
def simulate_rail(
    name: Annotated[str, typer.Argument(help="Rail name: merchantrade or iso20022.")],
    port: Annotated[int, typer.Option(help="Port of the simulator.")],
    hub: Annotated[str, typer.Option(help="The hub's base URL (for callbacks).")]
    = "http://127.0.0.1:8400",
    tick: Annotated[float, typer.Option(help="Seconds per payout lifecycle step.")] = 1.0,
) -> None:
    """Run a payout rail's simulator with the secrets of the rails file (GATEWAY_RAILS_FILE)."""
    from gateway.payments import rails_file_of
    from gateway.sandbox.rails import serve_rail_simulator

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port")
    _logging("INFO")
    serve_rail_simulator(name, port=port, rails_file=rails_file_of(_settings()), hub_url=hub,
                         tick_seconds=tick)


@app.command()
def demo(
    keep: Annotated[Path | None, typer.Option(help="Keep the demo's files in this folder.")]
    = None,
) -> None:
    """Play the scripted scenario on loopback simulators; exit 0 only if every invariant held."""
    from gateway.sandbox.demo import run_demo

    raise typer.Exit(run_demo(keep))


@schemas_app.command("write")
def schemas_write(
    out: Annotated[Path | None, typer.Option(help="Folder (default: the project's schemas/).")]
    = None,
) -> None:
    """Regenerate the JSON Schema of every message type from the models."""
    from gateway.protocol.jsonschema import SCHEMA_DIR, write_schemas

    paths = write_schemas(out or SCHEMA_DIR)
    typer.echo(f"wrote {len(paths)} schemas to {out or SCHEMA_DIR}")


@app.command("jwks")
def print_jwks() -> None:
    """Print the hub's public JWKS."""
    from gateway.protocol.envelope import HUB_PARTY
    from gateway.protocol.keys import load_signer

    settings = _settings()
    typer.echo(json.dumps(load_signer(settings.signing_key_file, HUB_PARTY).jwks(), indent=1))


def _database_failure(exc: BaseException) -> str:
    """One line for a database that cannot be used, naming it (without its password)."""
    from sqlalchemy.exc import DBAPIError

    try:
        where = f"database {_redact(Settings().database_url)}"
    except ValidationError:
        where = "database"
    if isinstance(exc, DBAPIError):
        # The driver's own first line ('database "x" does not exist'), never the statement.
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        return f"{where}: {reason or type(exc.orig).__name__}"
    if isinstance(exc, OSError):
        return f"{where} cannot be reached: {exc.strerror or exc}"
    return f"{where}: {type(exc).__name__}"


def main() -> None:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        app(standalone_mode=True)
    except GatewayError as exc:
        typer.echo(f"gateway: {exc}", err=True)
        sys.exit(2)
    except (OSError, SQLAlchemyError) as exc:
        # Files are read through read_toml/load_* (ConfigError); what is left is the database.
        typer.echo(f"gateway: {_database_failure(exc)}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
