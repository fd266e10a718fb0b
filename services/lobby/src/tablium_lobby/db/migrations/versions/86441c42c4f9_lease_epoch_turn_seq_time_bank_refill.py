"""lease epoch (the table runner's fencing token), the turn's seq, time bank refill

Revision ID: 86441c42c4f9
Revises: 06da52f8fa83
Create Date: 2026-12-03 13:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '86441c42c4f9'
down_revision: Union[str, Sequence[str], None] = '06da52f8fa83'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('cash_tables', sa.Column('lease_epoch', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
    op.add_column(
        'cash_tables', sa.Column('time_bank_refill_s', sa.Integer(), server_default=sa.text('5'), nullable=False)
    )
    op.add_column(
        'cash_tables', sa.Column('time_bank_refill_hands', sa.Integer(), server_default=sa.text('10'), nullable=False)
    )
    op.create_check_constraint(
        op.f('ck_cash_tables_time_bank_refill'),
        'cash_tables',
        'time_bank_refill_s >= 0 AND time_bank_refill_hands >= 0',
    )
    op.add_column('seats', sa.Column('hands_played', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
    op.add_column('hands', sa.Column('turn_seq', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
    # A hand running across the upgrade: its turn is numbered by the table's seq (as a reload did before).
    op.execute(
        "UPDATE hands SET turn_seq = t.seq FROM cash_tables t WHERE t.id = hands.table_id AND hands.status = 'running'"
    )
    op.add_column('hand_actions', sa.Column('lease_epoch', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('hand_actions', 'lease_epoch')
    op.drop_column('hands', 'turn_seq')
    op.drop_column('seats', 'hands_played')
    op.drop_constraint(op.f('ck_cash_tables_time_bank_refill'), 'cash_tables', type_='check')
    op.drop_column('cash_tables', 'time_bank_refill_hands')
    op.drop_column('cash_tables', 'time_bank_refill_s')
    op.drop_column('cash_tables', 'lease_epoch')
