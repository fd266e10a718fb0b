"""Player service settings (environment prefix ``TABLIUM_PLAYER_``)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from tablium_kit.settings import InsecureSettingsError, ServiceSettings

DEV_KEYS = Path(__file__).resolve().parents[2] / "dev-keys"
DEV_PRIVATE_KEY = DEV_KEYS / "jwt-dev-private.pem"


class PlayerSettings(ServiceSettings, kw_only=True):
    port: int = 8001
    # Run the consumer of other services' events (lobby.hand_completed: stats, XP, levels).
    consume_events: bool = True
    # The RS256 signing key (PEM file). Public keys of retired signing keys stay
    # published in the JWKS until every token they signed has expired.
    jwt_private_key_file: str = str(DEV_PRIVATE_KEY)
    jwt_retired_public_key_files: list[str] = msgspec.field(default_factory=list)
    access_token_ttl_s: int = 15 * 60
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # Login throttling (docs/adr/0001-service-kit.md, "Player accounts"): attempts per client
    # address per window, then failures that are free before each next attempt waits a doubling
    # delay, from base to max; failures are forgotten memory_s after the last attempt (longer
    # than the largest delay, or waiting it out would start the count again).
    login_attempts_per_ip: int = 30
    login_ip_window_s: int = 60
    login_free_failures_per_ip: int = 20
    login_free_failures_per_account: int = 5
    login_backoff_base_s: float = 1.0
    login_backoff_max_s: float = 15 * 60
    login_failure_memory_s: int = 60 * 60
    # Registration attempts per client address per window (refused ones count).
    registrations_per_ip: int = 10
    registration_window_s: int = 60 * 60
    # argon2id cost (OWASP's second recommended profile: 19 MiB, t=2, p=1).
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19 * 1024
    argon2_parallelism: int = 1

    def check_secrets(self) -> None:
        super().check_secrets()
        if self.is_production and Path(self.jwt_private_key_file).resolve() == DEV_PRIVATE_KEY:
            raise InsecureSettingsError("player: production refuses the development JWT signing key")


def load_settings() -> PlayerSettings:
    return PlayerSettings.from_env("player")
