"""learned rules: per host, the main-content selectors learned from its pages (pipelines.learn)

Revision ID: 0012_learned_rules
Revises: 0011_triage
Create Date: 2026-11-24 22:30:00
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0012_learned_rules'
down_revision: Union[str, Sequence[str], None] = '0011_triage'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'learned_rules',
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('selector', sa.String(length=1000), nullable=False),
        sa.Column('learned', sa.DateTime(timezone=True), nullable=False),
        sa.Column('pages', sa.Integer(), nullable=False),
        sa.Column('checks', sa.Integer(), nullable=False),
        sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('host', 'selector', name=op.f('pk_learned_rules')),
    )


def downgrade() -> None:
    op.drop_table('learned_rules')
