"""The ``gateway`` command. Bad input ends with one line on stderr and exit status 2.

Every error an operator can cause (a settings value, a registry, rails, back-office or key
file, a port, an unreachable or missing database) ends the command with one line naming the
file, entry and field; ``main`` is the one place that turns errors into that line. ``serve``
and ``dispatch`` load everything the hub loads and reach the database before they say they
are running.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from pydantic import ValidationError

from gateway.config import Settings
from gateway.errors import ConfigError, GatewayError
from gateway.runtime.bootstrap import prepare_instance

if TYPE_CHECKING:
    from gateway.observability.listener import ProbeListener
    from gateway.sandbox.companions import Simulators

# Plain help (no rich boxes): it reads the same in a terminal, a pipe and a log, and flags show
# no value placeholder.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="PERKESO cross-border benefit portability gateway (PX/1 hub).")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
audit_app = typer.Typer(no_args_is_help=True, help="The evidence log's hash chain.")
keys_app = typer.Typer(no_args_is_help=True, help="Signing keys and tokens.")
admin_app = typer.Typer(no_args_is_help=True, help="The ops admin API (/admin/v1).")
app.add_typer(admin_app, name="admin")
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


LogFormatOption = Annotated[str | None, typer.Option(
    "--log-format", help="json or text (GATEWAY_LOG_FORMAT; default: json in production, "
    "text in development).", show_default=False)]


def _logging(level: str, fmt: str = "text") -> None:
    from gateway.observability.logs import configure_logging

    if fmt not in ("json", "text"):
        raise ConfigError(f"--log-format {fmt!r} is not json or text")
    configure_logging(level, "json" if fmt == "json" else "text")


def _log_format(settings: Settings, option: str | None) -> str:
    """The chosen format, pinned in the environment for worker processes."""
    import os

    fmt = option or settings.effective_log_format
    _logging(settings.log_level, fmt)
    os.environ["GATEWAY_LOG_FORMAT"] = fmt
    return fmt


def _metrics_dir(settings: Settings) -> tuple[Path, bool]:
    """Prepare the multiprocess metrics directory (before prometheus-client is imported);
    return it and whether it is a temporary one this command must remove."""
    import tempfile

    from gateway.observability.exposition import prepare_multiprocess_dir

    if settings.metrics_dir is not None:
        try:
            return prepare_multiprocess_dir(settings.metrics_dir), False
        except OSError as exc:
            raise ConfigError(f"GATEWAY_METRICS_DIR {settings.metrics_dir}: "
                              f"{exc.strerror or exc}") from None
    return prepare_multiprocess_dir(Path(tempfile.mkdtemp(prefix="px-metrics-"))), True


def _check_tracing(settings: Settings, command: str) -> None:
    """Refuse a tracing configuration the processes could not start with (a bad endpoint,
    the packages missing) here, in one line, before any worker or child starts."""
    from gateway.observability.tracing import require_packages, tracing_config

    config = tracing_config(settings)
    if config.enabled:
        require_packages()
        log.info("%s: OpenTelemetry traces to %s as %s", command, config.endpoint,
                 config.service_name)


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
    host: Annotated[str | None, typer.Option(
        help="Bind address (GATEWAY_HOST, default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(
        help="Port (GATEWAY_PORT, default 8400).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes (GATEWAY_WORKERS, default 1).")] = None,
    with_simulators: Annotated[bool, typer.Option(
        "--with-simulators", help="Also run the simulator of every partner endpoint and rail "
                                  "on loopback (`gateway simulate partner|rail`); stopped on "
                                  "exit.")]
    = False,
    log_format: LogFormatOption = None,
) -> None:
    """Run the hub. With no settings, creates a development instance on SQLite."""
    import shutil

    settings = _settings()
    _log_format(settings, log_format)
    metrics_dir, temporary = _metrics_dir(settings)
    try:
        _serve(settings, host, port, workers, with_simulators)
    finally:
        if temporary:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(settings: Settings, host: str | None, port: int | None,
           workers: int | None, with_simulators: bool) -> None:
    import os

    import uvicorn

    bind_host = host or settings.host
    bind_port = settings.port if port is None else port
    if not 1 <= bind_port <= 65535:
        raise ConfigError(f"--port {bind_port} is not a TCP port (1-65535)")
    _check_bind(bind_host, bind_port)
    _check_tracing(settings, "serve")
    prepare_instance(settings)
    from gateway.admin.auth import build_verifier

    build_verifier(settings)  # production: no admin API without the identity provider
    asyncio.run(_preflight(settings, ensure_schema=True))
    n = workers or settings.workers
    hub_url = f"http://{'127.0.0.1' if bind_host in ('0.0.0.0', '::') else bind_host}:{bind_port}"
    sims = _development_companions(settings, hub_url, with_simulators)
    if with_simulators:
        import signal

        # uvicorn re-raises a SIGTERM it handled once it has shut down; as an exception here
        # (not the default handler's sudden exit) it lets `finally` stop the simulators.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    sims.start()
    log.info("PX gateway listening on http://%s:%s (%s worker%s, database %s); API docs at "
             "%s/docs", bind_host, bind_port, n, "s" if n > 1 else "",
             _redact(settings.database_url), hub_url)
    # Workers re-read settings from the environment; pin what the command line chose.
    os.environ.setdefault("GATEWAY_ENV", settings.env)
    try:
        # log_config=None: records go through the gateway's handler (gateway.observability.logs);
        # the access log is the gateway's own (route templates, request ids).
        # proxy_headers=False: uvicorn would otherwise take X-Forwarded-For from any loopback
        # peer as the client; the hub believes it only from GATEWAY_ADMIN_TRUSTED_PROXIES.
        uvicorn.run("gateway.app:app_from_env", factory=True, host=host or settings.host,
                    port=bind_port, workers=n, log_level=settings.log_level.lower(),
                    access_log=False, log_config=None, proxy_headers=False,
                    timeout_graceful_shutdown=int(settings.graceful_timeout_seconds))
    finally:
        sims.stop()


def _development_companions(settings: Settings, hub_url: str, start: bool) -> Simulators:
    """Log what a development hub calls and how to simulate it; the simulators to run."""
    from gateway.sandbox.companions import Simulators, companions, describe

    if settings.is_production:
        if start:
            raise ConfigError("--with-simulators is for development instances, not "
                              "GATEWAY_ENV=production")
        return Simulators([])
    found = companions(settings, hub_url)
    for line in describe(found, starting=start):
        log.info("%s", line)
    return Simulators(found if start else [])


@app.command()
def dispatch(
    processes: Annotated[int, typer.Option(help="Dispatcher processes to run.")] = 1,
    batch: Annotated[int, typer.Option(help="Tasks claimed per round.")] = 200,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve /livez, /readyz and these dispatchers' /metrics (Prometheus, all "
        "processes summed) on this port (GATEWAY_DISPATCH_METRICS_PORT; default: none "
        "served).", show_default=False)] = None,
    metrics_host: Annotated[str | None, typer.Option(
        help="Bind address of --metrics-port (GATEWAY_DISPATCH_METRICS_HOST, default "
        "127.0.0.1).", show_default=False)] = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run outbox dispatchers and the evidence chainer.

    On PostgreSQL any number of dispatchers may run, in any number of hosts. On SQLite run
    one (or let `gateway serve` run it). SIGTERM: each finishes its batch at hand within
    GATEWAY_DISPATCH_STOP_GRACE_SECONDS and releases what is left, then exits.
    """
    import shutil

    settings = _settings()
    _log_format(settings, log_format)
    if processes < 1:
        raise ConfigError("--processes must be at least 1")
    if processes > 1 and settings.async_url.startswith("sqlite"):
        raise ConfigError("SQLite takes one dispatcher; use PostgreSQL for several")
    probes = _probe_address("dispatch", metrics_host, metrics_port,
                            settings.dispatch_metrics_host, settings.dispatch_metrics_port)
    _check_tracing(settings, "dispatch")
    metrics_dir, temporary = _metrics_dir(settings)
    listening: list[ProbeListener] = []
    try:
        asyncio.run(_preflight(settings))
        _run_dispatchers(settings, batch, processes,
                         lambda: listening.extend(_listen("dispatcher", probes, settings)))
    finally:
        for listener in listening:
            listener.close()
        if temporary:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _probe_address(command: str, host: str | None, port: int | None, env_host: str,
                   env_port: int | None) -> tuple[str, int] | None:
    """Where ``command`` serves its probes: the options, else its GATEWAY_*_METRICS_* settings.

    Returns:
        The bind address and port, checked free; None when no port is given.

    Raises:
        ConfigError: the port is no TCP port, the address is empty or cannot be listened on.
    """
    env = f"GATEWAY_{command.upper()}_METRICS"
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"--metrics-port {port} is not a TCP port (1-65535)")
    if host is not None and not host.strip():
        raise ConfigError("--metrics-host is empty")
    bind_port = env_port if port is None else port
    if bind_port is None:
        return None
    bind_host = env_host if host is None else host
    if not bind_host.strip():
        raise ConfigError(f"{env}_HOST is empty")
    _check_bind(bind_host, bind_port)
    return bind_host, bind_port


