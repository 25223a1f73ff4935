"""Files that hold secrets (private keys, bearer tokens, rail credentials).

A secret file is created readable by its owner only from its first byte: the file is written
under a temporary name opened with mode 0600 (``os.open``), flushed to disk and renamed into
place, so no other user can ever read it, a reader never sees half of it, and a crash leaves
either the old file or the new one. In production the gateway refuses to start on a secret file
that others could read or change (``require_private``): a leaked signing key cannot be
revoked from the partners quickly. The rule is PostgreSQL's for ``ssl_key_file``, so that a
Kubernetes secret volume (root's files, group fsGroup, group-readable) is accepted as it is.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Collection
from pathlib import Path

from gateway.errors import ConfigError

__all__ = ["require_private", "secret_file_refusal", "write_private"]


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
    """Refuse a secret file that ``secret_file_refusal`` refuses for this process.

    ``path`` is followed if it is a symlink: a Kubernetes secret volume's files are symlinks
    into its ``..data`` folder, and what is read is the target.

    Raises:
        ConfigError: naming the file, its mode and owner, and the fix.
    """
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot be read ({exc.strerror})") from None
    refusal = secret_file_refusal(str(path), st.st_mode, st.st_uid, st.st_gid,
                                  euid=os.geteuid(), egid=os.getegid(), groups=os.getgroups())
    if refusal is not None:
        raise ConfigError(f"{what} {path} (mode {stat.S_IMODE(st.st_mode):04o}, owner uid "
                          f"{st.st_uid} gid {st.st_gid}) {refusal}")


# PostgreSQL's masks: S_IRWXG | S_IRWXO for a file of its own, S_IWGRP | S_IXGRP | S_IRWXO for
# root's. The set-id and sticky bits and the owner's own bits are not looked at.
_OWN_FORBIDDEN = 0o077
_ROOTS_FORBIDDEN = 0o037


def secret_file_refusal(path: str, st_mode: int, uid: int, gid: int, *, euid: int, egid: int,
                        groups: Collection[int]) -> str | None:
    """Why this process may not use a secret file, or None if it may.

    The rule is PostgreSQL's for ``ssl_key_file`` (``check_ssl_key_file_permissions``), exactly:
    the file must be a regular file, owned by the process's effective user or by root; if owned
    by the process's user (root included, when the process is root) it may have no group or
    other permission bits (0600 or less); if owned by root it may have no group write or
    execute and nothing for others (0640 or less). One addition: PostgreSQL leaves reading a
    root-owned file to ``open()``; here such a file must also give its group read and belong
    to the process's group (``egid``) or a supplementary one (``groups``), so that a file the
    process could not read is refused with the reason, before anything starts.

    The decision depends on ``st_mode``, ``uid``, ``gid``, ``euid``, ``egid`` and ``groups``
    alone (``path`` is only named in the fix), so every case can be tested as any user.
    """
    if not stat.S_ISREG(st_mode):
        return "is not a regular file; point the setting at the file itself"
    own_fix = f"chown {euid} {path} && chmod 600 {path}"
    k8s_fix = ("in Kubernetes mount it from a secret volume with defaultMode: 288 (0440) and "
               "the pod's fsGroup")
    if uid not in (euid, 0):
        return (f"is owned by neither this process's user (uid {euid}) nor root; a secret file "
                f"must be one or the other: {own_fix}, or {k8s_fix}")
    if uid == euid:
        if st_mode & _OWN_FORBIDDEN:
            return (f"has group or other permissions; a secret file owned by this process's "
                    f"user must have none (0600 or less): chmod 600 {path}")
        return None
    if st_mode & _ROOTS_FORBIDDEN:
        return (f"is root's and its group may write or execute it or others may use it; a "
                f"secret file owned by root may have at most 0640 (group read only): "
                f"chmod 440 {path}, or {k8s_fix}, or {own_fix}")
    process_groups = sorted({egid, *groups})
    if not st_mode & stat.S_IRGRP or gid not in process_groups:
        return (f"is root's and this process (uid {euid}, groups "
                f"{', '.join(map(str, process_groups))}) cannot read it through its group (gid "
                f"{gid}); a secret file owned by root must be readable by one of the process's "
                f"groups: chgrp {egid} {path} && chmod 440 {path}, or {k8s_fix}, or {own_fix}")
    return None
