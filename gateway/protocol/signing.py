"""Detached JWS (RFC 7515 Appendix F) and bearer JWTs for PX/1, on ``joserfc``.

The protected header is parsed and checked by hand *before* the library sees it, because PX/1 is
stricter than JOSE: only ``EdDSA`` and ``ES256``, and none of ``b64``/``crit``/``jku``/``x5u``/
``jwk``/``x5c``. A key id names exactly one key of exactly one party, so the signer is found from
``kid`` alone and the body is verified byte for byte before it is parsed for anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey

from gateway.errors import AuthError, ConfigError
from gateway.protocol.strictjson import forbidden_character

__all__ = [
    "ALGORITHMS",
    "KeyRing",
    "PartyKey",
    "Signer",
    "VerifiedSignature",
    "b64url_decode",
    "b64url_encode",
    "generate_private_jwk",
    "parse_public_key",
    "public_jwk",
    "verify_detached",
]

# joserfc flags EdDSA as superseded by RFC 9864's "Ed25519"; PX/1 names "EdDSA" on the wire.
warnings.filterwarnings("ignore", category=SecurityWarning)

ALGORITHMS = ("EdDSA", "ES256")
_ALG_FOR_KEY = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256"}
_ALLOWED_HEADER = frozenset({"alg", "kid", "typ", "cty"})
MAX_TOKEN_LIFETIME = 300
TOKEN_LEEWAY = 30

Key = OKPKey | ECKey


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if any(c in text for c in "+/= \n"):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _import(jwk: Mapping[str, Any]) -> Key:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if (kty, crv) not in _ALG_FOR_KEY:
        raise ConfigError(f"key {jwk.get('kid')!r}: only OKP/Ed25519 and EC/P-256 keys are allowed")
    if not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
        raise ConfigError("every key needs a non-empty 'kid'")
    # 'exp' (NumericDate, as in OpenID Federation key sets): when the key is to be replaced;
    # reported as px_key_expiry_days, never enforced on signatures.
    if "exp" in jwk and (not isinstance(jwk["exp"], int) or isinstance(jwk["exp"], bool)):
        raise ConfigError(f"key {jwk['kid']!r}: 'exp' must be an integer timestamp")
    try:
        return OKPKey.import_key(dict(jwk)) if kty == "OKP" else ECKey.import_key(dict(jwk))
    except (JoseError, ValueError, TypeError, binascii.Error) as exc:
        raise ConfigError(f"key {jwk['kid']!r} is not a valid JWK: {exc}") from exc


def public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """Return the public members of a JWK (drops ``d``)."""
    keep = ("kty", "crv", "x", "y", "kid", "use", "alg", "exp", "nbf")
    return {k: jwk[k] for k in keep if k in jwk}


def generate_private_jwk(kid: str, alg: str = "EdDSA") -> dict[str, Any]:
    """Generate a new private JWK for ``alg`` with the given key id."""
    if alg == "EdDSA":
        key: Key = OKPKey.generate_key("Ed25519", private=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", private=True)
    else:
        raise ConfigError(f"unsupported algorithm {alg!r}")
    data = key.as_dict(private=True)
    data["kid"] = kid
    return data


@dataclass(frozen=True, slots=True)
class PartyKey:
    """One public key of one party."""

    kid: str
    party: str
    alg: str
    key: Key
    jwk: dict[str, Any]


def parse_public_key(party: str, jwk: Mapping[str, Any]) -> PartyKey:
    """Validate one public JWK of ``party`` (allowed key type and curve, a kid, no ``d``).

    Raises:
        ConfigError: naming what is wrong with it.
    """
    if "d" in jwk:
        raise ConfigError(f"{party}: key {jwk.get('kid')!r} is a private key; "
                          "the registry holds public keys only")
    key = _import(jwk)
    alg = _ALG_FOR_KEY[(jwk["kty"], jwk["crv"])]
    return PartyKey(jwk["kid"], party, alg, key, public_jwk(jwk))


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    kid: str
    party: str
    alg: str


class KeyRing:
    """Public keys of all parties, indexed by key id (unique across parties)."""

    def __init__(self, retired: frozenset[str] = frozenset()) -> None:
        self._by_kid: dict[str, PartyKey] = {}
        # Key ids a partner used before and may no longer: refused as key_retired rather than
        # unknown_key, so the partner learns what to fix.
        self.retired = retired

    def add_keyset(self, party: str, jwks: Mapping[str, Any]) -> None:
        """Add a party's JWKS; refuse private keys and key ids already used by anyone."""
        keys = jwks.get("keys")
        if not isinstance(keys, list) or not keys:
            raise ConfigError(f"{party}: key set must be a JWKS with a non-empty 'keys' list")
        for jwk in keys:
            if not isinstance(jwk, dict):
                raise ConfigError(f"{party}: every entry of 'keys' must be a JWK object")
            self.put(parse_public_key(party, jwk))

    def put(self, key: PartyKey) -> None:
        """Add one key; refuse a key id already used by anyone."""
        if key.kid in self._by_kid:
            other = self._by_kid[key.kid].party
            raise ConfigError(f"{key.party}: key id {key.kid!r} is already used by {other}")
        self._by_kid[key.kid] = key

    def get(self, kid: str) -> PartyKey | None:
        return self._by_kid.get(kid)

    def __iter__(self) -> Iterator[PartyKey]:
        return iter(list(self._by_kid.values()))

    def of_party(self, party: str) -> list[PartyKey]:
        return [k for k in self._by_kid.values() if k.party == party]