def _listen(what: str, address: tuple[str, int] | None,
            settings: Settings) -> list[ProbeListener]:
    """Start the probe listener at ``address`` (none without one)."""
    if address is None:
        return []
    from gateway.observability.listener import start_probe_listener

    host, port = address
    listener = start_probe_listener(host, port, settings.database_url)
    log.info("%s probes and metrics on http://%s:%d (/livez, /readyz, /metrics)", what, host,
             port)
    return [listener]


def _run_dispatchers(settings: Settings, batch: int, processes: int,
                     started: Callable[[], object]) -> None:
    """Run the dispatchers; call ``started`` once they run (the probe listener starts there:
    after the fork, so that no child inherits its threads)."""
    import multiprocessing
    import os
    import signal

    if processes == 1:
        started()
        _dispatch_forever(settings, batch)
        return
    procs = [multiprocessing.Process(target=_dispatch_forever, args=(settings, batch))
             for _ in range(processes)]
    for p in procs:
        p.start()

    def forward(sig: int, _frame: object) -> None:
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, sig)

    # Installed after the children started, so that none of them inherits it.
    signal.signal(signal.SIGTERM, forward)
    try:
        started()
        for p in procs:
            p.join()
    except BaseException as exc:
        # Ctrl-C, or a listener that could not start: stop the children rather than leave
        # them running (the interpreter's exit would wait for them).
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()
        if not isinstance(exc, KeyboardInterrupt):
            raise


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
    from gateway.observability.tracing import start_tracing, tracing_config
    from gateway.runtime.jobs import run_housekeeping

    # Here, in the process that dispatches: a child of `--processes N` starts its own.
    tracing = start_tracing(tracing_config(settings), "dispatch")

    async def run() -> None:
        hub = build_hub(settings, tracing=tracing)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        chain = asyncio.create_task(run_housekeeping(hub, stop))
        log.info("dispatcher started (batch %d)", batch)
        try:
            await hub.dispatcher(batch=batch, lease=timedelta(
                seconds=settings.dispatch_lease_seconds)).run(stop)
        finally:
            stop.set()  # housekeeping returns after its current tick
            await chain
            await hub.close()

    try:
        asyncio.run(run())
    finally:
        tracing.shutdown()


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
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve /livez, /readyz and /metrics on this port (GATEWAY_SCHEDULER_METRICS_PORT; "
        "default: none served).", show_default=False)] = None,
    metrics_host: Annotated[str | None, typer.Option(
        help="Bind address of --metrics-port (GATEWAY_SCHEDULER_METRICS_HOST, default "
        "127.0.0.1).", show_default=False)] = None,
) -> None:
    """Reconcile each rail's statement after its cut-off, until SIGTERM.

    Cut-offs are in Asia/Kuala_Lumpur time.

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
    probes = _probe_address("scheduler", metrics_host, metrics_port,
                            settings.scheduler_metrics_host, settings.scheduler_metrics_port)
    _check_tracing(settings, "scheduler")
    asyncio.run(_preflight(settings))
    listening = _listen("scheduler", probes, settings)
    try:
        _schedule_forever(settings, schedules, retry, every, lookback_days)
    finally:
        for listener in listening:
            listener.close()


def _schedule_forever(settings: Settings, schedules: dict[str, RailSchedule], retry: RetryPlan,
                      every: float, lookback_days: int) -> None:
    import signal

    from gateway.composition import build_hub, reconciler_for
    from gateway.observability.tracing import start_tracing, tracing_config
    from gateway.reconciliation.scheduler import Scheduler
    from gateway.storage.job_locks import job_locks_for

    tracing = start_tracing(tracing_config(settings), "scheduler")

    async def run() -> None:
        hub = build_hub(settings, tracing=tracing)
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

    try:
        asyncio.run(run())
    finally:
        tracing.shutdown()


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
        "before its checkpoints changed (default: none).")] = None,
    signatures: Annotated[bool, typer.Option(
        help="Also check every record's partner and receipt signatures.")] = False,
    hub_jwks: Annotated[Path | None, typer.Option(
        help="The hub's published JWKS (default: the public part of the signing key file).")]
    = None,
    trust_stored_hashes: Annotated[bool, typer.Option(
        help="Take stored body_sha256 columns as the wire's hash (faster, proves less).")]
    = False,
) -> None:
    """Check the evidence chain; name the first broken record.

    Every chained record's digest and every link are recomputed.
    """
    from datetime import timedelta

    from gateway.evidence.chain import verify_chain
    from gateway.evidence.checkpoints import load_checkpoints, verification_keys
    from gateway.messages.partner_keys import stored_ring
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
            if keys is not None:
                # Keys rotated through the admin API, retired ones too: they verify what they
                # signed while they were in use.
                async with factory_for(engine)(read_only=True) as uow:
                    await stored_ring(uow.conn, keys)
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
        if report.tables:
            typer.echo("records per table: " + ", ".join(
                f"{name} {n}" for name, n in sorted(report.tables.items())))
        if report.payments_compared or report.payments_uncompared:
            typer.echo(f"payments as their newest event recorded them: "
                       f"{report.payments_compared}" + (
                           f"; {report.payments_uncompared} not compared (newest event from "
                           "before migration 0016)" if report.payments_uncompared else ""))
        if report.schedules_compared or report.schedules_uncompared:
            typer.echo(f"pension schedules as their newest event recorded them: "
                       f"{report.schedules_compared}" + (
                           f"; {report.schedules_uncompared} not compared (newest event from "
                           "before migration 0017)" if report.schedules_uncompared else ""))
        return 0

    raise typer.Exit(asyncio.run(run()))


@admin_app.command("token")
def admin_token(
    user: Annotated[str, typer.Option(help="Who the token is for (its sub).")],
    role: Annotated[list[str], typer.Option(help="viewer, operator, approver, auditor or "
                                                 "admin; repeat for several.")],
    minutes: Annotated[int, typer.Option(help="Lifetime in minutes.")] = 15,
) -> None:
    """Mint a short-lived admin token (development instance).

    Signed by the development instance's local issuer."""
    from gateway.admin.auth import mint_token

    typer.echo(mint_token(_settings(), user=user, roles=role, minutes=minutes))


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[Path | None, typer.Option(
        help="Write the latest checkpoints here (JSON), for storage off the database "
        "(default: no file).")] = None,
    latest: Annotated[int, typer.Option(help="How many checkpoints the file holds.")] = 100,
) -> None:
    """Sign a checkpoint of the chain head now; export the latest.

    The dispatchers' housekeeping also signs one on a schedule."""
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
                write_checkpoint_file(out, cps, signer.verification_jwks())
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
    """Chain every committed, unchained record now.

    The chainer job does this too, shortly after each commit.
    """
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
    """Print the chain's head, to anchor it outside the database.

    The head is its sequence number and hash.
    """
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


