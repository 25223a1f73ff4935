"""Every command's ``--help``: defaults shown, no placeholder noise.

Walks the real command tree (so a new command is covered without editing this test) and reads
each help page as a user would: every option that has a default shows it (``[default: ...]``,
or the help text names it, for defaults that come from settings or mean "not given"), and no
page carries ``TODO``, ``FIXME``, an elided ``...`` or a value placeholder on a flag.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gateway.cli import app

ROOT = typer.main.get_command(app)


# typer carries its own copy of click: commands and parameters are read by their attributes.
def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if hasattr(group, "commands"):
        for name, sub in sorted(group.commands.items()):
            found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(ROOT)


def _command(path: tuple[str, ...]) -> Any:
    cmd = ROOT
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def test_the_tree_has_every_command() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {"serve", "dispatch", "demo", "example", "keys sign", "keys token",
            "simulate partner", "simulate rail", "audit verify", "db upgrade"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "gateway")
def test_help_shows_defaults_and_no_placeholder_noise(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    page = result.output
    assert result.exit_code == 0, page
    assert page.startswith("Usage: "), page
    for noise in ("TODO", "FIXME", "XXX", "...", "…", "<bool>"):
        # "[OPTIONS] COMMAND [ARGS]..." is click's usage line for a group, not noise.
        body = page.replace("COMMAND [ARGS]...", "")
        assert noise not in body, f"{noise!r} in `gateway {' '.join(path)} --help`:\n{page}"
    for param in _command(path).params:
        if param.param_type_name != "option" or param.is_flag or param.required:
            continue
        name = param.opts[0]
        line = _option_help(page, name)
        assert "[default: " in line or re.search(r"\bdefault\b", line), (
            f"`gateway {' '.join(path)} --help`: {name} does not show its default:\n{page}")


def _option_help(page: str, name: str) -> str:
    """The help text of one option (its line and the wrapped lines after it)."""
    lines = page.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(name + " "))
    out = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith(" " * 6) or line.strip().startswith("-"):
            break
        out.append(line)
    return " ".join(" ".join(out).split())


def test_the_check_finds_a_missing_default_and_noise() -> None:
    page = ("Usage: x\n\nOptions:\n  --port <int>  Port.\n  --tick <float>  Seconds per\n"
            "                  step.  [default: 1.0]\n")
    assert "[default: " not in _option_help(page, "--port")
    assert "[default: 1.0]" in _option_help(page, "--tick")
