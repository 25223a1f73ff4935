"""Tooling, not product: simulators on loopback, ``gateway demo`` and ``gateway simulate``.

Used by those two commands, the tests and the benchmarks; nothing else in ``gateway/``
imports this package (tests/unit/lint/test_architecture.py checks it).

simulators.py  which simulator stands in for which partner or rail adapter
rails.py       start rail simulators and write a rails file pointing at them
simulate.py    ``gateway simulate partner|rail``
demo/          ``gateway demo``: the scripted end-to-end scenario
"""
