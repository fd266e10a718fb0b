"""broadcast refusals: how often the node refused a stored transaction

Revision ID: 3b7e1c9d4a26
Revises: 8f90e7dd8968
Create Date: 2026-12-04 15:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '3b7e1c9d4a26'
down_revision: Union[str, Sequence[str], None] = '8f90e7dd8968'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('chain_txs', sa.Column('refusals', sa.Integer(), server_default='0', nullable=False))
    op.add_column('chain_txs', sa.Column('first_refused_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('chain_txs', sa.Column('last_refusal', sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('chain_txs', 'last_refusal')
    op.drop_column('chain_txs', 'first_refused_at')
    op.drop_column('chain_txs', 'refusals')
