"""The /metrics text: this process's metrics, or every process's through a multiprocess dir.

``gateway serve --workers N`` and ``gateway dispatch --processes N`` run several processes
behind one scrape target. Each command gives its processes one directory
(``PROMETHEUS_MULTIPROC_DIR``, emptied at start, set before prometheus-client is imported) in
which every process keeps its counters and histograms (memory-mapped files); the process that
answers a scrape sums them. A worker that dies keeps its counts in the sum (counters stay
monotonic while the command runs); its circuit gauges are dropped at the next scrape. Without
the variable (tests, in-process use) the process reports only its own metrics.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["MULTIPROC_ENV", "ProcessMetrics", "prepare_multiprocess_dir", "render"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


def prepare_multiprocess_dir(path: Path) -> Path:
    """Empty (or create) ``path`` and name it in the environment for this process and its
    children. Call before anything imports prometheus-client: its values pick their storage
    at import."""
    if path.exists():
        for child in path.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProcessMetrics:
    """A collector of the in-process metrics: the multiprocess sum, or this process's own."""

    def collect(self) -> Iterator[object]:
        from prometheus_client import REGISTRY, multiprocess

        path = os.environ.get(MULTIPROC_ENV)
        if not path:
            yield from REGISTRY.collect()
            return
        for name in os.listdir(path):
            m = _LIVE_FILE.fullmatch(name)
            if m and not _alive(int(m.group(1))):
                multiprocess.mark_process_dead(int(m.group(1)), path)  # type: ignore[no-untyped-call]
        collector = multiprocess.MultiProcessCollector(None, path)  # type: ignore[no-untyped-call]
        yield from collector.collect()  # type: ignore[no-untyped-call]


class _Chain:
    def __init__(self, collectors: Iterable[object]) -> None:
        self._collectors = list(collectors)

    def collect(self) -> Iterator[object]:
        for c in self._collectors:
            yield from c.collect()  # type: ignore[attr-defined]


def render(*extra: object) -> bytes:
    """The Prometheus text of the process metrics and of ``extra`` collectors."""
    from prometheus_client import generate_latest

    return generate_latest(_Chain([ProcessMetrics(), *extra]))  # type: ignore[arg-type]