_VERDICT_EXIT = {"balanced": 0, "discrepancies": 1, "incomplete": 3}


@app.command()
def reconcile(
    rail: Annotated[str, typer.Option(help="The rail's name in the rails file.")],
    day: Annotated[str, typer.Option("--date", help="Business date, YYYY-MM-DD.")],
    statement_path: Annotated[str | None, typer.Option(
        "--statement", help="The statement file (default: fetch it from the rail).")] = None,
    report_path: Annotated[str | None, typer.Option(
        "--report-dir", help="Write summary.json and items.csv here (default: no files).")
    ] = None,
) -> None:
    """Reconcile a rail's statement with the ledger.

    Exit 0 balanced, 1 discrepancies, 3 incomplete, 2 bad input (docs/reconciliation.md)."""
    from datetime import date

    from gateway.composition import build_hub
    from gateway.errors import InvalidMessageError
    from gateway.reconciliation.report import render_table

    try:
        # fromisoformat also reads 20261201 and 2026-W49-2: only the one form is a date here.
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", day):
            raise ValueError(day)
        business_date = date.fromisoformat(day)
    except ValueError:
        raise InvalidMessageError("schema_violation", f"--date: {day!r} is not a date "
                                  "(YYYY-MM-DD)") from None
    # Read as text, not as Path: Path("") is the working directory.
    for option, given in (("--statement", statement_path), ("--report-dir", report_path)):
        if given == "":
            raise InvalidMessageError("schema_violation", f"{option}: an empty path is no "
                                      f"{'file' if option == '--statement' else 'folder'}")
    statement = Path(statement_path) if statement_path is not None else None
    report_dir = Path(report_path) if report_path is not None else None
    if statement is not None and not statement.is_file():
        raise InvalidMessageError("schema_violation", f"--statement: {statement} is not a "
                                  "readable file")
    settings = _settings()

    async def run() -> dict[str, object]:
        hub = build_hub(settings)
        try:
            if rail not in hub.payments.rails:
                raise InvalidMessageError("schema_violation", f"--rail: {rail!r} is not in the "
                                          "rails file (one of "
                                          f"{', '.join(sorted(hub.payments.rails)) or 'none'})")
            if report_dir is not None:
                _writable_folder(report_dir)
            await _ensure_schema(settings)
            with _progress() as tick:
                result = await hub.reconciliation.run(rail, business_date, statement,
                                                      report_dir, progress=tick)
            return dict(result.summary)
        finally:
            await hub.close()

    summary = asyncio.run(run())
    typer.echo(render_table(summary), nl=False)
    raise typer.Exit(_VERDICT_EXIT[str(summary["verdict"])])


