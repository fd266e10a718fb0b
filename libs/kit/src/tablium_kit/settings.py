"""Service settings read from the environment, with development defaults.

Every service subclasses :class:`ServiceSettings`. A field ``foo_bar`` of the
service ``player`` is read from ``TABLIUM_PLAYER_FOO_BAR``, else from the
platform-wide ``TABLIUM_FOO_BAR``, else its default. In production a service
refuses to start while any secret (or the service trust store) still has its
development default.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal, TypeVar

import msgspec

Environment = Literal["development", "test", "production"]

S = TypeVar("S", bound="ServiceSettings")


class InsecureSettingsError(RuntimeError):
    """Raised when a production service would run with a development secret."""


class ServiceSettings(msgspec.Struct, kw_only=True):
    """What every service needs to know about its surroundings."""

    service_name: str
    environment: Environment = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Every Redis key a service writes starts with "<namespace>:<service>:" (tests use their own).
    redis_namespace: str = "tablium"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    events_exchange: str = "tablium.events"
    # Where user access tokens' public keys are published (the player service).
    jwks_url: str = "http://127.0.0.1:8001/api/v1/auth/jwks"
    jwt_issuer: str = "tablium-player"
    jwt_audience: str = "tablium"
    jwks_cache_seconds: int = 300
    # This service's Ed25519 key signing its identity tokens to other services: a PKCS#8 PEM, or the path of
    # a file holding one. Empty: the development key derived from the service's name (anyone can derive it,
    # so production refuses to start without a key of its own).
    service_key: str = ""
    # The services whose tokens this one accepts: name -> their Ed25519 public keys (PEM), several while one
    # rotates (docs/adr/0001-service-kit.md). Empty: every service's development key, which production refuses.
    service_trust: dict[str, list[str]] = msgspec.field(default_factory=dict)
    # Lifetime of the tokens this service signs (reused for half of it); verifiers refuse over 600 s.
    service_token_ttl_s: int = 120
    otlp_endpoint: str | None = None
    # Traces are recorded when they go somewhere (an OTLP endpoint) unless forced on or off:
    # spans nobody receives cost about half of a small request's time.
    tracing: bool | None = None
    trace_sample_ratio: float = 1.0
    log_level: str = "INFO"
    log_json: bool = True
    # Peers whose X-Forwarded-For is believed: the gateway's address(es), set where it is deployed.
    # None by default: trusting loopback let any local client choose its address (and dodge the
    # per-address login limit) by rotating the header.
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    max_request_body_bytes: int = 64 * 1024
    # Apply migrations at start-up; by default everywhere but production, where the
    # deployment runs `tablium-<service> migrate` once before rolling out.
    migrate_on_start: bool | None = None
    workers: int = 1
    # The event consumer's batches (ADR 0002): up to this many deliveries in one transaction, this many
    # batches at once. A service whose handlers are set-based may measure larger ones better.
    consumer_batch_size: int = 100
    consumer_batches_in_flight: int = 2
    # Database connections kept open per process (as many again may be opened under a burst, then closed:
    # a connection opened anew costs a connect and re-preparing every statement it runs).
    db_pool_size: int = 10
    # Connections of the reader's own pool (db.Reader), opened at start-up and never more: on this 2-core
    # machine more than a few concurrent reads only queue in Postgres (ADR 0001, "Hot reads").
    db_read_pool_size: int = 4

    # Names of fields that hold secrets or trust, with their development defaults.
    dev_secrets: ClassVar[dict[str, object]] = {"service_key": "", "service_trust": {}}

    def __post_init__(self) -> None:
        if not self.database_url:
            self.database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/tablium_{self.service_name}"

    @property
    def migrates_on_start(self) -> bool:
        return self.migrate_on_start if self.migrate_on_start is not None else not self.is_production

    def redis_key(self, *parts: str) -> str:
        return ":".join((self.redis_namespace, self.service_name, *parts))

    @property
    def tracing_enabled(self) -> bool:
        return self.tracing if self.tracing is not None else bool(self.otlp_endpoint)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(cls: type[S], service_name: str, environ: dict[str, str] | None = None) -> S:
        """Build settings from the environment (``environ`` defaults to ``os.environ``)."""
        env = os.environ if environ is None else environ
        service_prefix = f"TABLIUM_{service_name.upper()}_"
        values: dict[str, Any] = {"service_name": service_name}
        for field in msgspec.structs.fields(cls):
            if field.name == "service_name":
                continue
            raw = env.get(service_prefix + field.name.upper(), env.get("TABLIUM_" + field.name.upper()))
            if raw is not None:
                values[field.name] = _parse(raw)
        try:
            settings = msgspec.convert(values, type=cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid settings for {service_name}: {exc}") from exc
        settings.check_secrets()
        return settings

    def check_secrets(self) -> None:
        """Refuse development secrets in production."""
        if not self.is_production:
            return
        weak = [name for name, default in self.dev_secrets.items() if getattr(self, name) == default]
        if weak:
            raise InsecureSettingsError(
                f"{self.service_name}: production refuses development defaults for {', '.join(weak)}; "
                "set them in the environment"
            )


def _parse(raw: str) -> Any:
    """Environment values are strings; lists and objects may be given as JSON."""
    stripped = raw.strip()
    if stripped.startswith(("[", "{")):
        return msgspec.json.decode(stripped)
    return raw
