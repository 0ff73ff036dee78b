"""untrusted dates: publication dates stored before the rule (more than a day after the first fetch) cleared

Revision ID: 0008_untrusted_dates
Revises: 0007
Create Date: 2026-11-24 17:05:00

An item stored with ``published`` in year 9999 (or days ahead of its first fetch) sorted at the top of every
listing for ever. New items no longer get such a date (``pipelines.timeutil.trusted_published``); this clears
it on the items stored before, so they are ordered and judged fresh by ``first_seen`` like undated items.
"""
from datetime import UTC, datetime, timedelta
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008_untrusted_dates'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The same slack as pipelines.timeutil.FUTURE_DATE_SLACK (copied: a migration must not change with the code).
SLACK = timedelta(days=1)

items = sa.table('items', sa.column('id', sa.Integer), sa.column('published', sa.DateTime(timezone=True)),
                 sa.column('first_seen', sa.DateTime(timezone=True)))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(items.c.id, items.c.published, items.c.first_seen)
                        .where(items.c.published > items.c.first_seen)).all()
    ids = [r.id for r in rows if _utc(r.published) > _utc(r.first_seen) + SLACK]
    for start in range(0, len(ids), 500):
        conn.execute(sa.update(items).where(items.c.id.in_(ids[start:start + 500])).values(published=None))


def downgrade() -> None:
    pass  # the dates cleared were not believable; nothing to put back
