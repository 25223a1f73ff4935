"""Optional OpenTelemetry traces, off by default: configuration, the tracer and its wiring.

Off (``GATEWAY_OTEL_ENABLED`` unset or false) neither the SDK nor the exporter nor an
instrumentation is imported (only opentelemetry-api, which FastAPI itself imports; the app
turns FastAPI's own telemetry off): the hub holds ``NO_TRACING``, whose spans cost a context
manager. On, each process that does work
(every ``serve`` worker, every ``dispatch`` process, the ``scheduler``) starts its own
``TracerProvider`` with a ``BatchSpanProcessor`` and the OTLP/HTTP exporter, once it is the
process that will run: uvicorn spawns its workers and each calls ``gateway.app:app_from_env``,
``dispatch --processes N`` starts tracing inside each child, so no export thread is inherited
over a fork. Where the collector is comes from the standard variables
(``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces``,
else ``http://localhost:4318/v1/traces``; ``OTEL_SERVICE_NAME``, default ``px-gateway``); the
SDK itself honours ``OTEL_EXPORTER_OTLP_HEADERS``/``_TIMEOUT``, ``OTEL_TRACES_SAMPLER``,
``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_BSP_*``.

What is traced: HTTP server requests (named by route template; probes and scrapes are not
traced), the dispatcher's work per chunk of outbox tasks, the reconciliation runs of the
scheduler, and as their children the database statements and the outbound partner and rail
calls, which carry the W3C ``traceparent`` to the counterparty. Statements and calls outside
any of those (the dispatcher's polling, housekeeping) start no trace: the instrumentations
that make them use a provider that only ever continues a trace.

What is recorded obeys the logs rule (``gateway.observability.logs``): ids, route templates,
methods, statuses, error classes; never payloads, national ids, accounts, keys or tokens. The
instrumentations record more (raw paths and query strings, full URLs, client addresses,
exception messages), so every span passes ``_Redacting`` on its way to the exporter, which
keeps only the attributes named in ``ALLOWED_ATTRIBUTES`` and of an exception event only its
class.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gateway.errors import ConfigError

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncEngine

    from gateway.config import Settings

__all__ = ["ALLOWED_ATTRIBUTES", "NO_TRACING", "Span", "Tracing", "TracingConfig",
           "require_packages", "start_tracing", "tracing_config"]

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
DEFAULT_SERVICE_NAME = "px-gateway"
_INSTALL = "pip install 'px-gateway[otel]'"

# The attributes a span may carry to the collector; anything else an instrumentation sets is
# dropped. No raw path (http.target, url.path), query (url.query), full URL (http.url,
# url.full), client address or user agent: those carry ids, national ids and tokens.
ALLOWED_ATTRIBUTES = frozenset({
    # HTTP, server and client (old and stable semantic conventions)
    "http.method", "http.request.method", "http.route", "http.status_code",
    "http.response.status_code", "http.scheme", "url.scheme", "http.flavor",
    "network.protocol.version", "server.address", "server.port", "net.host.port",
    "net.peer.name", "net.peer.port", "error.type",
    # database statements: SQL with bound parameters only (the values never reach the text)
    "db.system", "db.name", "db.statement", "db.operation", "db.system.name",
    "db.namespace", "db.query.text", "db.operation.name",
    # ours
    "px.outbox.kind", "px.outbox.destination", "px.outbox.pk", "px.outbox.attempt",
    "px.outbox.tasks", "px.outbox.failed", "px.rail", "px.business_date", "px.verdict",
})
_EXCEPTION_ATTRIBUTES = frozenset({"exception.type"})


@dataclass(frozen=True)
class TracingConfig:
    """Whether this process traces, where it exports and under which service name."""

    enabled: bool = False
    endpoint: str = DEFAULT_ENDPOINT
    service_name: str = DEFAULT_SERVICE_NAME


def _endpoint(name: str, value: str) -> str:
    value = value.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        raise ConfigError(f"{name} {value!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} {value!r} must be an http:// or https:// URL with a host "
                          "(the OTLP/HTTP receiver, e.g. http://collector:4318)")
    if parts.query or parts.fragment or re.search(r"\s", value):
        raise ConfigError(f"{name} {value!r} must be a plain URL (no query, fragment or "
                          "spaces)")
    return value


def tracing_config(settings: Settings, environ: Mapping[str, str] | None = None
                   ) -> TracingConfig:
    """Read the switch from ``settings`` and the standard OTEL_* variables from ``environ``.

    Raises:
        ConfigError: tracing is on and an endpoint or protocol variable is unusable.
    """
    env = os.environ if environ is None else environ
    if not settings.otel_enabled or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return TracingConfig()
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = env.get(name, "").strip()
        if protocol and protocol != "http/protobuf":
            raise ConfigError(f"{name} {protocol!r} is not supported: the gateway exports "
                              "OTLP over HTTP (http/protobuf)")
        if protocol:
            break
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if traces:
        endpoint = _endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)
    elif base:
        endpoint = _endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", base).rstrip("/") + "/v1/traces"
    else:
        endpoint = DEFAULT_ENDPOINT
    service = env.get("OTEL_SERVICE_NAME", "").strip() or DEFAULT_SERVICE_NAME
    return TracingConfig(enabled=True, endpoint=endpoint, service_name=service)


def require_packages() -> None:
    """Raise ``ConfigError`` (one line) unless the OpenTelemetry packages can be imported:
    the commands check before they start their workers."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        import opentelemetry.instrumentation.fastapi  # noqa: F401
        import opentelemetry.instrumentation.httpx  # noqa: F401
        import opentelemetry.instrumentation.sqlalchemy  # noqa: F401
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"GATEWAY_OTEL_ENABLED is on but OpenTelemetry is not installed "
                          f"({exc.name or exc}): {_INSTALL}") from None


