"""Authentication and authorization shared by every service.

Two kinds of bearer token reach a service:

* user access tokens: RS256 JWTs issued by the player service, verified with the
  public keys it publishes as a JWKS (fetched, cached, re-fetched on an unknown
  ``kid`` so key rotation needs no restart);
* service identity tokens: short-lived EdDSA JWTs each service signs with its own
  key (:class:`ServiceTokens`), for one callee, verified against the trust store of
  services' public keys (:class:`ServiceTrust`), accepted only on internal routes
  and only from the services the route names.

Which one a route needs is declared once, in its OpenAPI security requirement
(:data:`BEARER` or :func:`from_services`); :class:`RouteAuthenticator` reads that same
declaration, so the documented contract and the enforced one cannot drift apart.
It runs as the application's ``before_request`` hook (after routing, before the
handler's arguments are resolved), or earlier when a kit guard needs the caller
(guards run before that hook), and on WebSocket routes as the :func:`authenticated`
guard. Handlers read the caller with :func:`caller` (no handler argument: Litestar
resolving one costs more than the whole authentication), or ``request.user``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme

from tablium_kit.errors import Forbidden, Unauthorized
from tablium_kit.net import request_context

# The kit's authentication in one import: the token modules' public names.
from tablium_kit.service_identity import (
    DEV_KID_PREFIX as DEV_KID_PREFIX,
)
from tablium_kit.service_identity import (
    MAX_SERVICE_TOKEN_TTL_S as MAX_SERVICE_TOKEN_TTL_S,
)
from tablium_kit.service_identity import (
    SERVICE_TOKEN_ALGORITHM as SERVICE_TOKEN_ALGORITHM,
)
from tablium_kit.service_identity import (
    SERVICE_TOKEN_ISSUER as SERVICE_TOKEN_ISSUER,
)
from tablium_kit.service_identity import (
    ServiceTokens as ServiceTokens,
)
from tablium_kit.service_identity import (
    ServiceTokenVerifier as ServiceTokenVerifier,
)
from tablium_kit.service_identity import (
    ServiceTrust as ServiceTrust,
)
from tablium_kit.service_identity import (
    development_service_key as development_service_key,
)
from tablium_kit.service_identity import (
    load_service_key as load_service_key,
)
from tablium_kit.service_identity import (
    load_service_public_key as load_service_public_key,
)
from tablium_kit.service_identity import (
    local_service_keys as local_service_keys,
)
from tablium_kit.service_identity import (
    service_key_id as service_key_id,
)
from tablium_kit.tokens import (
    LEEWAY_S as LEEWAY_S,
)
from tablium_kit.tokens import (
    Principal as Principal,
)
from tablium_kit.tokens import (
    VerifiedTokens as VerifiedTokens,
)
from tablium_kit.tokens import (
    bearer_token as bearer_token,
)
from tablium_kit.user_tokens import (
    AccessTokenVerifier as AccessTokenVerifier,
)
from tablium_kit.user_tokens import (
    JwksKeySource as JwksKeySource,
)
from tablium_kit.user_tokens import (
    KeySource as KeySource,
)
from tablium_kit.user_tokens import (
    MalformedKeySet as MalformedKeySet,
)
from tablium_kit.user_tokens import (
    StaticKeySource as StaticKeySource,
)
from tablium_kit.user_tokens import (
    rsa_public_keys as rsa_public_keys,
)

BEARER: list[SecurityRequirement] = [{"BearerToken": []}]


def from_services(*names: str) -> list[SecurityRequirement]:
    """The security of an internal route: a service token from one of the services ``names``.

    OpenAPI 3.1 lets a requirement of a non-OAuth scheme list roles; these are the
    services, so the document says who may call, and :class:`RouteAuthenticator`
    enforces exactly that (any other service is a 403). Requirements on several layers
    (controller and route) add up, as alternatives do in OpenAPI. A route declaring
    ``ServiceToken`` without names refuses to start: no internal route takes any service.
    """
    if not names:
        raise ValueError("an internal route names the services it accepts")
    return [{"ServiceToken": sorted(names)}]


SECURITY_COMPONENTS = Components(
    security_schemes={
        "BearerToken": SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT", description="RS256 access token"
        ),
        "ServiceToken": SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="EdDSA service identity token (internal); a requirement's list names the services accepted",
        ),
    }
)


def required_schemes(handler: BaseRouteHandler) -> frozenset[str]:
    """The security schemes a route declares (``BearerToken``, ``ServiceToken``); empty when public."""
    resolve = getattr(handler, "resolve_security", None)
    if resolve is None:  # websocket and ASGI handlers declare security through opt
        return frozenset(handler.opt.get("security_schemes", ()))
    return frozenset(name for requirement in resolve() for name in requirement)


def accepted_services(handler: BaseRouteHandler) -> frozenset[str]:
    """The services a route's ``ServiceToken`` requirements name (their union, as OpenAPI reads them)."""
    resolve = getattr(handler, "resolve_security", None)
    if resolve is None:  # websocket and ASGI handlers declare security through opt, without names
        return frozenset()
    return frozenset(name for requirement in resolve() for name in requirement.get("ServiceToken", ()))


