"""tournament facts: the engine's journal, and the version of the state snapshot

Revision ID: c51d2e8a9f03
Revises: a3c9e1f27b40
Create Date: 2026-12-02 01:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = 'c51d2e8a9f03'
down_revision: Union[str, Sequence[str], None] = 'a3c9e1f27b40'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('tournament_facts',
    sa.Column('tournament_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['tournament_id'], ['tournaments.id'], name=op.f('fk_tournament_facts_tournament_id_tournaments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tournament_id', 'seq', name=op.f('pk_tournament_facts'))
    )
    # A tournament started before the journal existed: its whole state is its snapshot, as of now.
    op.add_column('tournaments', sa.Column('state_version', sa.BigInteger(), nullable=True))
    op.execute('UPDATE tournaments SET state_version = version')
    op.alter_column('tournaments', 'state_version', nullable=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('tournaments', 'state_version')
    op.drop_table('tournament_facts')
