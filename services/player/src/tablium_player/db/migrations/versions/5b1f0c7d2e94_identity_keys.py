"""identity keys: usernames and e-mail addresses compared NFKC + case folded

Revision ID: 5b1f0c7d2e94
Revises: 0ee94424ee2f
Create Date: 2026-12-03 08:00:00

The old unique indexes were on Postgres' ``lower()``, which neither folds case like Python
(``İ``, ``ß``) nor maps compatibility forms (fullwidth ``ａ``): the service's own check and the
index disagreed (a 500 on insert) and ``ａlice`` was a second ``alice``. The keys are now computed
by ``rules.identity_key`` alone, here and on every insert and login.

Rows are keyed oldest first. If two existing accounts have the same key, the oldest keeps it and
the newer one's key stays NULL (it cannot log in with that identifier until support renames it);
each such account is logged. Downgrading restores the ``lower()`` indexes, which fails if two
addresses now differ only in a way ``lower()`` ignores.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tablium_player.domain.rules import identity_key

revision: str = "5b1f0c7d2e94"
down_revision: str | Sequence[str] | None = "0ee94424ee2f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
BATCH = 5000


def upgrade() -> None:
    op.add_column("players", sa.Column("username_key", sa.String(length=20), nullable=True))
    op.add_column("players", sa.Column("email_key", sa.String(length=254), nullable=True))
    conn = op.get_bind()
    seen: dict[str, set[str]] = {"username_key": set(), "email_key": set()}
    after: tuple[object, object] | None = None
    while True:
        page = sa.text(
            "SELECT id, created_at, username, email FROM players"
            + (" WHERE (created_at, id) > (:created_at, :id)" if after else "")
            + " ORDER BY created_at, id LIMIT :limit"
        )
        params = {"limit": BATCH} | ({"created_at": after[0], "id": after[1]} if after else {})
        rows = conn.execute(page, params).all()
        if not rows:
            break
        updates = []
        for player_id, _, username, email in rows:
            update: dict[str, object] = {"id": player_id}
            for column, key in (("username_key", identity_key(username)), ("email_key", identity_key(email))):
                if key in seen[column]:
                    log.warning("player %s: %s %r is taken by an older account; left NULL", player_id, column, key)
                    update[column] = None
                else:
                    seen[column].add(key)
                    update[column] = key
            updates.append(update)
        conn.execute(
            sa.text("UPDATE players SET username_key = :username_key, email_key = :email_key WHERE id = :id"), updates
        )
        after = (rows[-1][1], rows[-1][0])
    op.drop_index("uq_players_username_lower", table_name="players")
    op.drop_index("uq_players_email_lower", table_name="players")
    op.create_unique_constraint(op.f("uq_players_username_key"), "players", ["username_key"])
    op.create_unique_constraint(op.f("uq_players_email_key"), "players", ["email_key"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_players_email_key"), "players", type_="unique")
    op.drop_constraint(op.f("uq_players_username_key"), "players", type_="unique")
    op.create_index("uq_players_email_lower", "players", [sa.literal_column("lower(email)")], unique=True)
    op.create_index("uq_players_username_lower", "players", [sa.literal_column("lower(username)")], unique=True)
    op.drop_column("players", "email_key")
    op.drop_column("players", "username_key")
