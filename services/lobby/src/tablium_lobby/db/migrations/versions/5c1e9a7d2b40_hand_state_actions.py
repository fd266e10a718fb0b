"""the number of actions a hand's saved state includes (the hot path writes only the action row)

Revision ID: 5c1e9a7d2b40
Revises: 8db7aae7e1b3
Create Date: 2026-12-04 18:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '5c1e9a7d2b40'
down_revision: Union[str, Sequence[str], None] = '8db7aae7e1b3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('hands', sa.Column('state_actions', sa.Integer(), server_default=sa.text('0'), nullable=False))
    # Until now every action saved the whole state: each existing hand's state includes all its actions.
    op.execute("UPDATE hands SET state_actions = actions")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('hands', 'state_actions')
