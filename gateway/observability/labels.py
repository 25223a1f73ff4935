"""Label values from closed sets only: a metric's series are bounded by configuration.

A label value is one of a set known at start (partner ids from the registry, rail names from
the rails file, states from the enums, problem codes from the error tree, route templates
from the router); anything else is reported as ``OTHER``. Raw paths, message or payment ids
never become labels: each new value would be a new series kept for ever by Prometheus.
"""

from __future__ import annotations

from collections.abc import Collection

from gateway import errors

__all__ = ["HTTP_METHODS", "OTHER", "PROBLEM_CODES", "closed", "problem_codes"]

OTHER = "other"

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Codes answered outside the error tree (gateway.web.problems): framework 404/405, an
# unexpected failure and a client that hung up mid-body.
_WEB_CODES = frozenset({"not_found", "method_not_allowed", "http_error", "internal_error"})


def problem_codes() -> frozenset[str]:
    """Every problem code a response can carry: the error tree's and the web layer's."""
    found: set[str] = set(_WEB_CODES)
    pending: list[type[errors.ProblemError]] = [errors.ProblemError]
    while pending:
        cls = pending.pop()
        found |= cls.codes
        pending += cls.__subclasses__()
    return frozenset(found)


PROBLEM_CODES = problem_codes()


def closed(value: str | None, allowed: Collection[str]) -> str:
    """``value`` if it is in ``allowed``, else ``OTHER``."""
    if value is not None and value in allowed:
        return value
    return OTHER
