"""The player service: accounts, credentials, tokens, profiles."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from tablium_kit.app import ServiceDefinition, create_service_app
from tablium_kit.auth import StaticKeySource
from tablium_kit.ratelimit import RateLimiter
from tablium_player.api.auth import AuthController
from tablium_player.api.players import AdminController, MyProfileController, PublicProfileController
from tablium_player.db.models import MESSAGING
from tablium_player.domain.throttle import BackoffPolicy, LoginThrottle
from tablium_player.domain.tokens import SigningKeys
from tablium_player.events.handlers import HANDLERS
from tablium_player.service import Accounts
from tablium_player.settings import PlayerSettings, load_settings

MIGRATIONS = Path(__file__).parent / "db" / "migrations"


def signing_keys(settings: PlayerSettings) -> SigningKeys:
    private_key = load_pem_private_key(Path(settings.jwt_private_key_file).read_bytes(), password=None)
    if not isinstance(private_key, RSAPrivateKey):
        raise ValueError("the JWT signing key must be an RSA private key")
    retired = []
    for path in settings.jwt_retired_public_key_files:
        public_key = load_pem_public_key(Path(path).read_bytes())
        if not isinstance(public_key, RSAPublicKey):
            raise ValueError(f"{path}: not an RSA public key")
        retired.append(public_key)
    return SigningKeys(private_key=private_key, retired=tuple(retired))


def password_hasher(settings: PlayerSettings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        hash_len=RFC_9106_LOW_MEMORY.hash_len,
        salt_len=RFC_9106_LOW_MEMORY.salt_len,
    )


def provide_accounts(state: State) -> Accounts:
    accounts: Accounts = state.accounts
    return accounts


def create_app(settings: PlayerSettings | None = None) -> Litestar:
    settings = settings or load_settings()
    keys = signing_keys(settings)

    async def build_accounts(app: Litestar) -> None:
        redis = app.state.redis
        app.state.accounts = Accounts(
            settings,
            keys,
            password_hasher(settings),
            ip_limiter=RateLimiter(
                redis,
                prefix=settings.redis_key("login", "ip"),
                limit=settings.login_attempts_per_ip,
                window_s=settings.login_ip_window_s,
            ),
            login_throttle=LoginThrottle(
                redis,
                prefix=settings.redis_key("login", "backoff"),
                policy=BackoffPolicy(
                    free_failures_per_ip=settings.login_free_failures_per_ip,
                    free_failures_per_account=settings.login_free_failures_per_account,
                    base_s=settings.login_backoff_base_s,
                    max_s=settings.login_backoff_max_s,
                    memory_s=settings.login_failure_memory_s,
                ),
            ),
            registration_limiter=RateLimiter(
                redis,
                prefix=settings.redis_key("register", "ip"),
                limit=settings.registrations_per_ip,
                window_s=settings.registration_window_s,
            ),
        )

    return create_service_app(
        ServiceDefinition(
            settings=settings,
            title="Tablium player service",
            route_handlers=[AuthController, MyProfileController, PublicProfileController, AdminController],
            migrations_dir=MIGRATIONS,
            uses_redis=True,
            messaging=MESSAGING,
            event_handlers=HANDLERS if settings.consume_events else {},
            key_source=StaticKeySource(keys.public_keys()),
            on_startup=[build_accounts],
            dependencies={"accounts": Provide(provide_accounts, sync_to_thread=False)},
        )
    )
