"""What ``serve`` says it will call, and the ``gateway simulate`` command for each."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.payments.rails import write_dev_rails
from gateway.runtime.bootstrap import write_dev_registry
from gateway.sandbox.companions import Simulators, companions, describe


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    write_dev_registry(tmp_path / "partners.toml")
    write_dev_rails(tmp_path / "rails.toml")
    return Settings(partners_file=tmp_path / "partners.toml",
                    rails_file=tmp_path / "rails.toml",
                    database_url=f"sqlite:///{tmp_path}/unused.db")


def test_every_partner_and_rail_with_the_command_that_simulates_it(settings: Settings) -> None:
    found = {c.name: c for c in companions(settings, "http://127.0.0.1:8400")}
    assert set(found) == {"ID-BPJSTK", "MM-SSB", "NP-FEB", "PK-MOPHRD", "BD-WEWB",
                          "merchantrade", "iso20022"}
    registry = str(settings.partners_file)
    np = found["NP-FEB"]
    assert np.calls == "pushes to http://127.0.0.1:8413/px" and np.port == 8413
    assert np.command() == f"gateway simulate partner NP-FEB --port 8413 --registry {registry}"
    assert found["MM-SSB"].calls.startswith("is polled")
    assert found["merchantrade"].command() == "gateway simulate rail merchantrade --port 8701"
    # another hub URL than the simulators' default is passed on
    other = {c.name: c for c in companions(settings, "http://127.0.0.1:9000")}
    assert "--hub http://127.0.0.1:9000" in other["iso20022"].command()


def test_an_endpoint_off_loopback_gets_no_simulator(settings: Settings) -> None:
    path = settings.partners_file
    path.write_text(path.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8414/px", "https://px.mophrd.example/px"), encoding="utf-8")
    found = {c.name: c for c in companions(settings, "http://127.0.0.1:8400")}
    assert found["PK-MOPHRD"].args == () and found["PK-MOPHRD"].port is None
    lines = describe(list(found.values()))
    assert ("partner PK-MOPHRD pushes to https://px.mophrd.example/px (not on loopback: no "
            "simulator)") in lines
    assert lines[-1].startswith("start them all with `gateway serve --with-simulators`")
    assert not describe(list(found.values()), starting=True)[-1].startswith("start them all")
    assert "PK-MOPHRD" not in {c.name for c in Simulators(list(found.values())).found}
