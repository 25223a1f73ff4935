"""Secret files: created owner-only from the first byte; production refuses readable ones
(the rule itself, every mode and owner, is tried in test_secret_modes.py)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.runtime.bootstrap import prepare_instance
from gateway.secretfiles import require_private


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
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660], ids=oct)
def test_production_refuses_group_or_world_readable_secrets(tmp_path: Path, name: str,
                                                            mode: int) -> None:
    settings = _production(tmp_path)
    prepare_instance(settings)  # all private: starts
    (tmp_path / name).chmod(mode)
    with pytest.raises(ConfigError) as err:
        prepare_instance(settings)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / name) in message and f"{mode:04o}" in message


def test_production_starts_on_read_only_secrets(tmp_path: Path) -> None:
    """0400 is what systemd's LoadCredential= gives the service."""
    settings = _production(tmp_path)
    for name in ("hub.jwk.json", "backoffice.toml", "rails.toml"):
        (tmp_path / name).chmod(0o400)
    prepare_instance(settings)


def _secret(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "hub.jwk.json"
    path.write_text("{}")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400], ids=oct)
def test_an_own_file_without_group_or_other_bits_is_accepted(tmp_path: Path, mode: int) -> None:
    require_private(_secret(tmp_path, mode), "GATEWAY_SIGNING_KEY_FILE")


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o660, 0o604, 0o606, 0o610], ids=oct)
def test_an_own_file_with_group_or_other_bits_is_refused(tmp_path: Path, mode: int) -> None:
    path = _secret(tmp_path, mode)
    with pytest.raises(ConfigError) as err:
        require_private(path, "GATEWAY_SIGNING_KEY_FILE")
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"GATEWAY_SIGNING_KEY_FILE {path} ")
    assert f"mode {mode:04o}" in message and f"owner uid {os.geteuid()}" in message
    assert f"chmod 600 {path}" in message


def test_a_folder_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        require_private(tmp_path, "GATEWAY_RAILS_FILE")
    with pytest.raises(ConfigError, match="cannot be read"):
        require_private(tmp_path / "absent.toml", "GATEWAY_RAILS_FILE")


def test_a_symlink_is_judged_by_its_target(tmp_path: Path) -> None:
    """A Kubernetes secret volume's files are symlinks into its ..data folder."""
    target = _secret(tmp_path, 0o600)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    require_private(link, "GATEWAY_SIGNING_KEY_FILE")
    target.chmod(0o644)
    with pytest.raises(ConfigError, match="mode 0644"):
        require_private(link, "GATEWAY_SIGNING_KEY_FILE")


@pytest.fixture
def as_app_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process seen as uid 10001 (gid 10001, also in group 0), as in the pods; the
    tests run as root, so files they create are root's."""
    monkeypatch.setattr(os, "geteuid", lambda: 10001)
    monkeypatch.setattr(os, "getegid", lambda: 10001)
    monkeypatch.setattr(os, "getgroups", lambda: [10001, 0])


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs files owned by root")


@root_only
@pytest.mark.parametrize("mode", [0o440, 0o640], ids=oct)
def test_a_root_owned_file_the_group_reads_is_accepted(tmp_path: Path, mode: int,
                                                       as_app_user: None) -> None:
    require_private(_secret(tmp_path, mode), "GATEWAY_SIGNING_KEY_FILE")


@root_only
@pytest.mark.parametrize("mode", [0o400, 0o600, 0o644, 0o660, 0o444], ids=oct)
def test_a_root_owned_file_otherwise_is_refused(tmp_path: Path, mode: int,
                                                as_app_user: None) -> None:
    path = _secret(tmp_path, mode)
    with pytest.raises(ConfigError) as err:
        require_private(path, "GATEWAY_SIGNING_KEY_FILE")
    message = str(err.value)
    assert f"mode {mode:04o}" in message and "owner uid 0 gid 0" in message
    assert "defaultMode: 288" in message
