"""triage: each web user's marks on items (read, starred, a note)

Revision ID: 0011_triage
Revises: 0010_search
Create Date: 2026-11-24 21:20:00

``borderwatch serve`` keeps per-user triage in its own table; the crawl's tables are never written by it.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0011_triage'
down_revision: Union[str, Sequence[str], None] = '0010_search'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'triage',
        sa.Column('user', sa.String(length=200), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('read', sa.Boolean(), nullable=False),
        sa.Column('starred', sa.Boolean(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_triage_item_id_items'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user', 'item_id', name=op.f('pk_triage')),
    )
    op.create_index(op.f('ix_triage_item_id'), 'triage', ['item_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_triage_item_id'), table_name='triage')
    op.drop_table('triage')
