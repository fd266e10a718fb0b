"""Registration, login, token refresh and logout, and the JWKS. All public routes."""

from __future__ import annotations

import ipaddress
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from tablium_kit.auth import BEARER, caller
from tablium_kit.deps import DbSession
from tablium_player.api.schemas import LoginRequest, OwnProfile, RefreshRequest, RegisterRequest, Session, TokenPair
from tablium_player.service import AccountsDep, own_profile

# Responses that carry tokens must not be kept by browsers or shared caches (RFC 6749 §5.1);
# Pragma for HTTP/1.0 caches.
NO_STORE = CacheControlHeader(no_store=True)
NO_CACHE_PRAGMA = [ResponseHeader(name="Pragma", value="no-cache", description="Tokens are never cached.")]


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The client as the login and registration throttles count it.

    The kit has already replaced the peer with the real client when a trusted gateway forwarded
    it. An IPv6 client counts by its /64: one subscriber gets at least a /64 and could otherwise
    take a fresh address, and fresh budgets, for every attempt.
    """
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return host


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/register", summary="Create an account")
    async def register(
        self,
        data: JSONBody[RegisterRequest],
        request: Request[Any, Any, Any],
        db_session: DbSession,
        accounts: AccountsDep,
    ) -> OwnProfile:
        player = await accounts.register(
            db_session, username=data.username, email=data.email, password=data.password, client_ip=client_ip(request)
        )
        return own_profile(player, [])  # a new account has played no hand

    @post(
        "/login",
        status_code=HTTP_200_OK,
        summary="Exchange credentials for tokens",
        cache_control=NO_STORE,
        response_headers=NO_CACHE_PRAGMA,
    )
    async def login(
        self,
        data: JSONBody[LoginRequest],
        request: Request[Any, Any, Any],
        db_session: DbSession,
        accounts: AccountsDep,
    ) -> TokenPair:
        return await accounts.login(db_session, login=data.login, password=data.password, client_ip=client_ip(request))

    @post(
        "/refresh",
        status_code=HTTP_200_OK,
        summary="Rotate a refresh token",
        cache_control=NO_STORE,
        response_headers=NO_CACHE_PRAGMA,
    )
    async def refresh(
        self,
        data: JSONBody[RefreshRequest],
        db_session: DbSession,
        accounts: AccountsDep,
    ) -> TokenPair:
        return await accounts.refresh(db_session, data.refresh_token)

    @post("/logout", status_code=HTTP_204_NO_CONTENT, summary="Revoke a login (its refresh token family)")
    async def logout(
        self,
        data: JSONBody[RefreshRequest],
        db_session: DbSession,
        accounts: AccountsDep,
    ) -> None:
        await accounts.logout(db_session, data.refresh_token)

    @get("/session", security=BEARER, summary="Who my access token says I am", sync_to_thread=False)
    def session(self) -> Session:
        # Answered from the verified token alone: clients check a session without a database read.
        principal = caller()
        return Session(player_id=principal.subject, roles=sorted(principal.roles))

    @get("/jwks", summary="Public keys that verify access tokens", cache=60)
    async def jwks(self, accounts: AccountsDep) -> dict[str, Any]:
        return accounts.keys.jwks()
