"""a waiting entry whose buy-in was refused after its offer was accepted: 'refused', not 'seated'

Revision ID: 8db7aae7e1b3
Revises: b9cc7194988b
Create Date: 2026-12-03 17:20:00.000000

"""
from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '8db7aae7e1b3'
down_revision: Union[str, Sequence[str], None] = 'b9cc7194988b'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_constraint(op.f('ck_waiting_entries_status'), 'waiting_entries', type_='check')
    op.create_check_constraint(
        op.f('ck_waiting_entries_status'),
        'waiting_entries',
        "status IN ('waiting', 'offered', 'seated', 'left', 'missed', 'refused')",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("UPDATE waiting_entries SET status = 'left' WHERE status = 'refused'")
    op.drop_constraint(op.f('ck_waiting_entries_status'), 'waiting_entries', type_='check')
    op.create_check_constraint(
        op.f('ck_waiting_entries_status'),
        'waiting_entries',
        "status IN ('waiting', 'offered', 'seated', 'left', 'missed')",
    )