def caller() -> Principal:
    """Who is calling: the principal the route's declared security authenticated.

    Raises :class:`Unauthorized` on a public route (no principal). Costs a context
    variable read, where a handler argument (``request``, a dependency) costs
    Litestar's argument resolution on every request.
    """
    request = request_context.get()
    if request is None or request.caller is None:
        raise Unauthorized("authentication required")
    principal: Principal = request.caller
    return principal


class RouteAuthenticator:
    """Authenticates a connection as its route's security requirement says, once per connection.

    Puts the :class:`Principal` in ``scope["user"]`` (``request.user``) and in the
    context read by :func:`caller`; a public route gets no principal. Failures are
    :class:`Unauthorized`, answered as problem+json by the application's error handling.
    """

    def __init__(self, access: AccessTokenVerifier, services: ServiceTokenVerifier) -> None:
        self.access = access
        self.services = services
        # A route's security never changes after start-up: resolved once per handler, with the
        # principals of the services it accepts.
        self._security: dict[int, tuple[frozenset[str], frozenset[str]]] = {}

    # Litestar's ``before_request`` hook (returning None lets the handler run), and what guards call.
    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        request = request_context.get()
        if request is None:  # outside the kit's layer: nothing to authenticate against
            raise Unauthorized("authentication required")
        if request.authenticated:
            return  # a guard needed the caller first
        handler = connection.scope["route_handler"]
        security = self._security.get(id(handler))
        if security is None:
            callers = frozenset(f"service:{name}" for name in accepted_services(handler))
            security = self._security[id(handler)] = (required_schemes(handler), callers)
        schemes, callers = security
        authorization = request.authorization
        if "ServiceToken" in schemes:
            principal = self.services.verify(authorization)
            if principal.subject not in callers:
                raise Forbidden("this service may not call this route")
            request.caller = principal
        elif "BearerToken" in schemes:
            cached = self.access.cached(authorization) if authorization is not None else None
            request.caller = cached or await self.access.verify(authorization)
        if request.caller is not None:
            connection.scope["user"] = request.caller
        request.authenticated = True


async def authenticated(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard authenticating a connection by its route's declared security.

    HTTP routes need no guard (the kit's ``before_request`` hook does it); a WebSocket
    route declaring security must carry this guard, or the service refuses to start.
    """
    authenticator: RouteAuthenticator = connection.app.state.authenticator
    await authenticator(connection)


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]
# The kit's role guards, which authenticate before they check (see ``authenticates``).
_AUTHENTICATING_GUARDS: set[Guard] = set()


def authenticates(guard: Any) -> bool:
    """Whether a guard authenticates the connection itself (``authenticated`` and the kit's role guards)."""
    return guard is authenticated or guard in _AUTHENTICATING_GUARDS


def authenticated_or(alternative: Callable[[ASGIConnection[Any, Any, Any, Any]], Awaitable[Principal | None]]) -> Guard:
    """A guard accepting, besides the route's declared security, another credential ``alternative`` checks.

    For WebSockets from browsers, which cannot send an ``Authorization`` header: ``alternative`` returns the
    principal of the connection's other credential (a short-lived ticket the service issued, say), raises
    :class:`Unauthorized` for a bad one, or returns None when the connection carries none, and then the
    declared security applies as with :func:`authenticated`.
    """

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        request = request_context.get()
        if request is None:
            raise Unauthorized("authentication required")
        if request.authenticated:
            return
        principal = None if request.authorization is not None else await alternative(connection)
        if principal is None:
            await authenticated(connection, handler)
            return
        request.caller = principal
        request.authenticated = True
        connection.scope["user"] = principal

    _AUTHENTICATING_GUARDS.add(guard)
    return guard


def requires_roles(*roles: str) -> Guard:
    """A guard letting through users holding at least one of ``roles``."""

    wanted = frozenset(roles)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        await authenticated(connection, handler)  # guards run before the kit's before_request hook
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal) or not (principal.roles & wanted):
            raise Forbidden(f"requires one of the roles: {', '.join(sorted(wanted))}")

    _AUTHENTICATING_GUARDS.add(guard)
    return guard
