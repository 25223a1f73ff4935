"""The probe listener of `dispatch` and `scheduler` (gateway.observability.listener) on a real
database: ready on a migrated one; 503 with the reason, never a hung probe, when the database
is unreachable or accepts and never answers, while /livez stays 200."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.simulation import free_port
from gateway.errors import ConfigError
from gateway.observability.listener import PATHS, start_probe_listener


def _get(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=15)


def test_a_migrated_database_is_ready_and_every_path_answers(db_url: str) -> None:
    listener = start_probe_listener("127.0.0.1", 0, db_url)
    try:
        assert set(PATHS) == {"/livez", "/readyz", "/metrics"}
        assert (_get(listener.port, "/livez").text, _get(listener.port, "/readyz").text) == (
            "ok\n", "ready\n")
        metrics = _get(listener.port, "/metrics")
        assert metrics.status_code == 200
        list(text_string_to_metric_families(metrics.text))  # Prometheus text
        for path in ("/", "/livezz", "/admin/v1/outbox"):
            assert _get(listener.port, path).status_code == 404
        assert _get(listener.port, "/readyz?verbose=1").status_code == 200
    finally:
        listener.close()
    with pytest.raises(httpx.ConnectError):
        _get(listener.port, "/livez")


def test_an_unreachable_database_is_not_ready_but_live() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/px"  # nothing listens there
    listener = start_probe_listener("127.0.0.1", 0, url)
    try:
        ready = _get(listener.port, "/readyz")
        assert ready.status_code == 503
        assert ready.text.startswith("not ready: the database cannot be reached"), ready.text
        assert len(ready.text.splitlines()) == 1
        assert _get(listener.port, "/livez").status_code == 200
    finally:
        listener.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung database)."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        yield server.getsockname()[1]


def test_a_database_that_never_answers_gives_503_not_a_hung_probe(silent_server: int) -> None:
    listener = start_probe_listener("127.0.0.1", 0,
                                    f"postgresql://postgres@127.0.0.1:{silent_server}/px")
    try:
        ready = _get(listener.port, "/readyz")  # the client's own timeout would fail the test
        assert ready.status_code == 503 and ready.text.startswith("not ready: "), ready.text
        assert _get(listener.port, "/livez").status_code == 200
    finally:
        listener.close()


def test_a_schema_behind_the_head_is_not_ready(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"  # no migrations ran
    listener = start_probe_listener("127.0.0.1", 0, url)
    try:
        ready = _get(listener.port, "/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.text.startswith("not ready: the database schema is at None"), ready.text
    finally:
        listener.close()


def test_a_port_in_use_is_a_config_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            start_probe_listener("127.0.0.1", port, "sqlite:///unused.db")
