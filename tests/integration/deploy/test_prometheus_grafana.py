"""deploy/prometheus and deploy/grafana: checked by promtool, and every expression names only
metrics the gateway exports (the fixed list in docs/operations.md)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.support.deploytools import DEPLOY, require_tool

PROM = DEPLOY / "prometheus"
# The gateway's metric names (issue 12; docs/operations.md, "Metrics, probes and logs").
METRICS = {
    "px_http_request_duration_seconds", "px_intake_messages_total", "px_outbox_depth",
    "px_outbox_oldest_age_seconds", "px_outbox_delivery_seconds", "px_outbox_retries_total",
    "px_outbox_dead_letters", "px_payments", "px_circuit_open", "px_evidence_chain_lag_records",
    "px_evidence_chain_lag_seconds", "px_reconciliation_last_verdict",
    "px_reconciliation_residual_minor", "px_key_expiry_days",
}
HISTOGRAMS = {"px_http_request_duration_seconds", "px_outbox_delivery_seconds"}
# What PromQL spells like a metric but is not one.
PROMQL = {"sum", "max", "min", "avg", "by", "without", "rate", "delta", "abs", "and", "or",
          "histogram_quantile", "le", "up", "on", "ignoring", "unless", "count"}


def _metric_names(expr: str) -> set[str]:
    bare = re.sub(r"\{[^}]*\}", "", expr)  # label matchers hold values, not metric names
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare)) - PROMQL
    names = {n for n in names if not re.fullmatch(r"\d.*", n)}
    # by (...) / without (...) list labels
    for group in re.findall(r"(?:by|without)\s*\(([^)]*)\)", expr):
        names -= {g.strip() for g in group.split(",")}
    return names


def _known(name: str) -> bool:
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return True
    return name in METRICS


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool", "prometheus")
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60,
                          cwd=PROM)


def test_promtool_checks_the_rules() -> None:
    result = _promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_checks_the_config() -> None:
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_alerts() -> None:
    result = _promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_finds_a_broken_rule(tmp_path: Path) -> None:
    """The checks above can fail: the same file with one expression broken."""
    text = (PROM / "alerts.yml").read_text().replace("> 900", "> > 900", 1)
    (tmp_path / "alerts.yml").write_text(text)
    shutil.copy(PROM / "prometheus.yml", tmp_path)
    promtool = require_tool("promtool", "prometheus")
    result = subprocess.run([promtool, "check", "rules", str(tmp_path / "alerts.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_alerts_cover_the_issue_and_name_known_metrics() -> None:
    rules = [r for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
             for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {"PxDeadLettersGrowing", "PxOutboxOldestTaskOld", "PxPaymentsStuckUnknown",
            "PxCircuitOpen", "PxEvidenceChainLag", "PxReconciliationIncomplete",
            "PxReconciliationResidual", "PxKeyExpiringSoon"} <= names
    docs = (DEPLOY.parent / "docs" / "operations.md").read_text()
    for rule in rules:
        unknown = {n for n in _metric_names(rule["expr"]) if not _known(n)} - {"up"}
        assert not unknown, f"{rule['alert']}: {unknown}"
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        heading = anchor.replace("-", " ")
        assert re.search(rf"(?im)^#+ {re.escape(heading)}\s*$", docs), \
            f"{rule['alert']}: no runbook heading for #{anchor} in docs/operations.md"


def test_dashboard_panels_name_known_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana" / "px-dashboard.json").read_text())
    assert dash["uid"] and dash["panels"]
    seen: set[str] = set()
    for panel in dash["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = _metric_names(target["expr"])
            assert names, panel["title"]
            unknown = {n for n in names if not _known(n)}
            assert not unknown, f"panel {panel['title']!r}: {unknown}"
            seen |= {re.sub(r"_(bucket|count|sum)$", "", n) for n in names}
    assert seen == METRICS, f"metrics with no panel: {METRICS - seen}"
