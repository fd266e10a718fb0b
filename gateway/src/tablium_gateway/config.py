"""kong.yml, parsed once into plain typed objects.

Only what the development gateway implements is accepted: an unknown plugin, a route
field it would ignore (hosts, headers, ...) or a consumer-scoped plugin is a
:class:`ConfigError`, so the dev gateway never silently behaves more openly than Kong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.serialization import load_pem_public_key

SUPPORTED_FORMAT_VERSIONS = frozenset({"3.0"})

# The order Kong runs them in (plugin priorities, highest first).
PLUGIN_ORDER = (
    "correlation-id",
    "cors",
    "jwt",
    "request-size-limiting",
    "rate-limiting",
    "response-transformer",
    "prometheus",
)

RATE_LIMIT_PERIODS: dict[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}

_SIZE_UNITS = {"bytes": 1, "kilobytes": 1024, "megabytes": 1024 * 1024}
_ROUTE_KEYS = frozenset(
    {
        "name",
        "paths",
        "methods",
        "strip_path",
        "regex_priority",
        "preserve_host",
        "path_handling",
        "protocols",
        "plugins",
        "tags",
        "https_redirect_status_code",
        "request_buffering",
        "response_buffering",
    }
)
_SERVICE_KEYS = frozenset(
    {
        "name",
        "url",
        "protocol",
        "host",
        "port",
        "path",
        "connect_timeout",
        "read_timeout",
        "write_timeout",
        "retries",
        "routes",
        "plugins",
        "tags",
        "enabled",
    }
)


class ConfigError(ValueError):
    """kong.yml is invalid, or uses something the development gateway does not implement."""


@dataclass(frozen=True, slots=True)
class JwtCredential:
    consumer: str
    key: str
    algorithm: str
    public_key: Any  # a cryptography public key object, loaded once


@dataclass(frozen=True, slots=True)
class JwtConfig:
    key_claim_name: str = "iss"
    claims_to_verify: frozenset[str] = frozenset()
    header_names: tuple[str, ...] = ("authorization",)
    uri_param_names: tuple[str, ...] = ("jwt",)
    cookie_names: tuple[str, ...] = ()
    run_on_preflight: bool = True
    maximum_expiration: int = 0


@dataclass(frozen=True, slots=True)
class CorsConfig:
    origins: tuple[str, ...] = ("*",)
    methods: tuple[str, ...] = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT")
    headers: tuple[str, ...] = ()  # empty: reflect Access-Control-Request-Headers
    exposed_headers: tuple[str, ...] = ()
    credentials: bool = False
    max_age: int | None = None
    preflight_continue: bool = False


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    limits: tuple[tuple[str, int], ...]  # (period, limit), e.g. ("minute", 1000)
    hide_client_headers: bool = False
    error_code: int = 429
    error_message: str = "API rate limit exceeded"


@dataclass(frozen=True, slots=True)
class CorrelationIdConfig:
    header_name: str = "Kong-Request-ID"
    generator: str = "uuid#counter"
    echo_downstream: bool = False


@dataclass(frozen=True, slots=True)
class SizeLimitConfig:
    allowed_bytes: int
    require_content_length: bool = False


@dataclass(frozen=True, slots=True)
class ResponseTransformerConfig:
    # Kong's add.headers: set on every response (the gateway's own answers included) that lacks them.
    add_headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class PrometheusConfig:
    status_code_metrics: bool = False
    latency_metrics: bool = False


@dataclass(frozen=True, slots=True)
class Plugins:
    """The plugins in force for one route: route-level over service-level over global."""

    correlation_id: CorrelationIdConfig | None = None
    cors: CorsConfig | None = None
    jwt: JwtConfig | None = None
    size_limit: SizeLimitConfig | None = None
    rate_limit: RateLimitConfig | None = None
    response_transformer: ResponseTransformerConfig | None = None
    prometheus: PrometheusConfig | None = None


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    scheme: str
    host: str
    port: int
    path: str | None
    connect_timeout_s: float = 60.0
    read_timeout_s: float = 60.0
    write_timeout_s: float = 60.0

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    service: Service
    paths: tuple[str, ...]
    methods: frozenset[str] | None
    strip_path: bool = True
    regex_priority: int = 0
    preserve_host: bool = False
    plugins: Plugins = field(default_factory=Plugins)
    plugin_names: frozenset[str] = frozenset()  # the plugins configured on the route itself

    @property
    def is_private(self) -> bool:
        return self.plugins.jwt is not None


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    services: tuple[Service, ...]
    routes: tuple[Route, ...]
    credentials: Mapping[str, JwtCredential]
    raw: Mapping[str, Any]

    def with_upstreams(self, upstreams: Mapping[str, str]) -> GatewayConfig:
        """The same config with some services pointed elsewhere (e.g. 127.0.0.1 ports)."""
        unknown = set(upstreams) - {s.name for s in self.services}
        if unknown:
            raise ConfigError(f"--upstream names no service in kong.yml: {', '.join(sorted(unknown))}")
        # An override without a path keeps the service's own path: it moves the host, not the API.
        moved = {
            s.name: _service_at(s, upstreams[s.name], keep_path=True) if s.name in upstreams else s
            for s in self.services
        }
        routes = tuple(dataclasses.replace(r, service=moved[r.service.name]) for r in self.routes)
        return GatewayConfig(tuple(moved.values()), routes, self.credentials, self.raw)

    def without_plugins(self, names: set[str]) -> GatewayConfig:
        """The same config with some plugins switched off everywhere (e.g. rate-limiting for a benchmark)."""
        attrs = {_PLUGIN_ATTRS[n] for n in names if n in _PLUGIN_ATTRS}
        if len(attrs) != len(names):
            raise ConfigError(f"unknown plugin names: {', '.join(sorted(set(names) - set(_PLUGIN_ATTRS)))}")
        off = dict.fromkeys(attrs)
        routes = tuple(dataclasses.replace(r, plugins=dataclasses.replace(r.plugins, **off)) for r in self.routes)
        return GatewayConfig(self.services, routes, self.credentials, self.raw)


_PLUGIN_ATTRS = {
    "correlation-id": "correlation_id",
    "cors": "cors",
    "jwt": "jwt",
    "request-size-limiting": "size_limit",
    "rate-limiting": "rate_limit",
    "response-transformer": "response_transformer",
    "prometheus": "prometheus",
}


def load_config(path: str | Path) -> GatewayConfig:
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a YAML mapping")
    return parse_config(data)


def parse_config(data: Mapping[str, Any]) -> GatewayConfig:
    version = str(data.get("_format_version", ""))
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ConfigError(f"_format_version must be one of {sorted(SUPPORTED_FORMAT_VERSIONS)}, got {version!r}")
    global_plugins = _plugin_map(data.get("plugins") or [], "global plugins")
    credentials = _credentials(data.get("consumers") or [])

    services: list[Service] = []
    routes: list[Route] = []
    route_names: set[str] = set()
    for raw_service in data.get("services") or []:
        service = _service(raw_service)
        if any(s.name == service.name for s in services):
            raise ConfigError(f"duplicate service name {service.name!r}")
        services.append(service)
        service_plugins = _plugin_map(raw_service.get("plugins") or [], f"service {service.name}")
        for raw_route in raw_service.get("routes") or []:
            route = _route(raw_route, service, global_plugins, service_plugins)
            if route.name in route_names:
                raise ConfigError(f"duplicate route name {route.name!r}")
            route_names.add(route.name)
            routes.append(route)
    if data.get("routes"):
        raise ConfigError("top-level routes are not supported; nest routes under their service")
    if any(r.plugins.jwt for r in routes) and not credentials:
        raise ConfigError("the jwt plugin is used but no consumer has jwt_secrets")
    return GatewayConfig(tuple(services), tuple(routes), credentials, data)


def _service(raw: Mapping[str, Any]) -> Service:
    name = _required_str(raw, "name", "service")
    unknown = set(raw) - _SERVICE_KEYS
    if unknown:
        raise ConfigError(f"service {name}: unsupported fields {sorted(unknown)}")
    if "url" in raw:
        service = _service_at(Service(name=name, scheme="http", host="", port=0, path=None), str(raw["url"]))
    else:
        scheme = str(raw.get("protocol", "http"))
        service = Service(
            name=name,
            scheme=scheme,
            host=_required_str(raw, "host", f"service {name}"),
            port=int(raw.get("port", 443 if scheme == "https" else 80)),
            path=raw.get("path"),
        )
    return dataclasses.replace(
        service,
        connect_timeout_s=int(raw.get("connect_timeout", 60000)) / 1000,
        read_timeout_s=int(raw.get("read_timeout", 60000)) / 1000,
        write_timeout_s=int(raw.get("write_timeout", 60000)) / 1000,
    )


def _service_at(service: Service, url: str, *, keep_path: bool = False) -> Service:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"service {service.name}: url must be http(s)://host[:port][/path], got {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or (service.path if keep_path else None)
    return dataclasses.replace(service, scheme=parts.scheme, host=parts.hostname, port=port, path=path)


def _route(
    raw: Mapping[str, Any],
    service: Service,
    global_plugins: Mapping[str, Mapping[str, Any]],
    service_plugins: Mapping[str, Mapping[str, Any]],
) -> Route:
    name = _required_str(raw, "name", f"route of service {service.name}")
    unknown = set(raw) - _ROUTE_KEYS
    if unknown:
        raise ConfigError(f"route {name}: fields the dev gateway does not implement: {sorted(unknown)}")
    paths = tuple(str(p) for p in raw.get("paths") or ())
    if not paths:
        raise ConfigError(f"route {name}: needs at least one path")
    for path in paths:
        if not path.startswith(("/", "~/")):
            raise ConfigError(f"route {name}: path {path!r} must start with / (or ~/ for a regex)")
    if raw.get("path_handling", "v0") != "v0":
        raise ConfigError(f"route {name}: only path_handling v0 is implemented")
    methods = raw.get("methods")
    route_plugins = _plugin_map(raw.get("plugins") or [], f"route {name}")
    merged = {**global_plugins, **service_plugins, **route_plugins}
    return Route(
        name=name,
        service=service,
        paths=paths,
        methods=frozenset(str(m).upper() for m in methods) if methods else None,
        strip_path=bool(raw.get("strip_path", True)),
        regex_priority=int(raw.get("regex_priority", 0)),
        preserve_host=bool(raw.get("preserve_host", False)),
        plugins=_plugins(merged, name),
        plugin_names=frozenset(route_plugins),
    )


def _plugin_map(raw: Any, where: str) -> dict[str, Mapping[str, Any]]:
    plugins: dict[str, Mapping[str, Any]] = {}
    for plugin in raw:
        name = _required_str(plugin, "name", where)
        if name not in _PLUGIN_ATTRS:
            raise ConfigError(f"{where}: plugin {name!r} is not implemented by the dev gateway")
        if "consumer" in plugin:
            raise ConfigError(f"{where}: consumer-scoped plugins are not implemented by the dev gateway")
        if name in plugins:
            raise ConfigError(f"{where}: plugin {name!r} configured twice")
        if plugin.get("enabled", True):
            plugins[name] = plugin.get("config") or {}
    return plugins


def _plugins(merged: Mapping[str, Mapping[str, Any]], route: str) -> Plugins:
    parsed: dict[str, Any] = {}
    for name, conf in merged.items():
        parsed[_PLUGIN_ATTRS[name]] = _PARSERS[name](conf, route)
    return Plugins(**parsed)


def _jwt(conf: Mapping[str, Any], route: str) -> JwtConfig:
    claims = frozenset(conf.get("claims_to_verify") or ())
    if claims - {"exp", "nbf"}:
        raise ConfigError(f"route {route}: jwt claims_to_verify may only hold exp and nbf")
    if conf.get("anonymous") or conf.get("secret_is_base64"):
        raise ConfigError(f"route {route}: jwt anonymous / secret_is_base64 are not implemented")
    maximum_expiration = int(conf.get("maximum_expiration", 0))
    if maximum_expiration and "exp" not in claims:
        raise ConfigError(f"route {route}: jwt maximum_expiration needs exp in claims_to_verify")
    return JwtConfig(
        key_claim_name=str(conf.get("key_claim_name", "iss")),
        claims_to_verify=claims,
        header_names=tuple(str(h).lower() for h in conf.get("header_names", ("authorization",))),
        uri_param_names=tuple(str(p) for p in conf.get("uri_param_names", ("jwt",))),
        cookie_names=tuple(str(c) for c in conf.get("cookie_names", ())),
        run_on_preflight=bool(conf.get("run_on_preflight", True)),
        maximum_expiration=maximum_expiration,
    )


def _cors(conf: Mapping[str, Any], route: str) -> CorsConfig:
    default = CorsConfig()
    max_age = conf.get("max_age")
    return CorsConfig(
        origins=tuple(str(o) for o in conf.get("origins") or default.origins),
        methods=tuple(str(m).upper() for m in conf.get("methods") or default.methods),
        headers=tuple(str(h) for h in conf.get("headers") or ()),
        exposed_headers=tuple(str(h) for h in conf.get("exposed_headers") or ()),
        credentials=bool(conf.get("credentials", False)),
        max_age=int(max_age) if max_age is not None else None,
        preflight_continue=bool(conf.get("preflight_continue", False)),
    )


def _rate_limit(conf: Mapping[str, Any], route: str) -> RateLimitConfig:
    if conf.get("limit_by", "consumer") != "ip":
        raise ConfigError(f"route {route}: rate-limiting is implemented for limit_by: ip only")
    if conf.get("policy", "local") != "local":
        raise ConfigError(f"route {route}: rate-limiting is implemented for policy: local only")
    for period in ("month", "year"):
        if conf.get(period) is not None:
            raise ConfigError(f"route {route}: rate-limiting per {period} is not implemented")
    limits = tuple((p, int(conf[p])) for p in RATE_LIMIT_PERIODS if conf.get(p) is not None)
    if not limits:
        raise ConfigError(f"route {route}: rate-limiting needs at least one of {list(RATE_LIMIT_PERIODS)}")
    return RateLimitConfig(
        limits=limits,
        hide_client_headers=bool(conf.get("hide_client_headers", False)),
        error_code=int(conf.get("error_code", 429)),
        error_message=str(conf.get("error_message", "API rate limit exceeded")),
    )


def _correlation_id(conf: Mapping[str, Any], route: str) -> CorrelationIdConfig:
    generator = str(conf.get("generator", "uuid#counter"))
    if generator not in ("uuid", "uuid#counter"):
        raise ConfigError(f"route {route}: correlation-id generator {generator!r} is not implemented")
    return CorrelationIdConfig(
        header_name=str(conf.get("header_name", "Kong-Request-ID")),
        generator=generator,
        echo_downstream=bool(conf.get("echo_downstream", False)),
    )


def _size_limit(conf: Mapping[str, Any], route: str) -> SizeLimitConfig:
    unit = str(conf.get("size_unit", "megabytes"))
    if unit not in _SIZE_UNITS:
        raise ConfigError(f"route {route}: request-size-limiting size_unit {unit!r} is unknown")
    return SizeLimitConfig(
        allowed_bytes=int(float(conf.get("allowed_payload_size", 128)) * _SIZE_UNITS[unit]),
        require_content_length=bool(conf.get("require_content_length", False)),
    )


def _response_transformer(conf: Mapping[str, Any], route: str) -> ResponseTransformerConfig:
    # Only add.headers: the rest (remove, rename, replace, append, JSON bodies) would change
    # the services' responses and is refused rather than silently ignored.
    for action, fields in conf.items():
        for name, values in (fields or {}).items():
            if values and (action, name) != ("add", "headers"):
                raise ConfigError(f"route {route}: response-transformer {action}.{name} is not implemented")
    headers = []
    for header in (conf.get("add") or {}).get("headers") or ():
        name, sep, value = str(header).partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"route {route}: response-transformer header {header!r} is not name:value")
        headers.append((name.strip().lower().encode("latin-1"), value.strip().encode("latin-1")))
    return ResponseTransformerConfig(add_headers=tuple(headers))


def _prometheus(conf: Mapping[str, Any], route: str) -> PrometheusConfig:
    return PrometheusConfig(
        status_code_metrics=bool(conf.get("status_code_metrics", False)),
        latency_metrics=bool(conf.get("latency_metrics", False)),
    )


_PARSERS = {
    "correlation-id": _correlation_id,
    "cors": _cors,
    "jwt": _jwt,
    "request-size-limiting": _size_limit,
    "rate-limiting": _rate_limit,
    "response-transformer": _response_transformer,
    "prometheus": _prometheus,
}


def _credentials(consumers: Any) -> dict[str, JwtCredential]:
    credentials: dict[str, JwtCredential] = {}
    for consumer in consumers:
        username = str(consumer.get("username") or consumer.get("custom_id") or "")
        if not username:
            raise ConfigError("every consumer needs a username or custom_id")
        if consumer.get("plugins"):
            raise ConfigError(f"consumer {username}: consumer plugins are not implemented")
        for secret in consumer.get("jwt_secrets") or []:
            key = _required_str(secret, "key", f"consumer {username} jwt_secrets")
            algorithm = str(secret.get("algorithm", "HS256"))
            if algorithm not in ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512"):
                # HS* would need a shared secret in the repo; the platform signs with RS256.
                raise ConfigError(f"consumer {username}: jwt algorithm {algorithm} is not accepted")
            pem = _required_str(secret, "rsa_public_key", f"consumer {username} jwt_secrets")
            if key in credentials:
                raise ConfigError(f"jwt key {key!r} is used by two credentials")
            credentials[key] = JwtCredential(
                consumer=username,
                key=key,
                algorithm=algorithm,
                public_key=load_pem_public_key(pem.encode()),
            )
    return credentials


def _required_str(raw: Any, key: str, where: str) -> str:
    if not isinstance(raw, Mapping) or not isinstance(raw.get(key), str) or not raw[key]:
        raise ConfigError(f"{where}: {key!r} is required")
    return str(raw[key])
