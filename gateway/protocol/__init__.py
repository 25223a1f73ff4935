"""PX/1 itself: what the partner contract fixes, independent of storage and HTTP.

envelope.py      envelope and payload models (pydantic), WireMoney, NationalId
national_ids.py  canonical national ids and phone numbers, strictly validated
mm_townships.py  Myanmar NRC township codes by state, keyed by the Burmese code
signing.py       detached JWS, bearer JWTs, key rings
keys.py          key files (the hub's signing key, partners' JWKS)
partners.py      the partner registry (who may speak PX/1, with which keys and adapter)
jsonschema.py    the JSON Schemas in ``schemas/``, generated from envelope.py
"""
