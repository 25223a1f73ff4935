"""An instance whose push partners' endpoints are free loopback ports (nothing answers there
unless a test listens), so no test reaches another process's simulator."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from adapters.simulation import free_port
from gateway.protocol.keys import write_private_key
from gateway.runtime.bootstrap import DEV_PARTNERS, write_dev_registry


@pytest.fixture
def ops_instance(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    ports = {p.id: free_port() for p in DEV_PARTNERS}
    write_private_key(tmp_path / "hub.jwk.json", "MY-PERKESO-test-1")
    write_dev_registry(tmp_path / "partners.toml",
                       tuple(dataclasses.replace(p, port=ports[p.id]) for p in DEV_PARTNERS))
    return tmp_path, ports
