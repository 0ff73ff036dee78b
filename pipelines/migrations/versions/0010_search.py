"""search: full-text indexes over items (SQLite FTS5 table with triggers; PostgreSQL tsvector + GIN)

Revision ID: 0010_search
Revises: 0008_untrusted_dates
Create Date: 2026-11-24 21:30:00

SQLite: ``items_fts``, an external-content FTS5 table over ``items.title`` and ``items.text``
(``unicode61 remove_diacritics 2``: case and accents folded), kept in step with ``items`` by three
triggers, and filled from the items already stored.

PostgreSQL: the ``unaccent`` extension, a text-search configuration ``borderwatch`` (``simple`` words, no
stemming, accents removed) and ``items.search_vector``, a stored generated ``tsvector`` (title weight A,
text weight B) under a GIN index. ASCII punctuation is turned into spaces before PostgreSQL's parser sees
the text, so it cuts words where FTS5 does (``U.S.`` is ``u s``, ``fentanyl-laced`` two words, an address
its parts) and a query finds the same items on both databases. Only the first 500,000 characters of a
text are indexed: a tsvector is limited to 1 MB, and an item over the limit would fail to store.

Copied SQL, not imported from the code: a migration must not change with it.
"""
import string
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0010_search'
down_revision: Union[str, Sequence[str], None] = '0008_untrusted_dates'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PUNCT = string.punctuation.replace("'", "''")
SPACES = " " * len(string.punctuation)
INDEXED_CHARS = 500000


def _pg_text(column: str) -> str:
    return f"translate(left(coalesce({column}, ''), {INDEXED_CHARS}), '{PUNCT}', '{SPACES}')"


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(title, text, content='items', content_rowid='id', "
                   "tokenize='unicode61 remove_diacritics 2')")
        op.execute("CREATE TRIGGER IF NOT EXISTS items_fts_insert AFTER INSERT ON items BEGIN "
                   "INSERT INTO items_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END")
        op.execute("CREATE TRIGGER IF NOT EXISTS items_fts_delete AFTER DELETE ON items BEGIN "
                   "INSERT INTO items_fts(items_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); "
                   "END")
        op.execute("CREATE TRIGGER IF NOT EXISTS items_fts_update AFTER UPDATE OF title, text ON items BEGIN "
                   "INSERT INTO items_fts(items_fts, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); "
                   "INSERT INTO items_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END")
        op.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("DO $$ BEGIN "
               "IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'borderwatch') THEN "
               "CREATE TEXT SEARCH CONFIGURATION borderwatch (COPY = simple); "
               "ALTER TEXT SEARCH CONFIGURATION borderwatch ALTER MAPPING FOR "
               "asciiword, word, numword, asciihword, hword, numhword, hword_asciipart, hword_part, hword_numpart "
               "WITH unaccent, simple; "
               "END IF; END $$")
    op.execute("ALTER TABLE items ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
               f"setweight(to_tsvector('borderwatch'::regconfig, {_pg_text('title')}), 'A') || "
               f"setweight(to_tsvector('borderwatch'::regconfig, {_pg_text('text')}), 'B')) STORED")
    op.execute("CREATE INDEX ix_items_search_vector ON items USING gin (search_vector)")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS items_fts_{name}")
        op.execute("DROP TABLE IF EXISTS items_fts")
        return
    op.execute("DROP INDEX IF EXISTS ix_items_search_vector")
    op.execute("ALTER TABLE items DROP COLUMN IF EXISTS search_vector")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS borderwatch")
