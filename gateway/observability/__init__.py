"""Observability: metrics, structured logs, probes and graceful shutdown (gateway.observability).

    labels.py    closing label values to known sets (an unknown value is ``"other"``)
    metrics.py   the in-process counters and histograms, behind ``Observer``
    state.py     database-state gauges computed at scrape time, cached (``StateCollector``)
    sources.py   the cheap queries those gauges come from, one per concern
    exposition.py  the /metrics text: this process, or all processes of a multiprocess dir
    http.py      the ASGI middleware: request id, access log, HTTP duration histogram
    logs.py      structlog over stdlib logging: JSON lines or text, context ids from contextvars
    probes.py    /livez, /readyz, /metrics and the SIGTERM drain
    listener.py  the same probes for `dispatch` and `scheduler`, which run no web app
    tracing.py   optional OpenTelemetry traces (off by default; nothing imported while off)

Why two kinds of metrics: what a process *does* (requests, intake outcomes, deliveries,
retries, circuits) is counted where it happens and summed over processes; what the *database
holds* (outbox depth, dead letters, payments by state, chain lag) is one truth, computed at
scrape time by one query each and never summed. docs/metrics.md lists every metric.
"""
