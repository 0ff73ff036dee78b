"""search keys: a narrow copy of what search filters and sorts by, one row per item, kept by triggers

Revision ID: 0013_search_keys
Revises: 0012_learned_rules
Create Date: 2026-11-25 00:30:00

``search_keys`` holds, for each item, the date it is sorted and filtered by (``sort_at`` =
``coalesce(published, first_seen)``), its source, its language (lower case) and its story: about 60 bytes
a row where an item's row is kilobytes of text. On SQLite an item's date and language sit after its text,
in the row's overflow pages, so a filter or a ranking that read them from ``items`` read every match's
text; a query without words sorted on an expression no index covered. Indexed by ``(sort_at, item_id)``
(newest first without a sort) and by ``(source, sort_at)``.

Kept in step by triggers on ``items`` (insert, update of those columns, delete) on both databases, so
every writer (the store, a bulk load, a hand-made ``UPDATE``) keeps it right; filled from the items already
stored.

Copied SQL, not imported from the code: a migration must not change with it.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0013_search_keys'
down_revision: Union[str, Sequence[str], None] = '0012_learned_rules'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

VALUES = "coalesce({r}.published, {r}.first_seen), {r}.source, lower({r}.language), {r}.story_id"
COLUMNS = "(item_id, sort_at, source, lang, story_id)"
WATCHED = "published, first_seen, source, language, story_id"


def upgrade() -> None:
    op.create_table(
        'search_keys',
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('sort_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('lang', sa.String(length=16), nullable=True),
        sa.Column('story_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_search_keys_item_id_items'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('item_id', name=op.f('pk_search_keys')),
    )
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        op.execute(f"CREATE TRIGGER search_keys_insert AFTER INSERT ON items BEGIN "
                   f"INSERT INTO search_keys {COLUMNS} VALUES (new.id, {VALUES.format(r='new')}); END")
        op.execute(f"CREATE TRIGGER search_keys_update AFTER UPDATE OF {WATCHED} ON items BEGIN "
                   f"INSERT OR REPLACE INTO search_keys {COLUMNS} VALUES (new.id, {VALUES.format(r='new')}); END")
        # Also without PRAGMA foreign_keys (a bulk load through sqlite3 itself): no key outlives its item.
        op.execute("CREATE TRIGGER search_keys_delete AFTER DELETE ON items BEGIN "
                   "DELETE FROM search_keys WHERE item_id = old.id; END")
    else:
        # OR REPLACE: a database whose tables were dropped keeps its functions (a schema rebuilt from nothing).
        op.execute("CREATE OR REPLACE FUNCTION borderwatch_search_keys() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   "BEGIN "
                   f"INSERT INTO search_keys {COLUMNS} VALUES (NEW.id, {VALUES.format(r='NEW')}) "
                   "ON CONFLICT (item_id) DO UPDATE SET sort_at = EXCLUDED.sort_at, source = EXCLUDED.source, "
                   "lang = EXCLUDED.lang, story_id = EXCLUDED.story_id; RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER search_keys_upsert AFTER INSERT OR UPDATE OF {WATCHED} ON items "
                   "FOR EACH ROW EXECUTE FUNCTION borderwatch_search_keys()")
    op.execute(f"INSERT INTO search_keys {COLUMNS} SELECT items.id, {VALUES.format(r='items')} FROM items")
    op.create_index('ix_search_keys_sort_at', 'search_keys', ['sort_at', 'item_id'])
    op.create_index('ix_search_keys_source', 'search_keys', ['source', 'sort_at'])
    op.create_index('ix_search_keys_story_id', 'search_keys', ['story_id'])
    op.execute("ANALYZE search_keys")  # the planner's figures for the new table and its indexes


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS search_keys_{name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS search_keys_upsert ON items")
        op.execute("DROP FUNCTION IF EXISTS borderwatch_search_keys()")
    op.drop_table('search_keys')
