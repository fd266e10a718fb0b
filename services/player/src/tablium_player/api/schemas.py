"""Request and response bodies. Requests reject unknown fields: a typo is an error, not a no-op."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from tablium_kit.inputs import exact
from tablium_kit.money import Amount, SignedAmount

# Checked after NFKC normalisation (rules.normalize_username), so no pattern here: a fullwidth
# "\uff41lice" is "alice", and taken if "alice" is.
Username = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=20,
        description="3-20 letters, digits or underscores after Unicode NFKC normalisation; unique ignoring case.",
    ),
]
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=254, description="Unique ignoring case (NFKC, Unicode case folding).")
]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class RegisterRequest(Request):
    username: Username
    email: Email
    password: Password


class LoginRequest(Request):
    # Either the username or the e-mail address.
    login: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
    password: Password


class RefreshRequest(Request):
    refresh_token: Token


class TokenPair(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int


class Session(msgspec.Struct, kw_only=True):
    player_id: str
    roles: list[str]


class AssetResults(msgspec.Struct, kw_only=True):
    """Money results at cash tables in one asset (minor units, as decimal strings)."""

    asset: str
    hands_played: int
    net_winnings: Annotated[
        SignedAmount,
        msgspec.Meta(description="Sum over hands of stack after minus stack before (rake already taken out)."),
    ]
    rake_paid: Amount
    biggest_pot_won: Annotated[Amount, msgspec.Meta(description="The most chips pushed to the player in one hand.")]


class Stats(msgspec.Struct, kw_only=True):
    hands_played: int
    # Hands where the player put chips in voluntarily preflop / raised preflop (blinds don't count).
    hands_vpip: int
    hands_pfr: int
    vpip_pct: float
    pfr_pct: float
    tournaments_played: int
    winnings: list[AssetResults]


class PublicProfile(msgspec.Struct, kw_only=True):
    id: UUID
    username: str
    display_name: str | None
    country: str | None
    bio: str | None
    level: int
    xp: int
    next_level_xp: Annotated[int, msgspec.Meta(description="Total XP at which the next level is reached.")]
    stats: Stats
    member_since: datetime


class OwnProfile(PublicProfile, kw_only=True):
    email: str
    roles: list[str]


class ProfileUpdate(Request):
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)] | msgspec.UnsetType | None = msgspec.UNSET
    country: Annotated[str, msgspec.Meta(pattern=exact("[A-Z]{2}"))] | msgspec.UnsetType | None = msgspec.UNSET
    bio: Annotated[str, msgspec.Meta(max_length=280)] | msgspec.UnsetType | None = msgspec.UNSET


class Preferences(Request):
    four_color_deck: bool = False
    auto_muck_losing_hands: bool = True
    sound: bool = True
    show_bets_in_big_blinds: bool = False
    language: Annotated[str, msgspec.Meta(pattern=exact("[a-z]{2}(-[A-Z]{2})?"))] = "en"
    time_zone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"


class RolesUpdate(Request):
    roles: Annotated[list[str], msgspec.Meta(min_length=1, max_length=8)]
