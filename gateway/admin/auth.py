"""Who is calling the admin API: bearer JWTs of the organisation's OIDC identity provider.

A token is accepted only if its header names an algorithm of the allow-list
(``GATEWAY_ADMIN_ALGORITHMS``; never ``none`` nor a symmetric one, which would let anyone who
can read the JWKS mint tokens) and a ``kid`` of the provider's JWKS, its signature verifies,
``iss`` is the configured issuer, ``aud`` names the configured audience, and ``exp`` (required)
and ``nbf``/``iat`` hold within a small leeway. The JWKS comes from a file or a URL; a URL's
keys are cached and fetched again when a token names an unknown ``kid`` (at most once per
``REFETCH_SECONDS``, so a flood of made-up kids cannot hammer the provider), which is how a
provider's key rotation is picked up.

Roles come from a configurable claim (``GATEWAY_ADMIN_ROLES_CLAIM``, default ``roles``; a
dotted path such as ``realm_access.roles`` reaches into nested claims), a list of strings or
one space-separated string; names outside ``ROLES`` are ignored. Partner keys and back-office
service tokens are not in the provider's JWKS, so they are refused like any other stranger.

A development instance without OIDC settings has a local issuer: its private key is generated
(owner-only) beside the hub's signing key when the hub is first built, and ``gateway admin
token`` mints short-lived tokens.
Production has no local issuer and no default accounts: without issuer, audience and JWKS the
hub refuses to start.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from gateway.config import Settings
from gateway.errors import AuthError, ConfigError, ForbiddenError
from gateway.protocol.signing import b64url_decode, generate_private_jwk, public_jwk
from gateway.secretfiles import write_private

__all__ = [
    "DEV_AUDIENCE", "DEV_ISSUER", "ROLES", "AdminIdentity", "AdminVerifier", "JwksCache",
    "build_verifier", "mint_token", "write_dev_issuer",
]

ROLES = ("viewer", "operator", "approver", "auditor", "admin")
DEV_ISSUER = "urn:px-gateway:dev-admin"
DEV_AUDIENCE = "px-gateway-admin"
LEEWAY = 30  # seconds of clock difference tolerated between the provider and the hub
MAX_DEV_MINUTES = 8 * 60
REFETCH_SECONDS = 30.0  # a URL's JWKS is fetched at most this often for an unknown kid
CACHE_SECONDS = 600.0  # and at least this often anyway
_ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                         "ES384", "ES512", "EdDSA"})

Key = RSAKey | ECKey | OKPKey


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    """A person proved by their identity provider's token."""

    user: str
    issuer: str
    roles: frozenset[str]


