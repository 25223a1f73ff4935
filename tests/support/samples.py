"""Canonical sample payloads of every message type, in each partner's identities and scripts.

They live in the sandbox (``gateway example`` writes them too); the tests take them from there.
"""

from __future__ import annotations

from gateway.sandbox.examples import CLAIMS, PERSONS, sample_payload

__all__ = ["CLAIMS", "PERSONS", "sample_payload"]
