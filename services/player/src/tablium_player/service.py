"""Account use cases: register, log in, rotate and revoke refresh tokens, profiles.

Handlers call these with the request's session; the kit commits it when the
response is a success and rolls it back otherwise.
"""

from __future__ import annotations

import functools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import anyio
import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.di import NamedDependency
from sqlalchemy import Text, bindparam, cast, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.db import Reader, Record
from tablium_kit.errors import Conflict, NotFound, Unauthorized
from tablium_kit.money import format_amount
from tablium_kit.ratelimit import RateLimiter
from tablium_player.api.schemas import (
    AssetResults,
    OwnProfile,
    Preferences,
    ProfileUpdate,
    PublicProfile,
    Stats,
    TokenPair,
)
from tablium_player.db.models import Player, PlayerAssetStats, RefreshToken
from tablium_player.domain import rules
from tablium_player.domain.progress import xp_for_level
from tablium_player.domain.throttle import LoginThrottle
from tablium_player.domain.tokens import SigningKeys, issue_access_token, new_refresh_secret, refresh_token_hash
from tablium_player.events import publish_player_registered
from tablium_player.settings import PlayerSettings

IDENTIFIER_TAKEN = "username or e-mail address is already registered"
UNIQUE_VIOLATION = "23505"
PLAYER_BY_ID = select(Player.__table__).where(Player.id == bindparam("player_id"))
_RESULTS = PlayerAssetStats
# A profile in one statement: the player and, as one JSON array, their results per asset (amounts as
# text: 128-bit values stay exact through JSON).
PROFILE_BY_ID = select(
    Player.__table__,
    select(
        func.coalesce(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_object(
                        "asset",
                        _RESULTS.asset,
                        "hands_played",
                        _RESULTS.hands_played,
                        "net_winnings",
                        cast(_RESULTS.net_winnings, Text),
                        "rake_paid",
                        cast(_RESULTS.rake_paid, Text),
                        "biggest_pot_won",
                        cast(_RESULTS.biggest_pot_won, Text),
                    ),
                    _RESULTS.asset,
                )
            ),
            literal_column("'[]'::json"),
        )
    )
    .where(_RESULTS.player_id == Player.id)
    .scalar_subquery()
    .label("results"),
).where(Player.id == bindparam("player_id"))
WINNINGS_BY_PLAYER = (
    select(PlayerAssetStats.__table__)
    .where(PlayerAssetStats.player_id == bindparam("player_id"))
    .order_by(PlayerAssetStats.asset)
)


class PlayerRepository(SQLAlchemyAsyncRepository[Player]):
    model_type = Player


