"""A bot's login: the access token it sends, renewed with its refresh token when the API answers 401.

Access tokens live minutes (the player service's ``access_token_ttl_s``) and a demo bot plays for hours: without
this, a bot that goes broke after its first token expired could never top up again, and its table would stop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class Credentials:
    def __init__(
        self, http: httpx.AsyncClient, player_url: str, access_token: str, refresh_token: str | None = None
    ) -> None:
        self.http = http
        self.player_url = player_url
        self.access_token = access_token
        self.refresh_token = refresh_token
        # One refresh at a time: refresh tokens rotate, and presenting a rotated one again is taken for theft
        # (the player service then revokes the whole login).
        self._refreshing = asyncio.Lock()

    @classmethod
    def from_pair(cls, http: httpx.AsyncClient, player_url: str, pair: dict[str, Any]) -> Credentials:
        return cls(http, player_url, str(pair["access_token"]), str(pair["refresh_token"]))

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The request with the current access token; on 401, once more after a refresh (if one succeeds)."""
        sent_with = self.access_token
        response = await self.http.request(method, url, headers=self.bearer, **kwargs)
        if response.status_code != 401 or not await self._refresh(sent_with):
            return response
        return await self.http.request(method, url, headers=self.bearer, **kwargs)

    async def _refresh(self, stale: str) -> bool:
        async with self._refreshing:
            if self.access_token != stale:
                return True  # another request renewed it meanwhile
            if self.refresh_token is None:
                return False  # a token handed over without a login (tests, benchmarks): nothing to renew it with
            response = await self.http.post(
                f"{self.player_url}/api/v1/auth/refresh", json={"refresh_token": self.refresh_token}
            )
            if response.status_code != 200:
                return False
            pair = response.json()
            self.access_token, self.refresh_token = str(pair["access_token"]), str(pair["refresh_token"])
            return True
