"""Files that hold secrets (private keys, bearer tokens, rail credentials).

A secret file is created readable by its owner only from its first byte: the file is written
under a temporary name opened with mode 0600 (``os.open``), flushed to disk and renamed into
place, so no other user can ever read it, a reader never sees half of it, and a crash leaves
either the old file or the new one. In production the gateway refuses to start on a secret file
that its group or others can read (``require_private``): a leaked signing key cannot be
revoked from the partners quickly.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from gateway.errors import ConfigError

__all__ = ["require_private", "write_private"]


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Create (or, unless ``exclusive``, replace) ``path`` with ``text``, mode 0600, atomically.

    Raises:
        FileExistsError: ``exclusive`` and ``path`` exists.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if exclusive and path.exists():
        raise FileExistsError(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if another writer created it meanwhile
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def require_private(path: Path, what: str) -> None:
    """Refuse a secret file its group or others may read or write.

    Raises:
        ConfigError: naming the file, its mode and the fix.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot be read ({exc.strerror})") from None
    if mode & 0o077:
        raise ConfigError(f"{what} {path} is readable by others (mode {mode:04o}); a secret "
                          f"file must be the owner's only: chmod 600 {path}")
