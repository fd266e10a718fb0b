"""accrual_totals at fillfactor 50: a batch's updates of the totals stay on their page (HOT)

Revision ID: d3f8a2b6c1e4
Revises: c7a2e9d41f36
Create Date: 2026-12-05 01:00:00

Every batch updates the totals of its paying players (hands, rake and amount: no indexed column), so an
update that finds room on its row's page is a heap-only tuple, with no new entry in the table's two
indexes. Full pages (the default fillfactor 100) left almost none room: ADR 0011, fifth pass. Pages
already written keep their rows until they are rewritten (``VACUUM FULL accrual_totals``, an exclusive
lock, at a quiet hour); new pages are filled to half.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "d3f8a2b6c1e4"
down_revision: str | Sequence[str] | None = "c7a2e9d41f36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE accrual_totals SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE accrual_totals RESET (fillfactor)")
