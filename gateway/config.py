"""Settings, read once from the environment (prefix ``GATEWAY_``) and passed down."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.errors import ConfigError

__all__ = ["Settings", "async_database_url", "read_toml"]


class Settings(BaseSettings):
    """Everything an operator can set. Paths are relative to the working directory."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///./gateway.db"
    partners_file: Path = Path("partners.toml")
    signing_key_file: Path = Path("hub.jwk.json")
    # Back-office (service-to-service) credentials: a TOML file of named bearer tokens.
    backoffice_tokens_file: Path = Path("backoffice.toml")
    rails_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8400, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Dispatchers inside `serve`: the embedded default has no other process to run them.
    dispatch_in_serve: bool = True
    # How often housekeeping creates due pension payments and suspends overdue schedules.
    pension_run_every_seconds: float = Field(default=60.0, gt=0)
    # How often housekeeping signs a checkpoint of the evidence chain's head (docs/evidence.md),
    # and the file it rewrites with the latest ones after each, for shipping off the database.
    evidence_checkpoint_every_seconds: float = Field(default=300.0, gt=0)
    evidence_checkpoint_file: Path | None = None
    # A destination (partner, rail) that failed this often in a row is left alone this long.
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0)
    # A dispatcher's hold on claimed work; a dispatcher that died leaves its work this long
    # before another takes it over (renewed every third of it while a batch runs).
    dispatch_lease_seconds: float = Field(default=60.0, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_message_age_seconds: int = Field(default=24 * 3600, ge=60)
    max_clock_skew_seconds: int = Field(default=300, ge=0)
    # Connections each process keeps open (PostgreSQL); up to half as many again in bursts.
    # Too small a pool churns connections under load: every burst beyond it opens (and
    # then closes) a new PostgreSQL connection, which costs far more CPU than a request.
    db_pool_size: int = Field(default=20, ge=1, le=200)
    log_level: str = "INFO"
    # The request header in which the TLS proxy passes the partner id of a verified client
    # certificate (deploy/nginx/px.conf: X-PX-Client-Partner). Unset: no check. Set it only
    # when the proxy is the sole way in, since the proxy is what makes the header trustworthy.
    client_identity_header: str | None = None
    # json lines (production default) or text (development default); `--log-format` too.
    log_format: Literal["json", "text"] | None = None
    # SIGTERM: fail readiness this long (the proxy stops sending) before stopping to accept;
    # then in-flight requests get up to graceful_timeout_seconds to finish.
    drain_seconds: float = Field(default=5.0, ge=0, le=300)
    graceful_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # A stopping dispatcher lets its batch at hand finish this long, then releases the rest.
    dispatch_stop_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    # The multiprocess metrics directory of `serve`/`dispatch` (emptied at start; default: a
    # fresh temporary directory per command). Database-state gauges are cached this long.
    metrics_dir: Path | None = None
    metrics_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # The probe listener (/livez, /readyz, /metrics) of `dispatch` and of `scheduler`, which
    # run no web app (gateway.observability.listener); `--metrics-port/--metrics-host` win.
    # No port: none is served.
    dispatch_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    dispatch_metrics_host: str = "127.0.0.1"
    scheduler_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    scheduler_metrics_host: str = "127.0.0.1"
    # The ops admin API (/admin/v1, gateway.admin): bearer JWTs of the organisation's OIDC
    # identity provider. Production refuses to start without issuer, audience and a JWKS; a
    # development instance without them uses a local issuer (`gateway admin token`).
    admin_oidc_issuer: str | None = None
    admin_oidc_audience: str | None = None
    admin_oidc_jwks_file: Path | None = None
    admin_oidc_jwks_url: str | None = None
    admin_roles_claim: str = "roles"
    admin_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    # The development issuer's private key (created like the other development secrets);
    # default: admin-issuer.jwk.json beside the hub's signing key.
    admin_dev_issuer_key_file: Path | None = None
    # Proxies whose X-Forwarded-For is believed for the audit trail's client address.
    admin_trusted_proxies: list[str] = Field(default_factory=list)
    admin_proposal_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # Partner key rotation (gateway.messages.partner_keys): how often every process re-reads
    # the key table, and how long a successor must have been active before its predecessor
    # may be retired (every sender switched, every cache learned it).
    partner_keys_cache_seconds: float = Field(default=2.0, gt=0, le=60)
    key_retire_overlap_hours: float = Field(default=24.0, ge=0, le=24 * 90)
    # The hub's own key rotation (key file, gateway.protocol.signing.Signer): partners may
    # cache /.well-known/jwks.json for max-age seconds; `gateway keys rotate` schedules a new
    # key to sign no sooner than the lead after it is written, which must be longer.
    jwks_max_age_seconds: int = Field(default=300, ge=0, le=86400)
    hub_key_lead_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    # OpenTelemetry traces (gateway.observability.tracing, docs/metrics.md): off by default;
    # on, the collector and service name come from the standard OTEL_* variables.
    otel_enabled: bool = False

    @model_validator(mode="after")
    def _jwks_cached_shorter_than_the_lead(self) -> Settings:
        if self.jwks_max_age_seconds >= self.hub_key_lead_minutes * 60:
            raise ValueError("GATEWAY_JWKS_MAX_AGE_SECONDS must be shorter than "
                             "GATEWAY_HUB_KEY_LEAD_MINUTES: a partner's cached JWKS must "
                             "expire before a new hub key signs")
        return self

    @field_validator("database_url")
    @classmethod
    def _supported(cls, value: str) -> str:
        async_database_url(value)
        return value

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def effective_log_format(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.is_production else "text"

    @property
    def admin_dev_key(self) -> Path:
        """Where the development admin issuer's private key is kept."""
        return (self.admin_dev_issuer_key_file
                or self.signing_key_file.parent / "admin-issuer.jwk.json")

    @property
    def async_url(self) -> str:
        return async_database_url(self.database_url)


def async_database_url(url: str) -> str:
    """Map an operator's database URL to the async driver the gateway uses."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"GATEWAY_DATABASE_URL {url!r} is not a URL")
    mapping = {
        "sqlite": "sqlite+aiosqlite",
        "sqlite+aiosqlite": "sqlite+aiosqlite",
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
        "postgresql+asyncpg": "postgresql+asyncpg",
        "postgresql+psycopg": "postgresql+psycopg",
    }
    if scheme not in mapping:
        raise ConfigError(
            f"GATEWAY_DATABASE_URL scheme {scheme!r} is not supported "
            "(use sqlite:///path or postgresql+asyncpg:// or postgresql+psycopg://)"
        )
    return f"{mapping[scheme]}://{rest}"


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Read one of the operator's TOML files (partner registry, rails, back-office tokens).

    ``what`` names the file in errors as the operator knows it (``"partner registry"``,
    ``"GATEWAY_RAILS_FILE"``), so every configuration error reads the same way.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8 or not TOML.
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
