"""The club service: clubs, members, roles, agents, unions and rakeback deals."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar

from tablium_club.api.clubs import ClubController
from tablium_club.api.deals import DealController, UnionController
from tablium_club.api.members import InviteController, MembershipController
from tablium_club.db.models import MESSAGING
from tablium_club.events.handlers import HANDLERS
from tablium_club.settings import ClubSettings, load_settings
from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import KeySource

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def create_app(settings: ClubSettings | None = None, *, key_source: KeySource | None = None) -> Litestar:
    settings = settings or load_settings()
    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="Tablium club service",
            route_handlers=[ClubController, MembershipController, InviteController, DealController, UnionController],
            migrations_dir=MIGRATIONS,
            messaging=MESSAGING,
            event_handlers=HANDLERS if settings.consume_events else {},
            key_source=key_source,
        )
    )
