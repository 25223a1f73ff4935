"""Secret files: created owner-only from the first byte; production refuses readable ones."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.runtime.bootstrap import prepare_instance


@pytest.fixture
def open_umask(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """umask 0, and no chmod after the fact: a file is only private if created so."""
    def no_chmod(self: Path, mode: int, **_: object) -> None:
        raise AssertionError(f"{self} was chmod-ed after it was written")

    monkeypatch.setattr(Path, "chmod", no_chmod)
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_development_secrets_are_created_owner_only(tmp_path: Path, open_umask: None) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/g.db",
                        partners_file=tmp_path / "partners.toml",
                        signing_key_file=tmp_path / "hub.jwk.json",
                        backoffice_tokens_file=tmp_path / "backoffice.toml")
    prepare_instance(settings)
    secrets = [tmp_path / "hub.jwk.json", tmp_path / "backoffice.toml",
               tmp_path / "backoffice.token", tmp_path / "rails.toml",
               *sorted((tmp_path / "keys").glob("*.private.jwk.json"))]
    assert len(secrets) == 9
    assert {p.name: _mode(p) for p in secrets} == {p.name: 0o600 for p in secrets}
    assert not list(tmp_path.glob(".*.tmp"))


def _production(tmp_path: Path) -> Settings:
    dev = Settings(database_url=f"sqlite:///{tmp_path}/g.db",
                   partners_file=tmp_path / "partners.toml",
                   signing_key_file=tmp_path / "hub.jwk.json",
                   backoffice_tokens_file=tmp_path / "backoffice.toml")
    prepare_instance(dev)
    return dev.model_copy(update={"env": "production", "rails_file": tmp_path / "rails.toml"})


@pytest.mark.parametrize("name", ["hub.jwk.json", "backoffice.toml", "rails.toml"])
@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_production_refuses_group_or_world_readable_secrets(tmp_path: Path, name: str,
                                                            mode: int) -> None:
    settings = _production(tmp_path)
    prepare_instance(settings)  # all private: starts
    (tmp_path / name).chmod(mode)
    with pytest.raises(ConfigError) as err:
        prepare_instance(settings)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / name) in message and f"{mode:04o}" in message