class Span:
    """The handle of a span the gateway opened: mark it failed with an error class."""

    def failed(self, error_type: str) -> None:
        """The work failed with ``error_type`` (an exception class name, never its text)."""

    def attribute(self, name: str, value: str | int) -> None:
        """Record what the work found out (a closed value or an id)."""


class Tracing:
    """No tracing: every method does nothing (``NO_TRACING``); ``start_tracing`` returns the
    working kind."""

    enabled = False

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, str | int]) -> Iterator[Span]:
        """A span around a block of work, the current span inside it. ``name`` and the
        attributes come from closed sets (kinds, rails) and ids."""
        yield Span()

    def instrument_app(self, app: FastAPI) -> None:
        """Trace the app's requests (call before it serves its first request)."""

    def instrument_client(self, client: httpx.AsyncClient) -> httpx.AsyncClient:
        """Trace ``client``'s calls made inside a span, with ``traceparent``; return it."""
        return client

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """Trace ``engine``'s statements made inside a span."""

    def shutdown(self) -> None:
        """Export what is buffered, then stop (the process is exiting)."""


NO_TRACING = Tracing()


def start_tracing(config: TracingConfig, command: str, *, exporter: Any = None) -> Tracing:
    """The process's tracing: ``NO_TRACING`` if ``config`` is off, else a provider exporting
    to ``config.endpoint`` (or to ``exporter``, a ``SpanExporter``, through the same batch
    processor and redaction).

    Raises:
        ConfigError: tracing is on and OpenTelemetry is not installed.
    """
    if not config.enabled:
        return NO_TRACING
    require_packages()
    return _OtelTracing(config, command, exporter)


