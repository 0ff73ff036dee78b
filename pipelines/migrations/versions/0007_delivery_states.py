"""delivery states: each attempt's outcome (sent, failed, uncertain)

A send that timed out after the message went out may have been received: it is recorded as ``uncertain``,
neither a success nor a failure to retry blindly. Rows written before this revision get ``sent`` or
``failed`` from their ``ok`` flag. (The delivery states ``uncertain`` and ``orphaned`` need no schema change:
``deliveries.state`` is a free string.)

Revision ID: 0007
Revises: 0001
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0004_url_retry'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=20), nullable=True))
    attempts = sa.table('delivery_attempts', sa.column('ok', sa.Boolean()), sa.column('outcome', sa.String(20)))
    op.execute(attempts.update().values(
        outcome=sa.case((attempts.c.ok.is_(True), 'sent'), else_='failed')
    ))


def downgrade() -> None:
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.drop_column('outcome')
