"""Logging: every record (ours, uvicorn's, SQLAlchemy's) as one JSON line or one text line.

stdlib logging stays the API (``logging.getLogger(__name__)`` everywhere); structlog's
``ProcessorFormatter`` renders the records, adding the ids bound for the current request or
task with ``bind_ids`` (contextvars: each asyncio task sees its own). Fields carried:
``request_id``, ``message_id``, ``partner``, ``payment_id``, ``outbox_pk``, ``kind``,
``destination``, ``attempt``: ids only. What is logged never holds payloads, national ids,
accounts, keys or tokens: the messages name ids and error classes (``outbox.retry.describe``),
the database engine hides statement parameters, and the access log carries the route template,
never the path's values, the query string or a body (tests/e2e/ops/test_logs.py greps a full
flow's logs for its test data).

Format: ``json`` (one object per line: ``timestamp``, ``level``, ``logger``, ``event`` and the
ids) is the default in production, ``text`` (the same fields, for a terminal) in development;
``GATEWAY_LOG_FORMAT`` or ``--log-format`` chooses.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

__all__ = ["ACCESS_FIELDS", "LogFormat", "bind_ids", "clear_ids", "configure_logging"]

LogFormat = Literal["json", "text"]

# The access log's fields (gateway.observability.http), the only ``extra`` a record may add.
ACCESS_FIELDS = ("method", "route", "status", "duration_ms")

_IDS = frozenset({"request_id", "message_id", "partner", "payment_id", "outbox_pk", "kind",
                  "destination", "attempt"})


def bind_ids(**ids: object) -> None:
    """Attach ids to every record logged from here in the current context (task)."""
    unknown = set(ids) - _IDS
    if unknown:
        raise ValueError(f"not a log id field: {sorted(unknown)}")
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v is not None})


def clear_ids() -> None:
    structlog.contextvars.clear_contextvars()


def configure_logging(level: str = "INFO", fmt: LogFormat = "text") -> None:
    """Route the root logger through one handler on stderr in ``fmt``; idempotent."""
    pre_chain: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(allow=ACCESS_FIELDS),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("gateway")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "gateway"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # uvicorn's own handlers would print a second, unstructured copy of its records; its
    # access log (raw paths with their query strings) is replaced by gateway.access.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").handlers.clear()
    logging.getLogger("uvicorn.access").propagate = False