def _parse_header(signature: str) -> tuple[str, dict[str, Any], str]:
    parts = signature.split(".")
    if len(parts) != 3:
        raise AuthError("signature_invalid", "X-JWS-Signature must be <protected>..<signature>")
    protected_b64, payload_b64, sig_b64 = parts
    if payload_b64:
        raise AuthError("signature_invalid", "the JWS must be detached (empty payload part)")
    try:
        header = json.loads(b64url_decode(protected_b64))
    except (ValueError, UnicodeDecodeError):
        raise AuthError("signature_invalid", "the protected header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise AuthError("signature_invalid", "the protected header must be a JSON object")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise AuthError("signature_invalid", f"alg {alg!r} is refused (EdDSA or ES256 only)")
    extra = set(header) - _ALLOWED_HEADER
    if extra:
        raise AuthError("signature_invalid",
                        f"protected header members {sorted(extra)} are refused")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise AuthError("signature_invalid", "the protected header has no kid")
    if not sig_b64:
        raise AuthError("signature_invalid", "the signature part is empty")
    return protected_b64, header, sig_b64


def _unknown(keys: KeyRing, kid: object) -> AuthError:
    if isinstance(kid, str) and kid in keys.retired:
        return AuthError("key_retired", f"key id {kid!r} was retired; sign with the partner's "
                         "current key")
    return AuthError("unknown_key", f"no partner holds key id {kid!r}")


def verify_detached(body: bytes, signature: str | None, keys: KeyRing) -> VerifiedSignature:
    """Verify a detached JWS over the exact ``body`` bytes; return who signed it.

    Raises:
        AuthError: signature_missing, signature_invalid, unknown_key or key_retired.
    """
    if not signature:
        raise AuthError("signature_missing", "the X-JWS-Signature header is required")
    protected_b64, header, sig_b64 = _parse_header(signature.strip())
    party_key = keys.get(header["kid"])
    if party_key is None:
        raise _unknown(keys, header["kid"])
    if header["alg"] != party_key.alg:
        raise AuthError("signature_invalid",
                        f"key {party_key.kid!r} signs with {party_key.alg}, not {header['alg']}")
    # The body goes in as the detached payload, not re-encoded into the compact form: the
    # library caps an attached payload at 128,000 base64 characters (96,000 bytes), far
    # below the hub's body limit, which the caller has already enforced.
    try:
        jws.deserialize_compact(f"{protected_b64}..{sig_b64}", party_key.key,
                                algorithms=[party_key.alg], payload=body)
    except (JoseError, ValueError, binascii.Error):
        raise AuthError("signature_invalid",
                        "the signature does not verify over the body") from None
    return VerifiedSignature(party_key.kid, party_key.party, party_key.alg)


class Signer:
    """One party's signing key set, rotated in its key file (no database):

    - a key may carry ``nbf`` (NumericDate): it is published at once and signs from then on,
      so the hub's JWKS lists a new key for as long before it signs as its ``nbf`` is away;
    - a key with ``"px_state": "retired"`` neither signs nor is published; it stays in the
      file so that the hub's own ``audit verify`` still checks what it signed;
    - of the others, the key with the latest ``nbf`` not in the future signs (a key without
      ``nbf`` counts as valid for ever); ties go to the first in the file, so a file of plain
      keys signs with its first and publishes all of them.
    """

    def __init__(self, party: str, private_jwks: Iterable[Mapping[str, Any]],
                 clock: Callable[[], float] = time.time) -> None:
        jwks = list(private_jwks)
        if not jwks:
            raise ConfigError(f"{party}: no signing key")
        for jwk in jwks:
            if "d" not in jwk:
                raise ConfigError(f"{party}: signing key {jwk.get('kid')!r} has no private part")
            nbf = jwk.get("nbf")
            if nbf is not None and (not isinstance(nbf, int) or isinstance(nbf, bool)):
                raise ConfigError(f"{party}: key {jwk.get('kid')!r}: 'nbf' must be an integer "
                                  "timestamp")
            if jwk.get("px_state", "active") not in ("active", "retired"):
                raise ConfigError(f"{party}: key {jwk.get('kid')!r}: 'px_state' must be "
                                  "'active' or 'retired'")
        self.party = party
        self._clock = clock
        live = [j for j in jwks if j.get("px_state") != "retired"]
        self._signing = [(float(j.get("nbf", float("-inf"))), j["kid"],
                          _ALG_FOR_KEY[(j["kty"], j["crv"])], _import(j)) for j in live]
        for j in jwks:
            _import(j)  # a retired key must still be a valid one: it verifies old records
        self._public = [public_jwk(j) for j in live]
        self._all_public = [public_jwk(j) for j in jwks]
        if not self._signing or min(nbf for nbf, *_ in self._signing) > clock():
            raise ConfigError(f"{party}: no key of the set may sign now (every key is "
                              "retired or has an 'nbf' in the future)")

    def _current(self) -> tuple[str, str, Key]:
        now = self._clock()
        best: tuple[float, str, str, Key] | None = None
        for entry in self._signing:
            if entry[0] <= now and (best is None or entry[0] > best[0]):
                best = entry
        assert best is not None  # checked at load, and time only moves on
        return best[1], best[2], best[3]

    @property
    def kid(self) -> str:
        return self._current()[0]

    @property
    def alg(self) -> str:
        return self._current()[1]

    def sign(self, body: bytes) -> str:
        """Return the detached JWS ``<protected>..<signature>`` over ``body``."""
        return self.sign_with_kid(body)[1]

    def sign_with_kid(self, body: bytes) -> tuple[str, str]:
        """The key id and the detached JWS of one signature (the kid a record stores must be
        the one that signed, also at the instant a rotation takes effect)."""
        kid, alg, key = self._current()
        out = jws.serialize_compact({"alg": alg, "kid": kid}, body, key, algorithms=[alg])
        protected, _, sig = out.split(".")
        return kid, f"{protected}..{sig}"

    def jwks(self) -> dict[str, Any]:
        """The published keys: every key but the retired ones, future ones included."""
        return {"keys": list(self._public)}

    def verification_jwks(self) -> dict[str, Any]:
        """Every key, retired ones too: what verifies the records this party ever signed."""
        return {"keys": list(self._all_public)}

    def token(self, audience: str, ttl: int = 120, now: float | None = None) -> str:
        """Issue a bearer JWT for a GET request (iss = sub = this party, unique jti)."""
        iat = int(now if now is not None else time.time())
        claims = {"iss": self.party, "sub": self.party, "aud": audience, "iat": iat,
                  "exp": iat + ttl, "jti": str(uuid.uuid4())}
        kid, alg, key = self._current()
        return jwt.encode({"alg": alg, "kid": kid, "typ": "JWT"}, claims, key,
                          algorithms=[alg])


@dataclass(frozen=True, slots=True)
class TokenClaims:
    party: str
    jti: str
    expires_at: int


def verify_token(authorization: str | None, keys: KeyRing, audience: str,
                 now: float | None = None) -> TokenClaims:
    """Verify ``Authorization: Bearer <JWT>``; return the party, jti and expiry.

    The caller must still record the jti to refuse a replay.

    Raises:
        AuthError: token_invalid, unknown_key or key_retired.
    """
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError("token_invalid", "Authorization: Bearer <JWT> is required")
    token = authorization[len("Bearer "):].strip()
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        raise AuthError("token_invalid", "the bearer token is not a compact JWT")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except (ValueError, UnicodeDecodeError):
        raise AuthError("token_invalid", "the token header is not base64url JSON") from None
    if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS:
        raise AuthError("token_invalid", "the token's alg must be EdDSA or ES256")
    extra = set(header) - _ALLOWED_HEADER
    if extra:
        raise AuthError("token_invalid", f"token header members {sorted(extra)} are refused")
    party_key = keys.get(str(header.get("kid")))
    if party_key is None:
        raise _unknown(keys, header.get("kid"))
    try:
        decoded = jwt.decode(token, party_key.key, algorithms=[party_key.alg])
    except (JoseError, ValueError):
        raise AuthError("token_invalid", "the token's signature does not verify") from None
    c = decoded.claims
    party = party_key.party
    t = int(now if now is not None else time.time())
    if c.get("iss") != party or c.get("sub") != party:
        raise AuthError("token_invalid", f"iss and sub must both be {party}")
    aud = c.get("aud")
    if aud != audience and not (isinstance(aud, list) and aud == [audience]):
        raise AuthError("token_invalid", f"aud must be {audience}")
    iat, exp, jti = c.get("iat"), c.get("exp"), c.get("jti")
    if not isinstance(iat, int) or not isinstance(exp, int):
        raise AuthError("token_invalid", "iat and exp must be integer timestamps")
    if exp - iat > MAX_TOKEN_LIFETIME or exp <= iat:
        raise AuthError("token_invalid", f"exp must be within {MAX_TOKEN_LIFETIME} s after iat")
    if exp + TOKEN_LEEWAY < t:
        raise AuthError("token_invalid", "the token has expired")
    if iat - TOKEN_LEEWAY > t:
        raise AuthError("token_invalid", "the token was issued in the future")
    nbf = c.get("nbf")
    if nbf is not None and (not isinstance(nbf, int) or nbf - TOKEN_LEEWAY > t):
        raise AuthError("token_invalid", "the token is not valid yet (nbf)")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
        raise AuthError("token_invalid", "jti must be a unique string of 8-128 characters")
    if forbidden_character(jti, free_text=False) is not None:
        # The jti is stored to refuse replays: it must be plain text for every database.
        raise AuthError("token_invalid", "jti holds a control or bidi-override character")
    return TokenClaims(party, jti, exp)
