"""Engines and sessions: SQLite (WAL, ``BEGIN IMMEDIATE`` writes) by default, PostgreSQL by URL.

The schema is owned by Alembic (``pipelines/migrations``). Opening a ``Database`` reads the schema's
revision without any lock and migrates (under the write lock) only a database that is behind, so readers
(``items``, ``show``, ``status``) never wait for a crawl's write transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_DATABASE = "sqlite:///data/borderwatch.db"
# The only folder opening a database may create: the default's (``./data/``). Any other missing
# folder is a mistyped path, and a new empty store there would hide the real one.
DEFAULT_FOLDER = Path("data")
_migrate_lock = threading.Lock()


class DatabaseError(Exception):
    """The database cannot be opened or migrated: the message says which and why, in one line.

    ``usage`` is true when the URL itself is at fault (malformed, no driver, a folder that does not exist,
    a SQLite file that cannot be opened): a configuration error, not a failure of a working database.
    """

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def check_url(url: str) -> URL:
    """The parsed URL, if it is one SQLAlchemy can use here (its dialect and driver installed)."""
    try:
        u = make_url(url)
    except Exception:  # sqlalchemy.exc.ArgumentError and friends
        raise DatabaseError(f"not a database URL: {url!r} (expected e.g. {DEFAULT_DATABASE})", usage=True) from None
    safe = u.render_as_string(hide_password=True)
    try:
        u.get_dialect().import_dbapi()
    except ImportError as exc:
        raise DatabaseError(f"{safe}: the driver is not installed ({exc})", usage=True) from None
    except Exception as exc:  # sqlalchemy.exc.NoSuchModuleError: an unknown dialect
        raise DatabaseError(f"{safe}: unknown database kind ({str(exc).splitlines()[0]})", usage=True) from None
    return u


def _sqlite_hooks(engine: Engine, immediate: bool) -> None:
    # Python 3.11's sqlite3 opens transactions on its own and never with IMMEDIATE; take that over
    # (SQLAlchemy's documented recipe) so a writer takes the write lock at BEGIN and never fails
    # half-way with "database is locked" when another process wrote first.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed transaction
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_folder(database: str) -> None:
    """The folder of a SQLite file must exist; only the default ``./data/`` is created."""
    folder = Path(database).expanduser().parent
    if folder.is_dir():
        return
    if folder == DEFAULT_FOLDER and not folder.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the folder {folder}: {exc.strerror or exc}", usage=True) from None
        return
    what = "is not a folder" if folder.exists() else "does not exist"
    raise DatabaseError(f"the folder {folder} {what} (create it first, or fix the path)", usage=True)


def make_engine(url: str, *, readonly: bool = False) -> Engine:
    """An engine for ``url``; SQLite files get the pragmas above (and only the default folder is created)."""
    u = check_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            _sqlite_folder(u.database)
        engine = create_engine(u, connect_args={"timeout": 30})
        _sqlite_hooks(engine, immediate=not readonly)
        return engine
    try:
        return create_engine(u, pool_pre_ping=True)
    except Exception as exc:  # a malformed URL the dialect refuses
        safe = u.render_as_string(hide_password=True)
        raise DatabaseError(f"cannot use {safe}: {str(exc).splitlines()[0]}", usage=True) from None


def _alembic_config() -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def is_current(engine: Engine) -> bool:
    """Whether the schema is at the newest revision, read without taking any write lock."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config()).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
        conn.rollback()
    return current == heads


# An arbitrary constant of ours for the PostgreSQL advisory lock that serialises migrations ("bwMG").
MIGRATE_LOCK_KEY = 0x6277_4D47


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent), under the write lock."""
    from alembic import command

    cfg = _alembic_config()
    with _migrate_lock, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several processes opening a new (or older) database at once (workers starting together) would
            # each create the same tables (a duplicate key in pg_type): one migrates, the others then find
            # the schema current. SQLite's write lock does this for it.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK_KEY})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


FTS5_MISSING = ("this Python's SQLite ({version}) is built without FTS5, which full-text search needs; "
                "nothing was changed: run borderwatch with a Python whose sqlite3 has FTS5 (python.org, Debian "
                "and conda builds do), or use a PostgreSQL database")


def sqlite_has_fts5(engine: Engine) -> bool:
    """Whether SQLite here can make FTS5 tables (tried on a throw-away table in the temp schema)."""
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql("CREATE VIRTUAL TABLE temp.borderwatch_fts5_probe USING fts5(x)")
            conn.exec_driver_sql("DROP TABLE temp.borderwatch_fts5_probe")
            return True
        except Exception:  # sqlite3.OperationalError: no such module: fts5
            return False
        finally:
            conn.rollback()


class Database:
    """One database: a write engine, a read engine, and session factories."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.read_engine = make_engine(url, readonly=True) if self.is_sqlite else self.engine
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        if create and self.is_sqlite and not sqlite_has_fts5(self.read_engine):
            import sqlite3

            self.dispose()
            safe = make_url(url).render_as_string(hide_password=True)
            raise DatabaseError(f"cannot open {safe}: " + FTS5_MISSING.format(version=sqlite3.sqlite_version))
        if create:
            try:
                # A reader's check first: BEGIN (deferred) on SQLite, so a crawl's long write
                # transaction never makes `items` or `status` wait; the write lock only when behind.
                if not is_current(self.read_engine):
                    migrate(self.engine)
            except Exception as exc:
                self.dispose()
                safe = make_url(url).render_as_string(hide_password=True)
                first = (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0]
                # A SQLite file that cannot be opened is the URL's fault (a path, a permission).
                usage = self.is_sqlite and "unable to open database file" in first
                raise DatabaseError(f"cannot open {safe}: {first}", usage=usage) from None

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on error."""
        with self._write.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
