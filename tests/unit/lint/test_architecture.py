"""The architecture's boundaries, checked statically (``ast``) on every module we ship.

Rules (each violation names the file, the line and the rule):

- ``adapters-import``: in ``gateway/`` only the composition root (``gateway/composition.py``)
  and the sandbox tooling (``gateway/sandbox/``) import ``adapters``, at module level or
  inside a function.
- ``simulator-import``: only the sandbox tooling, the simulators themselves
  (``adapters/**/simulator.py``), their support packages (any ``_sim`` package under
  ``adapters/``), the tests and the benchmarks (which drive simulators as the tests do)
  import a simulator module (a module named ``simulator`` or anything under ``_sim``).
- ``outbox-write``: only ``gateway/outbox/`` (and ``migrations/``) writes the outbox table:
  no ``insert(outbox)``/``update(outbox)``/``delete(outbox)`` (or a dialect's ``*_insert``)
  and no ``outbox.insert()/update()/delete()`` anywhere else.
- ``commit``: only the unit of work (``gateway/storage/uow.py``, and the Alembic run in
  ``gateway/storage/migrate.py`` and ``migrations/env.py``) calls ``.commit()`` or
  ``.begin()`` on a connection or transaction; elsewhere the receiver of such a call must be
  a unit of work (a name or attribute ending in ``uow``). Only calls without positional
  arguments count (a connection's and a transaction's take none; ``progress.begin("step")``
  is no transaction). Tests and benchmarks are outside this rule: they set up (and tamper
  with) data directly.

The last tests feed the checker a synthetic source per rule, so each rule is known to fail.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("gateway", "adapters", "tests", "bench", "migrations")

_WRITES = {"insert", "update", "delete"}
_TX_CALLS = {"commit", "begin"}


@dataclass(frozen=True, slots=True)
class Violation:
    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.detail}"


def _module_of(path: str) -> tuple[str, bool]:
    """The dotted module name of a repository path, and whether it is a package."""
    parts = path.removesuffix(".py").split("/")
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _imported(path: str, tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import names (``from a import b`` names ``a`` and ``a.b``), with
    relative imports resolved against ``path``."""
    module, is_package = _module_of(path)
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return found


def _is_simulator(module: str) -> bool:
    return any(p == "simulator" or p == "_sim" for p in module.split("."))


def _may_import_simulators(path: str) -> bool:
    parts = path.split("/")
    return (path.startswith(("gateway/sandbox/", "tests/", "bench/"))
            or (parts[0] == "adapters" and (parts[-1] == "simulator.py" or "_sim" in parts)))


def _receiver_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _writes_outbox(call: ast.Call) -> bool:
    func = call.func
    name = _receiver_name(func)
    if name is None:
        return False
    if isinstance(func, ast.Attribute) and func.attr in _WRITES \
            and _receiver_name(func.value) == "outbox":
        return True  # outbox.insert() / outbox.update() / outbox.delete()
    is_write = name in _WRITES or name.endswith("_insert")
    return is_write and bool(call.args) and isinstance(call.args[0], ast.Name) \
        and call.args[0].id == "outbox"