def _writable_folder(folder: Path) -> None:
    """Make the report folder and write a byte to a file in it (removed) before the run: a
    folder that cannot take the report is bad input, found before any work is done.

    Raises:
        InvalidMessageError: schema_violation, naming the option and why.
    """
    import tempfile

    from gateway.errors import InvalidMessageError

    def refused(why: str) -> InvalidMessageError:
        return InvalidMessageError("schema_violation", f"--report-dir: {folder} is not a "
                                   f"folder the report can be written to ({why})")

    try:
        if folder.exists() and not folder.is_dir():
            raise refused("it is a file")
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("summary.json", "items.csv"):
            # Replaced once the run is committed: found now, not after.
            if (folder / name).exists() and not (folder / name).is_file():
                raise refused(f"{name} in it is not a file")
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\n")
            probe.flush()
    except OSError as exc:
        raise refused(exc.strerror or str(exc)) from None


class _progress:  # noqa: N801 - used as a context manager like a function
    """A progress line on stderr for large statements, only when stderr is a terminal."""

    def __enter__(self) -> Callable[[int], None] | None:
        if not sys.stderr.isatty():
            self._bar = None
            return None
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Progress(SpinnerColumn(), TextColumn("{task.completed:,} lines"),
                             TimeElapsedColumn(), transient=True)
        self._bar.start()
        task = self._bar.add_task("reconcile", total=None)
        bar = self._bar
        return lambda n: bar.update(task, completed=n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@keys_app.command("generate")
def keys_generate(
    kid: Annotated[str, typer.Option(help="Key id, unique across all parties.")],
    out: Annotated[Path, typer.Option(help="Private JWK file to create (mode 600).")],
    alg: Annotated[str, typer.Option(help="EdDSA or ES256.")] = "EdDSA",
    public_out: Annotated[Path | None, typer.Option(
        help="Also write the public JWKS here (default: not written).")] = None,
) -> None:
    """Generate a signing key (the hub's, or a partner's for testing)."""
    from gateway.protocol.keys import write_private_key, write_public_jwks

    if out.exists():
        raise ConfigError(f"{out} already exists; refusing to overwrite a key")
    jwk = write_private_key(out, kid, alg)
    if public_out:
        write_public_jwks(public_out, [jwk])
    typer.echo(f"wrote {out}" + (f" and {public_out}" if public_out else ""))


@keys_app.command("rotate")
def keys_rotate(
    kid: Annotated[str, typer.Option(help="The new key's id, never used before.")],
    alg: Annotated[str, typer.Option(help="EdDSA or ES256.")] = "EdDSA",
    signs_in_minutes: Annotated[int | None, typer.Option(
        help="Minutes from now until it signs (default and minimum: "
             "GATEWAY_HUB_KEY_LEAD_MINUTES).")] = None,
) -> None:
    """Add a hub signing key: published now, signing after the lead.

    The key goes into GATEWAY_SIGNING_KEY_FILE. Restart every gateway process (rolling) well
    within the lead, so that all of them publish the key before it signs.
    """
    import time
    from datetime import UTC, datetime

    from gateway.protocol.keys import add_hub_key

    settings = _settings()
    lead = settings.hub_key_lead_minutes if signs_in_minutes is None else signs_in_minutes
    if lead < settings.hub_key_lead_minutes:
        raise ConfigError(f"--signs-in-minutes {lead} is shorter than "
                          f"GATEWAY_HUB_KEY_LEAD_MINUTES ({settings.hub_key_lead_minutes}): "
                          "partners' cached JWKS might not list the key when it signs")
    nbf = int(time.time()) + lead * 60
    add_hub_key(settings.signing_key_file, kid, nbf, alg)
    typer.echo(f"added {kid} to {settings.signing_key_file}: published after a restart, "
               f"signs from {datetime.fromtimestamp(nbf, UTC).isoformat()}")


@keys_app.command("retire")
def keys_retire(
    kid: Annotated[str, typer.Option(help="The key to retire.")],
) -> None:
    """Retire a hub signing key: no longer published nor signing.

    It stays in GATEWAY_SIGNING_KEY_FILE, so `gateway audit verify` checks what it signed.
    Restart every gateway process for it to take effect."""
    import time

    from gateway.protocol.keys import retire_hub_key

    settings = _settings()
    retire_hub_key(settings.signing_key_file, kid, time.time())
    typer.echo(f"retired {kid} in {settings.signing_key_file}")


@keys_app.command("sign")
def keys_sign(
    body: Annotated[Path, typer.Argument(metavar="FILE", help="File whose exact bytes to sign.")],
    key: Annotated[Path | None, typer.Option(
        help="Private JWK (or JWKS) of the signer (default: none; give it or --partner).")]
    = None,
    partner: Annotated[str | None, typer.Option(
        help="Sign with this partner's development key (keys/ID.private.jwk.json beside "
             "the registry, written by `gateway serve`) instead of --key (default: none).")]
    = None,
) -> None:
    """Print the X-JWS-Signature of a file's exact bytes.

    A detached JWS, signed with --key or a development partner's key (--partner).
    """
    from gateway.protocol.keys import load_signer

    if (key is None) == (partner is None):
        raise ConfigError("give exactly one of --key FILE or --partner ID")
    key = key or _dev_key(str(partner))
    if not body.is_file():
        raise ConfigError(f"{body} is not a file")
    typer.echo(load_signer(key, "signer").sign(body.read_bytes()))


@keys_app.command("token")
def keys_token(
    partner: Annotated[str, typer.Option(help="The partner id (iss and sub).")],
    key: Annotated[Path | None, typer.Option(
        help="The partner's private JWK (default: its development key, "
             "keys/ID.private.jwk.json beside the registry).")] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds (at most 300).")] = 120,
) -> None:
    """Print a partner's bearer JWT for its GET requests.

    For testing and integration: receipts, inbox and tracking.
    """
    from gateway.protocol.envelope import HUB_PARTY
    from gateway.protocol.keys import load_signer

    if not 1 <= ttl <= 300:
        raise ConfigError("--ttl must be between 1 and 300 seconds")
    typer.echo(load_signer(key or _dev_key(partner), partner).token(HUB_PARTY, ttl=ttl))


def _dev_key(partner: str) -> Path:
    """A development partner's private key (beside the registry), or a one-line refusal."""
    from gateway.runtime.bootstrap import dev_key_path

    key = dev_key_path(_settings().partners_file, partner)
    if not key.is_file():
        raise ConfigError(f"no development key for {partner} at {key} "
                          "(`gateway serve` writes one per registered partner); give --key")
    return key


@simulate_app.command("partner")
def simulate_partner(
    partner_id: Annotated[str, typer.Argument(metavar="ID", help="Partner id, e.g. NP-FEB.")],
    port: Annotated[int, typer.Option(help="Port of the simulator's endpoint.")],
    hub: Annotated[str, typer.Option(help="The hub's base URL.")] = "http://127.0.0.1:8400",
    registry: Annotated[Path, typer.Option(help="Partner registry (its keys/ folder holds "
                                           "the partners' development keys).")]
    = Path("partners.toml"),
    poll_every: Annotated[float, typer.Option(help="Inbox polling period (pull).")] = 2.0,
) -> None:
    """Run a partner's simulator.

    Its wire format, its key, its push endpoint or inbox polling.
    """
    from gateway.sandbox.simulate import run_partner_simulator

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port")
    if not hub.startswith(("http://", "https://")):
        raise ConfigError(f"--hub {hub!r} must be an http(s) URL")
    _check_bind("127.0.0.1", port)  # else uvicorn's own lines and exit status, not one line
    _logging("INFO", "text")
    run_partner_simulator(partner_id, port=port, hub_url=hub, registry_file=registry,
                          poll_every=poll_every)


@simulate_app.command("rail")
def simulate_rail(
    name: Annotated[str, typer.Argument(metavar="NAME",
                                        help="Rail name: merchantrade or iso20022.")],
    port: Annotated[int, typer.Option(help="Port of the simulator.")],
    hub: Annotated[str, typer.Option(help="The hub's base URL (for callbacks).")]
    = "http://127.0.0.1:8400",
    tick: Annotated[float, typer.Option(help="Seconds per payout lifecycle step.")] = 1.0,
) -> None:
    """Run a payout rail's simulator.

    It uses the secrets of the rails file (GATEWAY_RAILS_FILE).
    """
    from gateway.payments import rails_file_of
    from gateway.sandbox.rails import serve_rail_simulator

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port")
    _check_bind("127.0.0.1", port)  # else uvicorn's own lines and exit status, not one line
    _logging("INFO", "text")
    serve_rail_simulator(name, port=port, rails_file=rails_file_of(_settings()), hub_url=hub,
                         tick_seconds=tick)


@app.command()
def demo(
    keep: Annotated[Path | None, typer.Option(
        help="Keep the demo's files in this folder (default: a temporary folder, removed).")]
    = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", help="Also print every claim, message and payment, row by row.")]
    = False,
) -> None:
    """Play the scripted scenario with every simulator.

    Everything runs on loopback; exit 0 only if every invariant held.
    """
    from gateway.sandbox.demo import run_demo

    raise typer.Exit(run_demo(keep, verbose=verbose))


@app.command("example")
def example_message(
    message_type: Annotated[str, typer.Argument(
        metavar="TYPE",
        help="A PX/1 message type, e.g. claim.notify (a hub-only type such as claim.status "
             "gives the back-office request that sends it).")],
    partner: Annotated[str, typer.Option(
        help="The partner id: the sender (or the recipient of a hub message).")],
    out: Annotated[Path | None, typer.Option(help="Write to this file (default: stdout).")]
    = None,
    form: Annotated[str, typer.Option(
        "--format", help="wire: the partner's own wire format, the body to sign and POST; "
                         "canonical: the PX/1 JSON envelope that schemas/ describes.")]
    = "wire",
    ref: Annotated[str | None, typer.Option(
        help="The claim reference (default: a fresh one, e.g. ID-CLM-3F2A1C).")] = None,
) -> None:
    """Write a sample message to sign and send by hand.

    A valid message of the type, with a fresh id and sent_at now, in the partner's
    identities (national ids, names, scripts) and its wire format.
    """
    from gateway.composition import partner_adapters
    from gateway.protocol.partners import load_registry
    from gateway.sandbox.examples import example

    if form not in ("wire", "canonical"):
        raise ConfigError(f"--format {form!r} must be wire or canonical")
    settings = _settings()
    if not settings.partners_file.exists():
        raise ConfigError(f"no partner registry at {settings.partners_file}: run "
                          "`gateway serve` once (it creates a development instance) or set "
                          "GATEWAY_PARTNERS_FILE")
    registry = load_registry(settings.partners_file, frozenset(partner_adapters()))
    made = example(message_type, partner, registry, form=form,  # type: ignore[arg-type]
                   ref=ref)
    if out is None:
        sys.stdout.buffer.write(made.body)
        sys.stdout.buffer.flush()
        return
    out.write_bytes(made.body)
    hub = f"http://{settings.host}:{settings.port}"
    if made.backoffice:
        how = (f'curl -s {hub}{made.path} -H "Authorization: Bearer '
               f'$(cat backoffice.token)" -H \'Content-Type: {made.media_type}\' '
               f"--data-binary @{out}")
    else:
        how = (f"curl -s {hub}{made.path} -H 'Content-Type: {made.media_type}' "
               f'-H "X-JWS-Signature: $(gateway keys sign --partner {partner} {out})" '
               f"--data-binary @{out}")
    typer.echo(f"wrote {out} ({message_type}, {partner}); send it with:\n  {how}", err=True)


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


# A write to a file already open fails without the file's name; these only a file system
# raises. Not ENOENT or EPERM: a missing socket file and a refused certificate raise those too.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO})


def _os_failure(exc: OSError) -> str:
    """One line for an operating-system error no command turned into a GatewayError: the
    file and reason when it is the file system's (opening, making or renaming a file names
    it; a failed write says why), else the database that cannot be reached."""
    import ssl

    if isinstance(exc, ssl.SSLError):  # its errno is OpenSSL's, not the system's
        return _database_failure(exc)
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if exc.errno in _WRITE_ERRNOS:
        return f"{exc.strerror or exc} (writing a file)"
    return _database_failure(exc)


def main() -> None:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        app(standalone_mode=True)
    except GatewayError as exc:
        _fail(str(exc))
    except OSError as exc:
        # Files are read through read_toml/load_* (ConfigError) and reports written as
        # ReportWriteError; what is left is the database, or a file a command writes.
        _fail(_os_failure(exc))
    except SQLAlchemyError as exc:
        _fail(_database_failure(exc))


def _fail(reason: str) -> NoReturn:
    """Bad input's one line and exit 2. A reason quotes what it was given (a path, a value),
    which may hold a line break: control characters are written as escapes, so it stays one
    line."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in reason)
    typer.echo(f"gateway: {line}", err=True)
    sys.exit(2)


if __name__ == "__main__":
    main()