class Accounts:
    """Everything about accounts and credentials; one instance per app."""

    def __init__(
        self,
        settings: PlayerSettings,
        keys: SigningKeys,
        hasher: PasswordHasher,
        ip_limiter: RateLimiter,
        login_throttle: LoginThrottle,
        registration_limiter: RateLimiter,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.hasher = hasher
        self.ip_limiter = ip_limiter
        self.login_throttle = login_throttle
        self.registration_limiter = registration_limiter
        # Verifying against this when the account does not exist keeps the timing of
        # "no such user" and "wrong password" alike.
        self._dummy_hash = hasher.hash("not-a-real-password")

    # -- registration and login -------------------------------------------------------------

    async def register(
        self, session: AsyncSession, *, username: str, email: str, password: str, client_ip: str
    ) -> Player:
        # Every attempt counts, refused ones included: each answer tells whether an identifier is
        # free, so this bounds how fast one address can probe for registered e-mail addresses.
        await self.registration_limiter.hit(client_ip, what="registrations from this address")
        return await create_player(session, self.hasher, username=username, email=email, password=password)

    async def login(self, session: AsyncSession, *, login: str, password: str, client_ip: str) -> TokenPair:
        await self.ip_limiter.hit(client_ip, what="login attempts from this address")
        key = rules.identity_key(login.strip())
        player = await session.scalar(select(Player).where(or_(Player.username_key == key, Player.email_key == key)))
        # Throttled by account, so its username and its e-mail address share one budget; a login
        # nobody has is throttled by itself, exactly alike, so the answers don't reveal which exist.
        account = f"id:{player.id}" if player is not None else f"login:{key}"
        await self.login_throttle.attempt(client_ip=client_ip, account=account)
        # Always one hash verification, so "no such login" takes as long as "wrong password".
        valid = await self._verify(player.password_hash if player is not None else self._dummy_hash, password)
        if player is None or not valid:
            raise Unauthorized("invalid login or password")
        await self.login_throttle.succeeded(client_ip=client_ip, account=account)
        if self.hasher.check_needs_rehash(player.password_hash):
            player.password_hash = await anyio.to_thread.run_sync(self.hasher.hash, password)
        return await self._issue_pair(session, player, family_id=uuid.uuid4())

    async def _verify(self, password_hash: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await anyio.to_thread.run_sync(verify)

    # -- refresh tokens ------------------------------------------------------------------------

    async def refresh(self, session: AsyncSession, refresh_token: str) -> TokenPair:
        now = datetime.now(UTC)
        token = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == refresh_token_hash(refresh_token)).with_for_update()
        )
        if token is None or token.revoked_at is not None:
            raise Unauthorized("refresh token is not valid")
        if token.rotated_at is not None:
            # Reuse of a rotated token: someone holds a copy. Revoke the whole family, and
            # commit that now, since the error response would roll the session back.
            await self._revoke_family(session, token.family_id, now)
            await session.commit()
            raise Unauthorized("refresh token reuse detected; all sessions of this login were revoked")
        if token.expires_at <= now:
            raise Unauthorized("refresh token expired")
        player = await session.get(Player, token.player_id)
        if player is None:
            raise Unauthorized("refresh token is not valid")
        token.rotated_at = now
        return await self._issue_pair(session, player, family_id=token.family_id)

    async def logout(self, session: AsyncSession, refresh_token: str) -> None:
        token = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == refresh_token_hash(refresh_token))
        )
        if token is not None:
            await self._revoke_family(session, token.family_id, datetime.now(UTC))

    async def _revoke_family(self, session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def _issue_pair(self, session: AsyncSession, player: Player, *, family_id: uuid.UUID) -> TokenPair:
        now = int(time.time())
        issued = datetime.fromtimestamp(now, UTC)
        secret = new_refresh_secret()
        session.add(
            RefreshToken(
                token_hash=refresh_token_hash(secret),
                family_id=family_id,
                player_id=player.id,
                issued_at=issued,
                expires_at=issued + timedelta(seconds=self.settings.refresh_token_ttl_s),
            )
        )
        access = issue_access_token(
            self.keys,
            player_id=str(player.id),
            username=player.username,
            roles=list(player.roles),
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            now=now,
            ttl_s=self.settings.access_token_ttl_s,
        )
        await session.flush()
        return TokenPair(access_token=access, refresh_token=secret, expires_in=self.settings.access_token_ttl_s)

    # -- profiles -------------------------------------------------------------------------------

    async def get(self, session: AsyncSession, player_id: uuid.UUID) -> Player:
        player = await session.get(Player, player_id)
        if player is None:
            raise NotFound("no such player")
        return player

    async def read(self, reader: Reader, player_id: uuid.UUID) -> Record:
        """A player for a read-only answer: one statement, no transaction, no ORM loading."""
        player = await reader.one_or_none(PLAYER_BY_ID, player_id=player_id)
        if player is None:
            raise NotFound("no such player")
        return player

    async def read_profile(self, reader: Reader, player_id: uuid.UUID) -> tuple[Record, list[AssetResults]]:
        """A player and their results per asset, for a read-only answer: one statement."""
        player = await reader.one_or_none(PROFILE_BY_ID, player_id=player_id)
        if player is None:
            raise NotFound("no such player")
        results = [
            AssetResults(
                asset=row["asset"],
                hands_played=row["hands_played"],
                net_winnings=format_amount(int(row["net_winnings"])),
                rake_paid=format_amount(int(row["rake_paid"])),
                biggest_pot_won=format_amount(int(row["biggest_pot_won"])),
            )
            for row in player.results
        ]
        return player, results

    async def winnings(self, reader: Reader, player_id: uuid.UUID) -> list[AssetResults]:
        """Cash-table results per asset, read apart from the account (the consumer writes them)."""
        return [
            AssetResults(
                asset=row.asset,
                hands_played=row.hands_played,
                # The reader hands NUMERIC back as Decimal: integral, so int() is exact.
                net_winnings=format_amount(int(row.net_winnings)),
                rake_paid=format_amount(int(row.rake_paid)),
                biggest_pot_won=format_amount(int(row.biggest_pot_won)),
            )
            for row in await reader.all(WINNINGS_BY_PLAYER, player_id=player_id)
        ]

    async def update_profile(self, session: AsyncSession, player_id: uuid.UUID, change: ProfileUpdate) -> Player:
        player = await self.get(session, player_id)
        for name in ("display_name", "country", "bio"):
            value = getattr(change, name)
            if value is not msgspec.UNSET:
                setattr(player, name, value)
        await session.flush()
        return player

    async def set_preferences(self, session: AsyncSession, player_id: uuid.UUID, prefs: Preferences) -> Preferences:
        player = await self.get(session, player_id)
        player.preferences = msgspec.to_builtins(prefs)
        await session.flush()
        return prefs

    async def set_roles(self, session: AsyncSession, player_id: uuid.UUID, roles: list[str]) -> Player:
        player = await self.get(session, player_id)
        player.roles = rules.check_roles(roles)
        await session.flush()
        return player


async def create_player(
    session: AsyncSession,
    hasher: PasswordHasher,
    *,
    username: str,
    email: str,
    password: str,
    roles: list[str] | None = None,
) -> Player:
    """Validate and create an account, and record ``player.registered`` in the same transaction.

    A clash of username or e-mail address is one 409 that doesn't say which: naming the
    address would tell anyone which addresses have accounts, which the login form doesn't.
    """
    username = rules.normalize_username(username)
    email = rules.normalize_email(email)
    # zxcvbn takes up to ~0.1 s on a long password: off the event loop, like the hash.
    await anyio.to_thread.run_sync(functools.partial(rules.check_password, password, username=username, email=email))
    roles = rules.check_roles(roles or ["player"])
    username_key, email_key = rules.identity_key(username), rules.identity_key(email)
    taken = await session.scalar(
        select(Player.id).where(or_(Player.username_key == username_key, Player.email_key == email_key)).limit(1)
    )
    if taken is not None:
        raise Conflict(IDENTIFIER_TAKEN)
    password_hash = await anyio.to_thread.run_sync(hasher.hash, password)
    player = Player(
        username=username,
        email=email,
        username_key=username_key,
        email_key=email_key,
        password_hash=password_hash,
        roles=roles,
        preferences={},
    )
    session.add(player)
    try:
        await session.flush()  # a concurrent registration of the same key fails here, on the unique index
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == UNIQUE_VIOLATION:
            raise Conflict(IDENTIFIER_TAKEN) from exc
        raise
    await publish_player_registered(session, player)
    return player


AccountsDep: TypeAlias = NamedDependency[Accounts]


# What profiles are built from: the ORM object after a change, or a record read with ``Accounts.read``
# (same attribute names).
PlayerRecord: TypeAlias = Player | Record


def preferences_of(player: PlayerRecord) -> Preferences:
    return msgspec.convert(player.preferences or {}, Preferences)


def public_profile(player: PlayerRecord, winnings: list[AssetResults]) -> PublicProfile:
    return PublicProfile(**_profile_fields(player, winnings))


def own_profile(player: PlayerRecord, winnings: list[AssetResults]) -> OwnProfile:
    return OwnProfile(**_profile_fields(player, winnings), email=player.email, roles=list(player.roles))


def _profile_fields(player: PlayerRecord, winnings: list[AssetResults]) -> dict[str, object]:
    hands = player.hands_played
    return {
        "id": player.id,
        "username": player.username,
        "display_name": player.display_name,
        "country": player.country,
        "bio": player.bio,
        "level": player.level,
        "xp": player.xp,
        "next_level_xp": xp_for_level(player.level + 1),
        "stats": Stats(
            hands_played=hands,
            hands_vpip=player.hands_vpip,
            hands_pfr=player.hands_pfr,
            vpip_pct=round(100 * player.hands_vpip / hands, 1) if hands else 0.0,
            pfr_pct=round(100 * player.hands_pfr / hands, 1) if hands else 0.0,
            tournaments_played=player.tournaments_played,
            winnings=winnings,
        ),
        "member_since": player.created_at,
    }