def check_source(path: str, source: str) -> list[Violation]:
    """Return the boundary violations of one module (``path`` relative to the repository)."""
    tree = ast.parse(source, filename=path)
    out: list[Violation] = []
    in_gateway = path.startswith("gateway/")
    for line, module in _imported(path, tree):
        top = module.split(".")[0]
        if in_gateway and top == "adapters" and path != "gateway/composition.py" \
                and not path.startswith("gateway/sandbox/"):
            out.append(Violation(path, line, "adapters-import",
                                 f"imports {module}; only gateway/composition.py may"))
        if _is_simulator(module) and not _may_import_simulators(path):
            out.append(Violation(path, line, "simulator-import",
                                 f"imports simulator module {module}"))
    may_write_outbox = path.startswith(("gateway/outbox/", "migrations/"))
    may_commit = path in ("gateway/storage/uow.py", "gateway/storage/migrate.py",
                          "migrations/env.py") or path.startswith(("tests/", "bench/"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if not may_write_outbox and _writes_outbox(node):
            out.append(Violation(path, node.lineno, "outbox-write",
                                 "writes the outbox table; use gateway.outbox.records"))
        func = node.func
        if not may_commit and isinstance(func, ast.Attribute) and func.attr in _TX_CALLS \
                and not node.args:
            receiver = _receiver_name(func.value)
            if receiver is None or not receiver.endswith("uow"):
                out.append(Violation(path, node.lineno, "commit",
                                     f".{func.attr}() on {receiver or 'an expression'}; only "
                                     "the unit of work commits"))
    return out


def _modules() -> list[Path]:
    files: list[Path] = []
    for top in SCANNED:
        files += [p for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts]
    return sorted(files)


def test_the_codebase_keeps_its_boundaries() -> None:
    violations: list[Violation] = []
    modules = _modules()
    assert len(modules) > 100  # the scan found the code
    for p in modules:
        violations += check_source(p.relative_to(ROOT).as_posix(), p.read_text())
    assert not violations, "\n".join(map(str, violations))


# -- each rule can fail ---------------------------------------------------------------------------

def _rules(path: str, source: str) -> list[tuple[str, int]]:
    return [(v.rule, v.line) for v in check_source(path, source)]


@pytest.mark.parametrize("source", [
    "import adapters.rails\n",
    "from adapters.partners.px1 import Px1Adapter\n",
    "def f():\n    from adapters import rails\n",
])
def test_gateway_importing_adapters_fails(source: str) -> None:
    rules = _rules("gateway/messages/x.py", source)
    assert rules and rules[-1][0] == "adapters-import"
    assert _rules("gateway/composition.py", source) == []
    assert _rules("gateway/sandbox/demo.py", source) == []


@pytest.mark.parametrize("source", [
    "from adapters.partners.common.simulator import PartnerSimulator\n",
    "from adapters.rails._sim.faults import Faults\n",
    "def f():\n    from adapters.partners.px1 import simulator\n",
    "from .simulator import X\n",
])
def test_importing_a_simulator_fails(source: str) -> None:
    violations = check_source("adapters/partners/px1/adapter.py", source)
    assert [v.rule for v in violations] == ["simulator-import"] * len(violations)
    assert violations and "adapters/partners/px1/adapter.py:" in str(violations[0])
    for allowed in ("gateway/sandbox/simulators.py", "tests/e2e/test_x.py",
                    "adapters/partners/np_feb/simulator.py", "adapters/rails/_sim/server.py"):
        assert _rules(allowed, source) == []


@pytest.mark.parametrize("source", [
    "update(outbox).values(state='done')\n",
    "x = 1\nawait conn.execute(insert(outbox).values(kind='k'))\n",
    "sa.delete(outbox)\n",
    "pg_insert(outbox)\n",
    "outbox.update().values(state='done')\n",
])
def test_writing_the_outbox_outside_records_fails(source: str) -> None:
    rules = _rules("gateway/payments/x.py", source)
    assert rules == [("outbox-write", source.count("\n"))]
    assert _rules("gateway/outbox/records.py", source) == []
    assert _rules("gateway/payments/x.py", "update(payments)\nselect(outbox)\n") == []


@pytest.mark.parametrize("source", [
    "async def f(conn):\n    await conn.commit()\n",
    "async def f(engine):\n    async with engine.begin() as conn:\n        pass\n",
    "async def f(self):\n    await self.tx.commit()\n",
    "async def f(engine):\n    async with engine.connect() as c, c.begin():\n        pass\n",
])
def test_committing_outside_the_unit_of_work_fails(source: str) -> None:
    rules = _rules("gateway/evidence/x.py", source)
    assert [r for r, _ in rules] == ["commit"] and rules[0][1] >= 2
    assert _rules("gateway/storage/uow.py", source) == []
    ok = ("async def f(self, uow):\n    await uow.commit()\n    await self.uow.commit()\n"
          "    progress.begin('a step')\n")
    assert _rules("gateway/evidence/x.py", ok) == []
