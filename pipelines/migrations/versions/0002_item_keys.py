"""item keys: the dedup key moves to ``items.key``; ``items.url`` becomes the address that opens

Until now ``items.url`` held the canonical key (https forced, ``www.`` and the trailing slash
dropped), which may not open. The key is kept, in its own unique column; ``url`` is set to the best
real address the row has: ``final_url`` (where the page was fetched, the API's or the feed's link)
with tracking parameters removed, else the old value.

Revision ID: 0002_item_keys
Revises: 0001
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from pipelines.canonical import strip_tracking

revision: str = "0002_item_keys"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_items = sa.table(
    "items",
    sa.column("id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("url", sa.String),
    sa.column("final_url", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key", sa.String(length=2048), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(_items.c.id, _items.c.url, _items.c.final_url)).all()
    values = [
        {"row_id": row.id, "new_key": row.url,
         "new_url": (strip_tracking(row.final_url) if row.final_url else row.url)[:2048]}
        for row in rows
    ]
    if values:
        conn.execute(
            sa.update(_items).where(_items.c.id == sa.bindparam("row_id"))
            .values(key=sa.bindparam("new_key"), url=sa.bindparam("new_url")),
            values,
        )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.alter_column("key", existing_type=sa.String(length=2048), nullable=False)
        batch_op.drop_constraint("uq_items_url", type_="unique")
        batch_op.create_unique_constraint("uq_items_key", ["key"])


def downgrade() -> None:
    # The key goes back into `url` (the dedup lookups of 0001 read it there).
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_constraint("uq_items_key", type_="unique")
    conn = op.get_bind()
    conn.execute(sa.update(_items).values(url=_items.c.key))
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_items_url", ["url"])
        batch_op.drop_column("key")
