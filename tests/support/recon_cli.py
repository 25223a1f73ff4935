"""``gateway`` with the scripted test rail in its rail table (``python -m
tests.support.recon_cli reconcile ...``): the real CLI, run as a process, reading a scripted
statement. Only the adapter table differs, as a deployment's composition root would."""

from __future__ import annotations

from gateway import composition
from gateway.cli import main
from gateway.payments.rails import RailKind
from tests.support.recon import ScriptedConfig, ScriptedRail

composition.RAIL_KINDS["scripted"] = RailKind(ScriptedConfig, ScriptedRail)

if __name__ == "__main__":
    main()