class _OtelSpan(Span):
    def __init__(self, span: Any) -> None:
        self._span = span

    def failed(self, error_type: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute("error.type", error_type)
        self._span.set_status(Status(StatusCode.ERROR))

    def attribute(self, name: str, value: str | int) -> None:
        self._span.set_attribute(name, value)


class _OtelTracing(Tracing):
    enabled = True

    def __init__(self, config: TracingConfig, command: str, exporter: Any) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

        resource = Resource.create({"service.name": config.service_name,
                                    "px.command": command})
        self._processor = _redacting()(BatchSpanProcessor(
            exporter if exporter is not None else OTLPSpanExporter(endpoint=config.endpoint)))
        # Roots sample as OTEL_TRACES_SAMPLER says (default: every trace).
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(self._processor)
        # Statements and outbound calls only ever continue a trace: the dispatcher's polling
        # and housekeeping (a statement every few milliseconds) would otherwise each be one.
        self.child_provider = TracerProvider(resource=resource,
                                             sampler=ParentBased(root=ALWAYS_OFF),
                                             shutdown_on_exit=False)
        self.child_provider.add_span_processor(self._processor)
        self.tracer = self.provider.get_tracer("gateway")

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, str | int]) -> Iterator[Span]:
        from opentelemetry.trace import SpanKind

        with self.tracer.start_as_current_span(name, kind=SpanKind.INTERNAL,
                                               attributes=dict(attributes)) as span:
            yield _OtelSpan(span)

    def instrument_app(self, app: FastAPI) -> None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        from gateway.observability.http import PROBE_ROUTES

        probes = "|".join(re.escape(r.lstrip("/")) for r in sorted(PROBE_ROUTES))
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=self.provider, excluded_urls=f"/({probes})$",
            # the ASGI messages of a request as spans of their own: noise, and a body's size
            exclude_spans=["receive", "send"])

    def instrument_client(self, client: httpx.AsyncClient) -> httpx.AsyncClient:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.child_provider,
                                                  request_hook=_name_the_server)
        return client

    def instrument_engine(self, engine: AsyncEngine) -> None:
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeterProvider

        connections = NoOpMeterProvider().get_meter("gateway").create_up_down_counter(
            "db.client.connections.usage")
        EngineTracer(self.child_provider.get_tracer("gateway.db"), engine.sync_engine,
                     connections)  # type: ignore[no-untyped-call]

    def shutdown(self) -> None:
        self.provider.shutdown()


async def _name_the_server(span: Any, request: Any) -> None:
    # The instrumentation records the full URL only (dropped: paths and queries carry ids);
    # the host and port say which partner or rail was called.
    url = request.url
    if isinstance(url, tuple):
        host, port = url[1].decode("ascii", "replace"), url[2]
    else:
        host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
    span.set_attribute("server.address", host)
    if port is not None:
        span.set_attribute("server.port", port)


def _redacting() -> Any:
    """The span processor class that forwards only allowed attributes (built on first use, so
    that importing this module imports nothing of the SDK)."""
    from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor

    def keep(attributes: Mapping[str, Any] | None, allowed: frozenset[str]) -> dict[str, Any]:
        return {k: v for k, v in (attributes or {}).items() if k in allowed}

    class Redacting(SpanProcessor):
        def __init__(self, inner: SpanProcessor) -> None:
            self._inner = inner

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            self._inner.on_start(span, parent_context=parent_context)

        def on_end(self, span: ReadableSpan) -> None:
            events = [Event(e.name, keep(e.attributes, _EXCEPTION_ATTRIBUTES), e.timestamp)
                      for e in span.events if e.name == "exception"]
            # The status keeps its code; its description is an exception's text.
            from opentelemetry.trace import Status

            self._inner.on_end(ReadableSpan(
                name=span.name, context=span.context, parent=span.parent,
                resource=span.resource, attributes=keep(span.attributes, ALLOWED_ATTRIBUTES),
                events=events, links=(), kind=span.kind,
                status=Status(span.status.status_code), start_time=span.start_time,
                end_time=span.end_time, instrumentation_scope=span.instrumentation_scope))

        def shutdown(self) -> None:
            self._inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return bool(self._inner.force_flush(timeout_millis))

    return Redacting
