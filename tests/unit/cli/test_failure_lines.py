"""The one line the CLI prints for an operating-system error that no command turned into a
GatewayError: the database when it is one of reaching it, the file and reason otherwise."""

from __future__ import annotations

import errno
import socket

import pytest

from gateway.cli import _os_failure


@pytest.mark.parametrize("exc", [
    ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    TimeoutError("timed out"),
    socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    # asyncio's own, when every address of a host name refused: no errno, no file.
    OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432, 0, 0), "
            "[Errno 111] Connect call failed ('127.0.0.1', 5432)"),
], ids=["refused", "timeout", "unknown-host", "every-address-refused"])
def test_a_failure_to_reach_the_database_names_the_database(
        exc: OSError, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://ops:secret@db.internal/px")
    line = _os_failure(exc)
    assert line.startswith("database postgresql://***@db.internal/px cannot be reached")
    assert "secret" not in line


@pytest.mark.parametrize("exc, expected", [
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/srv/reports/x"),
     "/srv/reports/x: Not a directory"),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/reports"),
     "/srv/reports: Permission denied"),
], ids=["disk-full", "not-a-directory", "permission"])
def test_a_file_system_failure_is_not_blamed_on_the_database(exc: OSError,
                                                             expected: str) -> None:
    line = _os_failure(exc)
    assert line == expected and "database" not in line
