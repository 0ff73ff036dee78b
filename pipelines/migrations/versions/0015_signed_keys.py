"""signed keys: a signed address's key no longer holds its signature, expiry or signing credentials

``canonical_url`` now drops them (the same page signed anew has the same key). Keys stored before hold them:
an item's ``key`` and ``link`` and a page record's ``url`` (its signature masked) are rewritten to the form
new passes compute, so the next signed link of a stored page finds it. Keys without a signature are not
touched. Where the rewritten key is already taken (the same page stored twice under two signatures before
this fix) the row keeps its old key: the first one holds the page from now on; nothing is deleted.

Revision ID: 0015_signed_keys
Revises: 0014_workers
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from pipelines.canonical import unsigned_key

revision: str = "0015_signed_keys"
down_revision: Union[str, Sequence[str], None] = "0014_workers"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_items = sa.table("items", sa.column("id", sa.Integer), sa.column("key", sa.String), sa.column("link", sa.String))
_url_states = sa.table("url_states", sa.column("url", sa.String))


def _signed(column: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    # every signature name (signature, sig, x-amz-signature, x-goog-signature) holds "sig"; the rest is Python's
    return sa.func.lower(column).like("%sig%")


def upgrade() -> None:
    conn = op.get_bind()
    taken = set(conn.scalars(sa.select(_items.c.key)))
    for row in conn.execute(sa.select(_items.c.id, _items.c.key).where(_signed(_items.c.key))
                            .order_by(_items.c.id)).all():
        new = unsigned_key(row.key)
        if new != row.key and new not in taken:
            conn.execute(sa.update(_items).where(_items.c.id == row.id).values(key=new))
            taken.add(new)
    for row in conn.execute(sa.select(_items.c.id, _items.c.link).where(_signed(_items.c.link))).all():
        new = unsigned_key(row.link)
        if new != row.link:
            conn.execute(sa.update(_items).where(_items.c.id == row.id).values(link=new))
    states = set(conn.scalars(sa.select(_url_states.c.url)))
    for url in sorted(u for u in states if "sig" in u.lower()):
        new = unsigned_key(url)
        if new != url and new not in states:
            conn.execute(sa.update(_url_states).where(_url_states.c.url == url).values(url=new))
            states.add(new)


def downgrade() -> None:
    # The signatures are not kept anywhere: the rewritten keys stay (an older version reads them as keys of
    # pages it has not met, at worst storing one page once more).
    pass
