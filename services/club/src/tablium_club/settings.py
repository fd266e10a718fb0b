"""Club service settings (environment prefix ``TABLIUM_CLUB_``)."""

from __future__ import annotations

from tablium_kit.settings import ServiceSettings


class ClubSettings(ServiceSettings, kw_only=True):
    port: int = 8002
    # Clubs one player may own at once (a cheap brake on spam).
    max_clubs_per_owner: int = 20
    # Run the consumer of the lobby's table events (each club's list of tables).
    consume_events: bool = True


def load_settings() -> ClubSettings:
    return ClubSettings.from_env("club")
