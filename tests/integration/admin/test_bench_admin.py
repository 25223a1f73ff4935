"""``python -m bench.admin`` at a tiny size, so the benchmark cannot rot: it loads, reads every
admin list's pages through the app at two sizes and reports (no timing is asserted)."""

from __future__ import annotations

import pytest

from bench import admin
from tests.support.databases import PgTemplate


def test_the_admin_benchmark_runs_at_a_tiny_size(pg_template: PgTemplate,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    results = admin.run([1000, 2000], repeat=1, limit=10)
    names = {(c.name, page) for c in admin.cases(2000, largest=2000)
             for page in (("first", "deep") if c.deep else ("first",))}
    assert set(results) == {1000, 2000}
    assert set(results[1000]) == set(results[2000]) == names
    assert all(p50 > 0 and p99 >= p50 for f in results.values() for p50, p99 in f.values())
    admin.report(results)
    out = capsys.readouterr().out
    assert "messages?payment" in out and "worst ratio 2,000/1,000 rows" in out