class JwksCache:
    """The identity provider's public keys, from a file or a URL, refreshed on unknown kid."""

    def __init__(self, *, file: Path | None = None, url: str | None = None,
                 http: httpx.AsyncClient | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if (file is None) == (url is None):
            raise ConfigError("give exactly one of GATEWAY_ADMIN_OIDC_JWKS_FILE and "
                              "GATEWAY_ADMIN_OIDC_JWKS_URL")
        self._file, self._url, self._http = file, url, http
        self._now = monotonic
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        if file is not None:
            self._keys = _keyset(_read_json(file), str(file))
            self._fetched_at = self._now()

    async def key(self, kid: str) -> Key | None:
        """Return the key ``kid``, refreshing the set once if it is unknown or stale."""
        found = self._find(kid)
        stale = self._now() - self._fetched_at > CACHE_SECONDS
        if (found is None or stale) and self._now() - self._fetched_at >= REFETCH_SECONDS:
            await self._refresh()
            found = self._find(kid)
        return found

    def _find(self, kid: str) -> Key | None:
        if self._keys is None:
            return None
        for k in self._keys.keys:
            if k.kid == kid:
                return k  # type: ignore[return-value]
        return None

    async def _refresh(self) -> None:
        self._fetched_at = self._now()
        if self._file is not None:
            with contextlib.suppress(ConfigError):  # a file being rewritten: keep the keys
                self._keys = _keyset(_read_json(self._file), str(self._file))
            return
        assert self._url is not None
        client = self._http or httpx.AsyncClient()
        try:
            answer = await client.get(self._url, timeout=5.0)
            answer.raise_for_status()
            self._keys = _keyset(answer.json(), self._url)
        except (httpx.HTTPError, ValueError, ConfigError):
            # The provider is unreachable: keep the keys we had; unknown kids stay unknown.
            pass
        finally:
            if self._http is None:
                await client.aclose()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"admin JWKS file {path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"admin JWKS file {path} is not JSON: {exc}") from None


def _keyset(data: Any, where: str) -> KeySet:
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ConfigError(f"admin JWKS {where} must be an object with a 'keys' list")
    public = [k for k in data["keys"] if isinstance(k, dict) and k.get("kty") != "oct"
              and isinstance(k.get("kid"), str) and "d" not in k]
    try:
        return KeySet.import_key_set({"keys": public})
    except (JoseError, ValueError, TypeError) as exc:
        raise ConfigError(f"admin JWKS {where}: {exc}") from None


class AdminVerifier:
    """Verify admin bearer tokens against one issuer, audience and JWKS."""

    def __init__(self, *, issuer: str, audience: str, jwks: JwksCache, roles_claim: str,
                 algorithms: list[str], clock: Callable[[], float] = time.time) -> None:
        bad = sorted(set(algorithms) - _ASYMMETRIC)
        if bad or not algorithms:
            raise ConfigError(f"GATEWAY_ADMIN_ALGORITHMS: {bad or 'empty'}; only asymmetric "
                              f"algorithms ({', '.join(sorted(_ASYMMETRIC))}) are allowed")
        self.issuer, self.audience, self.jwks = issuer, audience, jwks
        self.roles_claim = roles_claim
        self.algorithms = frozenset(algorithms)
        self._clock = clock

    async def authenticate(self, authorization: str | None) -> AdminIdentity:
        """Return the caller of ``Authorization: Bearer <JWT>``.

        Raises:
            AuthError: token_invalid, no token or one this issuer did not sign for this API.
            ForbiddenError: forbidden, a valid token without any admin role.
        """
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("token_invalid", "the admin API needs Authorization: Bearer <token "
                            "from the identity provider>")
        parts = token.split(".")
        if len(parts) != 3:
            raise AuthError("token_invalid", "the bearer token is not a compact JWT")
        try:
            header = json.loads(b64url_decode(parts[0]))
        except (ValueError, UnicodeDecodeError):
            raise AuthError("token_invalid", "the token header is not base64url JSON") from None
        if not isinstance(header, dict) or header.get("alg") not in self.algorithms:
            raise AuthError("token_invalid", "the token's alg is not one this API accepts")
        kid = header.get("kid")
        key = await self.jwks.key(kid) if isinstance(kid, str) and kid else None
        if key is None:
            raise AuthError("token_invalid", "the token's key is not one of the identity "
                            "provider's keys")
        try:
            claims = jwt.decode(token, key, algorithms=[header["alg"]]).claims
        except (JoseError, ValueError, TypeError):
            raise AuthError("token_invalid", "the token's signature does not verify") from None
        return self._identity(claims)

    def _identity(self, c: Mapping[str, Any]) -> AdminIdentity:
        now = int(self._clock())
        if c.get("iss") != self.issuer:
            raise AuthError("token_invalid", "the token is from another issuer")
        aud = c.get("aud")
        if not (aud == self.audience or (isinstance(aud, list) and self.audience in aud)):
            raise AuthError("token_invalid", "the token is for another audience")
        exp = c.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise AuthError("token_invalid", "the token has no integer exp")
        if exp + LEEWAY < now:
            raise AuthError("token_invalid", "the token has expired")
        for name in ("nbf", "iat"):
            value = c.get(name)
            if value is not None and (not isinstance(value, int) or value - LEEWAY > now):
                raise AuthError("token_invalid", f"the token is not valid yet ({name})")
        sub = c.get("sub")
        if not isinstance(sub, str) or not 1 <= len(sub) <= 200 or not sub.isprintable():
            raise AuthError("token_invalid", "the token has no usable sub")
        roles = frozenset(r for r in _claim_roles(c, self.roles_claim) if r in ROLES)
        if not roles:
            raise ForbiddenError("forbidden", f"the token grants none of the admin roles "
                                 f"({', '.join(ROLES)}) in claim {self.roles_claim!r}")
        return AdminIdentity(sub, self.issuer, roles)


def _claim_roles(claims: Mapping[str, Any], path: str) -> list[str]:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _public_path(private: Path) -> Path:
    stem = private.name.removesuffix(".json").removesuffix(".jwk")
    return private.with_name(stem + ".jwks.json")


def _dev_issuer_jwks(settings: Settings) -> Path:
    return _public_path(settings.admin_dev_key)


def build_verifier(settings: Settings) -> AdminVerifier:
    """The verifier the settings describe; the local issuer on an unconfigured development
    instance.

    Raises:
        ConfigError: production without complete OIDC settings, or bad settings.
    """
    s = settings
    configured = s.admin_oidc_issuer or s.admin_oidc_audience or s.admin_oidc_jwks_file \
        or s.admin_oidc_jwks_url
    if configured or s.is_production:
        if not (s.admin_oidc_issuer and s.admin_oidc_audience
                and (s.admin_oidc_jwks_file or s.admin_oidc_jwks_url)):
            raise ConfigError("the admin API needs GATEWAY_ADMIN_OIDC_ISSUER, "
                              "GATEWAY_ADMIN_OIDC_AUDIENCE and GATEWAY_ADMIN_OIDC_JWKS_FILE or "
                              "GATEWAY_ADMIN_OIDC_JWKS_URL")
        jwks = JwksCache(file=s.admin_oidc_jwks_file, url=s.admin_oidc_jwks_url)
        return AdminVerifier(issuer=s.admin_oidc_issuer, audience=s.admin_oidc_audience,
                             jwks=jwks, roles_claim=s.admin_roles_claim,
                             algorithms=s.admin_algorithms)
    if not s.admin_dev_key.exists():
        write_dev_issuer(s.admin_dev_key)
    return AdminVerifier(issuer=DEV_ISSUER, audience=DEV_AUDIENCE,
                         jwks=JwksCache(file=_dev_issuer_jwks(s)), roles_claim="roles",
                         algorithms=["EdDSA"])


def write_dev_issuer(path: Path) -> None:
    """Create the development issuer's private key (owner-only) and its public JWKS."""
    jwk = generate_private_jwk(f"admin-dev-{uuid.uuid4().hex[:8]}", "EdDSA")
    write_private(path, json.dumps(jwk, indent=1))
    _public_path(path).write_text(json.dumps({"keys": [public_jwk(jwk)]}),
                                              encoding="utf-8")


def mint_token(settings: Settings, *, user: str, roles: list[str], minutes: int,
               now: float | None = None) -> str:
    """Mint a development admin token with the local issuer's key.

    Raises:
        ConfigError: production or an OIDC-configured instance (its provider mints tokens),
            an unknown role, a bad lifetime, or no local issuer key yet.
    """
    if settings.is_production or settings.admin_oidc_issuer:
        raise ConfigError("admin tokens come from the identity provider here; the local "
                          "issuer exists only on an unconfigured development instance")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise ConfigError(f"role {', '.join(unknown) or '(none)'} is not one of {', '.join(ROLES)}")
    if not 1 <= minutes <= MAX_DEV_MINUTES:
        raise ConfigError(f"--minutes must be between 1 and {MAX_DEV_MINUTES}")
    if not user or not user.isprintable() or len(user) > 200:
        raise ConfigError("--user must be 1-200 printable characters")
    path = settings.admin_dev_key
    if not path.exists():
        write_dev_issuer(path)
    jwk = _read_json(path)
    key = OKPKey.import_key(jwk)
    t = int(now if now is not None else time.time())
    claims = {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": user, "roles": roles,
              "iat": t, "nbf": t, "exp": t + minutes * 60, "jti": uuid.uuid4().hex}
    return jwt.encode({"alg": "EdDSA", "kid": jwk["kid"]}, claims, key, algorithms=["EdDSA"])
