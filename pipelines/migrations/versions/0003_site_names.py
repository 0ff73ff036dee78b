"""site names: the publisher's own name for an item (og:site_name, application-name, the feed's title)

Revision ID: 0003_site_names
Revises: 0001
Create Date: 2026-11-24 15:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003_site_names'
down_revision: Union[str, Sequence[str], None] = '0002_item_keys'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('items') as batch:
        batch.add_column(sa.Column('site_name', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('items') as batch:
        batch.drop_column('site_name')
