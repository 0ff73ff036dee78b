"""workers: the ``borderwatch worker`` processes using this database (host, pid, heartbeat, current passes)

Revision ID: 0014_workers
Revises: 0013_search_keys
Create Date: 2026-11-25 00:35:00

procrastinate's own worker table has an id and a heartbeat only; ``borderwatch status`` shows where each worker
runs and what it is passing over, and ``borderwatch run`` refuses a database that live workers use.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0014_workers'
down_revision: Union[str, Sequence[str], None] = '0013_search_keys'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'workers',
        sa.Column('name', sa.String(length=300), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('concurrency', sa.Integer(), nullable=False),
        sa.Column('started', sa.DateTime(timezone=True), nullable=False),
        sa.Column('heartbeat', sa.DateTime(timezone=True), nullable=False),
        sa.Column('passing', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_workers')),
    )


def downgrade() -> None:
    op.drop_table('workers')
