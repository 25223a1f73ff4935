"""Tooling, not product: simulators on loopback, ``gateway demo`` and ``gateway simulate``.

Used by those commands (and a development ``serve``, for its start-up notes and
``--with-simulators``), the tests and the benchmarks; nothing else in ``gateway/`` imports this
package (tests/unit/lint/test_architecture.py checks it).

simulators.py  which simulator stands in for which partner or rail adapter
rails.py       start rail simulators and write a rails file pointing at them
simulate.py    ``gateway simulate partner|rail``
companions.py  what ``gateway serve`` calls, and ``serve --with-simulators``
examples.py    sample messages: ``gateway example`` and the tests' sample payloads
demo/          ``gateway demo``: the scripted end-to-end scenario
"""
