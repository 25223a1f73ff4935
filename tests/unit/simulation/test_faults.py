"""The one fault plan speaks both vocabularies: the rails' rules and the partners' counts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.simulation import Fault, Faults


def test_partner_faults_count_down_and_stay_at_zero() -> None:
    f = Faults()
    f.set("error_after", 2)
    assert [f.take("error_after") for _ in range(3)] == [True, True, False]
    assert f.counts == {"error_after": 0}
    f.set("error_after", 1)  # re-arming replaces what is left
    assert f.counts == {"error_after": 1}


def test_partner_switches_and_slow_seconds() -> None:
    f = Faults()
    f.set("down", 1)
    f.duplicate = True
    f.set("slow", 1, seconds=0.5)
    assert f.down and f.duplicate and f.counts == {"slow": 1}
    rule = f.draw(Fault.slow)
    assert rule is not None and rule.seconds == 0.5
    f.set("down", 0)
    assert not f.down and f.duplicate
    f.clear()
    assert not f.down and not f.duplicate and f.counts == {}


def test_each_vocabulary_refuses_the_other() -> None:
    f = Faults()
    with pytest.raises(ValueError, match="unknown fault 'latency'"):
        f.set("latency", 1)
    with pytest.raises(ValidationError):
        f.add("bad_signature")
    f.add("error_after", count=1)  # the one fault both speak
    assert f.take("error_after") and not f.take("error_after")
