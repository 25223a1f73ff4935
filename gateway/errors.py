"""The gateway's error tree.

Every error the gateway raises on purpose is a ``GatewayError``. Errors that a caller can
cause carry a stable problem ``code`` and HTTP ``status``; ``gateway.web.problems`` turns them
into ``application/problem+json`` in one place, and the CLI turns them into a one-line message.

    GatewayError
    ├── ProblemError                    an error a caller caused; has code + status
    │   ├── AuthError                   401: signature_missing, signature_invalid, unknown_key,
    │   │                                    token_invalid, token_replayed
    │   ├── ForbiddenError              403: sender_mismatch, recipient_unknown, partner_suspended,
    │   │                                    client_identity_mismatch,
    │   │                                    client_certificate_required, forbidden,
    │   │                                    four_eyes
    │   ├── NotFoundError               404: not_found
    │   ├── ConflictError               409: id_conflict, payment_conflict, state_conflict,
    │   │   │                                proposal_expired
    │   │   └── StaleTargetError            409: state_conflict, a proposal's frozen target
    │   │                                        changed: its approval is refused
    │   ├── PayloadTooLargeError        413: payload_too_large
    │   ├── HeadersTooLargeError        431: headers_too_large
    │   ├── UnsupportedMediaTypeError   415: unsupported_media_type
    │   ├── InvalidMessageError         400/422: malformed_json, schema_violation, stale_message,
    │   │                                    clock_skew, unknown_type
    │   ├── RateLimitedError            429: rate_limited (with retry_after)
    │   └── UnavailableError            503: not_ready (a probe: database, schema, draining)
    ├── ConfigError                     the operator's configuration is wrong; refuses to start
    ├── ReportWriteError                a run's report files could not be written (its folder,
    │                                       the disk); what the database holds is unaffected
    ├── IntegrityError                  stored evidence does not verify (audit)
    │   └── EvidenceMismatchError       a payment or schedule is not what its newest event
    │                                       recorded: the hub holds it (409 evidence_mismatch)
    └── DeliveryError                   an outbound call failed; ``retryable`` decides retries
        ├── TransientDeliveryError      nothing was delivered; safe to send again later
        ├── OutcomeUnknownError         sent, but no answer: ask before sending again
        └── PermanentDeliveryError      the counterparty refused; retrying cannot help
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DeliveryError",
    "EvidenceMismatchError",
    "ForbiddenError",
    "GatewayError",
    "HeadersTooLargeError",
    "IntegrityError",
    "InvalidMessageError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PayloadTooLargeError",
    "PermanentDeliveryError",
    "ProblemError",
    "RateLimitedError",
    "ReportWriteError",
    "StaleTargetError",
    "TransientDeliveryError",
    "UnavailableError",
    "UnsupportedMediaTypeError",
]


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ProblemError(GatewayError):
    """An error the caller caused, answered as problem+json with a stable code."""

    status: int = 400
    codes: frozenset[str] = frozenset()

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        if self.codes and code not in self.codes:
            raise ValueError(f"{type(self).__name__} has no code {code!r}")
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


class AuthError(ProblemError):
    """The request's signature or token does not prove who sent it."""

    status = 401
    codes = frozenset(
        {"signature_missing", "signature_invalid", "unknown_key", "token_invalid", "token_replayed",
         # a partner key retired through the admin API (gateway.messages.partner_keys)
         "key_retired"}
    )


class ForbiddenError(ProblemError):
    """The caller is known but may not do this."""

    status = 403
    codes = frozenset({"sender_mismatch", "recipient_unknown", "partner_suspended",
                       "client_identity_mismatch", "client_certificate_required", "forbidden",
                       # an admin proposal's approver must differ from its maker and editors
                       "four_eyes"})


class NotFoundError(ProblemError):
    """The resource does not exist, or is not the caller's to see."""

    status = 404
    codes = frozenset({"not_found"})


class ConflictError(ProblemError):
    """The request contradicts something already stored."""

    status = 409
    codes = frozenset({"id_conflict", "payment_conflict", "state_conflict", "proposal_expired"})


class StaleTargetError(ConflictError):
    """A proposal's frozen target changed since it was proposed, so approving is refused."""

    codes = frozenset({"state_conflict"})


class PayloadTooLargeError(ProblemError):
    """The body is larger than the protocol allows."""

    status = 413
    codes = frozenset({"payload_too_large"})


class HeadersTooLargeError(ProblemError):
    """The request's headers are more or larger than the hub accepts."""

    status = 431
    codes = frozenset({"headers_too_large"})


class UnsupportedMediaTypeError(ProblemError):
    """The body's media type is not one the endpoint reads."""

    status = 415
    codes = frozenset({"unsupported_media_type"})


class InvalidMessageError(ProblemError):
    """The message is authentic but not acceptable as it stands."""

    codes = frozenset(
        {"malformed_json", "schema_violation", "stale_message", "clock_skew", "unknown_type",
         "amount_over_ceiling", "amount_invalid"}
    )

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        # Unparseable bytes are a syntax error (400); everything else parsed fine but is
        # semantically unacceptable (422).
        self.status = 400 if code == "malformed_json" else 422


class RateLimitedError(ProblemError):
    """The partner sent more than its configured rate."""

    status = 429
    codes = frozenset({"rate_limited"})

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__("rate_limited", detail)
        self.retry_after = retry_after


class UnavailableError(ProblemError):
    """The process cannot take traffic now (readiness): its database, schema or a shutdown."""

    status = 503
    codes = frozenset({"not_ready"})


class ConfigError(GatewayError):
    """The operator's configuration is invalid; the message says which setting and why."""


class ReportWriteError(GatewayError):
    """A reconciliation run's report files could not be written to their folder. Raised as
    itself, not as the OSError under it: that would read as the database being unreachable,
    and the message says whether the run was stored (so asking again rewrites the files)."""


class IntegrityError(GatewayError):
    """Stored evidence does not verify."""


class EvidenceMismatchError(IntegrityError):
    """A payment or pension schedule about to be written is not what its newest event
    recorded: it was changed beside the hub. Writing over it would record the change as the
    hub's own, so the write is refused until the row is restored (or the change explained);
    nobody's request is at fault, hence not a ``ProblemError``, but the API answers it as
    ``409 evidence_mismatch``."""

    code = "evidence_mismatch"
    status = 409


class DeliveryError(GatewayError):
    """An outbound call to a partner or rail did not succeed."""

    retryable: bool = True
    http_status: int | None = None  # the counterparty's answer, if it answered
    retry_after: int | None = None  # seconds the counterparty asked us to wait
    # Set by a payout handler: the task follows money that may be at the rail, so it is never
    # given up for age (the retry policy alerts instead).
    in_flight: bool = False


class TransientDeliveryError(DeliveryError):
    """Nothing was delivered (refused connection, 5xx before acceptance); send again later."""

    retryable = True


class OutcomeUnknownError(DeliveryError):
    """The request went out but no answer came back; ask for the status before resending."""

    retryable = True


class PermanentDeliveryError(DeliveryError):
    """The counterparty refused the request for good; retrying cannot help."""

    retryable = False
