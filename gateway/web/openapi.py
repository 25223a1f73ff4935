"""The OpenAPI document says what the server sends: every error is problem+json.

FastAPI documents a ``422 HTTPValidationError`` the hub never sends (its validation errors are
problem+json, ``gateway.web.problems``) and nothing of the statuses that the edge guard,
authentication and the services answer. ``install_openapi`` post-processes the generated
document once: the ``Problem`` schema, the problem statuses every operation can answer, and
the service-token scheme of the back office. A bounded schemathesis run against the live
server checks the result (tests/e2e/edge/test_openapi_conformance.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["PROBLEM_SCHEMA", "install_openapi"]

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "code": {"type": "string"},
        "detail": {"type": "string"}, "message_id": {"type": "string"},
    },
}
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

# What any operation can answer: the edge guard (400 ambiguous or unparsable body, 413, 422
# control characters in the path or query, 431), routing (404) and validation (422).
_EVERYWHERE = {
    400: "malformed_json", 404: "not_found", 413: "payload_too_large",
    422: "schema_violation", 431: "headers_too_large",
}
_AUTHENTICATED = {401: "token_invalid, unknown_key, token_replayed, signature_*",
                  403: "forbidden, partner_suspended, sender_mismatch, recipient_unknown"}
_BODY = {415: "unsupported_media_type"}
_PUBLIC = frozenset({"/.well-known/jwks.json", "/healthz", "/livez", "/readyz", "/metrics"})
_SERVICE_TOKEN = {"serviceToken": {"type": "http", "scheme": "bearer",
                                   "description": "a back-office service token"}}
_ADMIN_TOKEN = {"adminBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                "description": "an OIDC access token of the organisation's "
                                               "identity provider with admin roles "
                                               "(docs/admin.md)"}}
# Admin acts can also meet a state that forbids them (and four-eyes refusals are 403s), or a
# payment changed beside the hub, which is held (docs/evidence.md).
_ADMIN_ACTS = {409: "state_conflict, proposal_expired, evidence_mismatch",
               403: "forbidden, four_eyes"}
_PAYMENT_ACTS = {409: "state_conflict, evidence_mismatch"}


def _document(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    spec["components"]["securitySchemes"] = _SERVICE_TOKEN | _ADMIN_TOKEN
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            statuses = dict(_EVERYWHERE)
            if path not in _PUBLIC:
                statuses.update(_AUTHENTICATED)
            if method in ("post", "put", "patch"):
                statuses.update(_BODY)
                if path.startswith("/admin/"):
                    statuses.update(_ADMIN_ACTS)
                elif path.startswith("/v1/backoffice/payments/"):
                    statuses.update(_PAYMENT_ACTS)
            responses = op.setdefault("responses", {})
            for status, codes in statuses.items():
                known = responses.get(str(status), {})
                description = known.get("description") or f"problem+json; codes: {codes}"
                responses[str(status)] = {"description": description, "content": _PROBLEM}
            for status, response in responses.items():
                if status[0] in "45" and "content" in response:
                    response["content"] = _PROBLEM
            if path.startswith("/v1/backoffice/"):
                op["security"] = [{"serviceToken": []}]
            if path.startswith("/admin/"):
                op["security"] = [{"adminBearer": []}]
    return spec


def install_openapi(app: FastAPI) -> None:
    """Serve the post-processed document at ``/openapi.json`` (built once, on first use)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes))
        return app.openapi_schema
    app.openapi = openapi  # type: ignore[method-assign]
