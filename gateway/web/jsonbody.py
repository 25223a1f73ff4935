"""JSON request bodies of the hub's own APIs (back office, admin), read under the strict rules.

FastAPI alone would read such a body with ``json.loads``: a key given twice keeps its last
value, a NUL reaches the database (where PostgreSQL refuses it as a 500), bytes that are not
UTF-8 and a body cut off at the size limit both become a bare ``400 "There was an error
parsing the body"``, and a body sent without a JSON ``Content-Type`` is handed to the model as
a string (a misleading 422). ``strict_request`` reads and parses the body before FastAPI does,
where every refusal is one of the error tree's, so each route answers it as problem+json with
its own code (and an audited route records it). Partner messages do not come this way: their
adapters verify and parse the exact bytes themselves (gateway.messages.intake).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.errors import UnsupportedMediaTypeError
from gateway.protocol import strictjson

__all__ = ["JSON_MEDIA_TYPE", "StrictJSONRequest", "strict_request"]

JSON_MEDIA_TYPE = "application/json"


class StrictJSONRequest(Request):
    """A request whose ``json()`` is ``strictjson.loads`` of its body (parsed once)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strictjson.loads(await self.body(), "body")
        return self._json


async def strict_request(request: Request) -> StrictJSONRequest:
    """The request with its body read and, if it has one, parsed.

    Raises:
        PayloadTooLargeError: payload_too_large, the body streamed past the limit (the edge
            guard cuts it off while it is read here).
        UnsupportedMediaTypeError: unsupported_media_type, a body that is not
            ``application/json``.
        InvalidMessageError: malformed_json or schema_violation (gateway.protocol.strictjson).
    """
    strict = StrictJSONRequest(request.scope, request.receive)
    if await strict.body():
        declared = strict.headers.get("content-type")
        media = (declared or "").split(";", 1)[0].strip().lower()
        if media != JSON_MEDIA_TYPE:
            raise UnsupportedMediaTypeError(
                "unsupported_media_type",
                f"Content-Type {declared!r} is not accepted (a body here is "
                f"{JSON_MEDIA_TYPE})" if declared else
                f"a body needs Content-Type {JSON_MEDIA_TYPE}")
        await strict.json()
    return strict
