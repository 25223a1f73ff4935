"""Which secret files production accepts: PostgreSQL's ``ssl_key_file`` rule, decided from
(mode, owner, group) and the process's (euid, egid, groups) alone, so every case can be tried
here although the tests run as root, where "owned by root" and "owned by me" are the same."""

from __future__ import annotations

import stat

import pytest

from gateway.secretfiles import secret_file_refusal

APP, APP_GROUP, OTHER_GROUP, STRANGER = 10001, 10001, 4242, 4343
FILE = stat.S_IFREG


def _perms(mode: int) -> tuple[str, str, str]:
    """'rw-', 'r--', '---' for user, group and others, read off ``stat.filemode``."""
    text = stat.filemode(FILE | mode)
    return text[1:4], text[4:7], text[7:10]


def _expected(mode: int, uid: int, gid: int, euid: int, egid: int,
              groups: tuple[int, ...]) -> bool:
    """The rule written a second way, in terms of who may do what."""
    _, group, others = _perms(mode)
    if others != "---":
        return False
    if uid == euid:
        return group == "---"
    if uid == 0:
        return group == "r--" and (gid == egid or gid in groups)
    return False


# (file uid, file gid, process euid, egid, supplementary groups)
SCENARIOS = {
    "own file": (APP, APP_GROUP, APP, APP_GROUP, ()),
    "own file, another group": (APP, OTHER_GROUP, APP, APP_GROUP, ()),
    "root's, the process's group": (0, APP_GROUP, APP, APP_GROUP, ()),
    "root's, a supplementary group (k8s fsGroup)": (0, OTHER_GROUP, APP, APP_GROUP,
                                                    (OTHER_GROUP,)),
    "root's, a group the process is not in": (0, OTHER_GROUP, APP, APP_GROUP, (APP_GROUP,)),
    "root's, root's group": (0, 0, APP, APP_GROUP, ()),
    "a stranger's, the process's group": (STRANGER, APP_GROUP, APP, APP_GROUP, ()),
    "root process, root's file": (0, 0, 0, 0, ()),
    "root process, root's file, another group": (0, APP_GROUP, 0, 0, (APP_GROUP,)),
    "root process, another user's file": (APP, 0, 0, 0, ()),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_permission_mode_is_decided_as_postgresql_does(scenario: str) -> None:
    uid, gid, euid, egid, groups = SCENARIOS[scenario]
    wrong = []
    for mode in range(0o1000):
        refusal = secret_file_refusal("/s", FILE | mode, uid, gid, euid=euid, egid=egid,
                                      groups=groups)
        if (refusal is None) != _expected(mode, uid, gid, euid, egid, groups):
            wrong.append(f"{mode:04o}: {refusal or 'accepted'}")
    assert not wrong


@pytest.mark.parametrize(("mode", "uid", "gid", "accepted"), [
    (0o600, APP, APP_GROUP, True),      # owned by me: u=rw
    (0o400, APP, APP_GROUP, True),      # systemd LoadCredential=
    (0o700, APP, APP_GROUP, True),      # PostgreSQL masks group and other bits only
    (0o640, APP, APP_GROUP, False),     # owned by me: no group read either
    (0o604, APP, APP_GROUP, False),
    (0o440, 0, APP_GROUP, True),        # Kubernetes: defaultMode 0440, group fsGroup
    (0o640, 0, APP_GROUP, True),        # root may write it, my group reads it
    (0o400, 0, APP_GROUP, False),       # root's only: I could not read it
    (0o600, 0, APP_GROUP, False),
    (0o460, 0, APP_GROUP, False),       # group-writable
    (0o450, 0, APP_GROUP, False),       # group-executable
    (0o444, 0, APP_GROUP, False),       # other-readable
    (0o644, 0, APP_GROUP, False),
    (0o440, 0, OTHER_GROUP, False),     # a group I am not in
    (0o600, STRANGER, APP_GROUP, False),
])
def test_the_cases_that_matter(mode: int, uid: int, gid: int, accepted: bool) -> None:
    refusal = secret_file_refusal("/s", FILE | mode, uid, gid, euid=APP, egid=APP_GROUP,
                                  groups=(APP_GROUP,))
    assert (refusal is None) is accepted, refusal


@pytest.mark.parametrize("bits", [stat.S_ISUID, stat.S_ISGID, stat.S_ISVTX])
def test_special_bits_are_not_permissions(bits: int) -> None:
    """PostgreSQL masks the group and other permission bits; set-id and sticky bits are not."""
    assert secret_file_refusal("/s", FILE | bits | 0o600, APP, APP, euid=APP, egid=APP,
                               groups=()) is None
    assert secret_file_refusal("/s", FILE | bits | 0o440, 0, APP, euid=APP, egid=APP,
                               groups=()) is None


@pytest.mark.parametrize("kind", [stat.S_IFDIR, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR])
def test_only_a_regular_file_is_accepted(kind: int) -> None:
    refusal = secret_file_refusal("/s", kind | 0o600, APP, APP, euid=APP, egid=APP, groups=())
    assert refusal is not None and "not a regular file" in refusal


def test_each_refusal_says_what_to_do() -> None:
    def refusal(mode: int, uid: int, gid: int) -> str:
        text = secret_file_refusal("/run/secrets/px/hub.jwk.json", FILE | mode, uid, gid,
                                   euid=APP, egid=APP_GROUP, groups=(APP_GROUP,))
        assert text is not None and "\n" not in text
        return text

    own = refusal(0o640, APP, APP_GROUP)
    assert "chmod 600 /run/secrets/px/hub.jwk.json" in own
    roots = refusal(0o644, 0, APP_GROUP)
    assert "0640" in roots and "defaultMode: 288" in roots and "chmod 600" in roots
    unreadable = refusal(0o400, 0, APP_GROUP)
    assert "cannot read" in unreadable and "defaultMode: 288" in unreadable
    foreign = refusal(0o440, 0, OTHER_GROUP)
    assert "cannot read" in foreign and str(OTHER_GROUP) in foreign and "fsGroup" in foreign
    stranger = refusal(0o600, STRANGER, APP_GROUP)
    assert "uid 10001" in stranger and "chown 10001" in stranger
