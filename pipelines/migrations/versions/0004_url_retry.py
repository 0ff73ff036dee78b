"""url retry: failed and blocked URLs wait for their next try (backoff), keep where to fetch them and
their validators (a conditional retry)

Revision ID: 0004_url_retry
Revises: 0001
Create Date: 2026-11-24 15:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004_url_retry'
down_revision: Union[str, Sequence[str], None] = '0003_site_names'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('url_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('fetch_url', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('etag', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('last_modified', sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f('ix_url_states_next_attempt'), ['next_attempt'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('url_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_url_states_next_attempt'))
        batch_op.drop_column('last_modified')
        batch_op.drop_column('etag')
        batch_op.drop_column('fetch_url')
        batch_op.drop_column('next_attempt')
