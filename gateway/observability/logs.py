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

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Literal

import structlog

__all__ = ["ACCESS_FIELDS", "HeldLogs", "LogFormat", "bind_ids", "clear_ids",
           "configure_logging", "held_logs"]

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


class HeldLogs:
    """The records a ``held_logs`` block logged, kept back until it ends."""

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []
        self.dropped = False

    def drop(self) -> None:
        """Forget them: they describe writes that were undone (a savepoint rolled back)."""
        self.dropped = True
        self.records.clear()


_HELD: ContextVar[HeldLogs | None] = ContextVar("px_held_logs", default=None)


class _Hold(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        held = _HELD.get()
        if held is None or held.dropped:
            return held is None
        held.records.append(record)
        return False


_HOLD = _Hold()


@contextlib.contextmanager
def held_logs(*names: str) -> Iterator[HeldLogs]:
    """Keep back what the loggers ``names`` log in this context (the current task and the
    tasks it starts) until the block ends; then log it, unless ``drop()`` was called or the
    block raised. For work that may yet be undone: a record of a write that was rolled back
    would tell ops of something that never happened. Other tasks log as ever."""
    for name in names:
        logger = logging.getLogger(name)
        if _HOLD not in logger.filters:
            logger.addFilter(_HOLD)  # left installed: it passes everything outside a block
    held = HeldLogs()
    token = _HELD.set(held)
    try:
        yield held
    except BaseException:
        held.drop()
        raise
    finally:
        _HELD.reset(token)
        for record in held.records:
            logging.getLogger(record.name).handle(record)


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
