"""The one line the CLI prints for an operating-system error that no command turned into a
GatewayError: the file and reason when the error names a file, the database otherwise."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from gateway.cli import _os_failure


@pytest.mark.parametrize("exc", [
    ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    TimeoutError("timed out"),
    socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    # asyncio's own, when every address of a host name refused: no errno, no file.
    OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432, 0, 0), "
            "[Errno 111] Connect call failed ('127.0.0.1', 5432)"),
    # A Unix socket that is not there (the server is down): ENOENT, but no file name.
    FileNotFoundError(errno.ENOENT, "No such file or directory"),
    # A server certificate refused: errno 1, which is EPERM's number.
    ssl.SSLCertVerificationError(1, "certificate verify failed"),
    # OpenSSL's SSL_ERROR_SYSCALL: errno 5, which is EIO's number.
    ssl.SSLError(5, "EOF occurred in violation of protocol"),
], ids=["refused", "timeout", "unknown-host", "every-address-refused", "no-socket-file",
        "certificate", "tls-eof"])
def test_a_failure_to_reach_the_database_names_the_database(
        exc: OSError, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://ops:secret@db.internal/px")
    line = _os_failure(exc)
    assert line.startswith("database postgresql://***@db.internal/px cannot be reached"), line
    assert "secret" not in line


@pytest.mark.parametrize("exc, expected", [
    (OSError(errno.ENOSPC, "No space left on device", "/srv/keys/hub.jwk.json"),
     "/srv/keys/hub.jwk.json: No space left on device"),
    # A write to a file already open (a full disk): no file name, only the reason.
    (OSError(errno.ENOSPC, "No space left on device"),
     "No space left on device (writing a file)"),
    (OSError(errno.EROFS, "Read-only file system"), "Read-only file system (writing a file)"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/srv/schemas/x"),
     "/srv/schemas/x: Not a directory"),
    (PermissionError(errno.EACCES, "Permission denied", "/srv/example.json"),
     "/srv/example.json: Permission denied"),
], ids=["disk-full", "disk-full-writing", "read-only-writing", "not-a-directory",
        "permission"])
def test_a_file_system_failure_is_not_blamed_on_the_database(exc: OSError,
                                                             expected: str) -> None:
    line = _os_failure(exc)
    assert line == expected and "database" not in line
