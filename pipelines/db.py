"""Engines and sessions: SQLite (WAL, ``BEGIN IMMEDIATE`` writes) by default, PostgreSQL by URL.

The schema is owned by Alembic (``pipelines/migrations``); ``open_database`` brings a database to head.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_migrate_lock = threading.Lock()


class DatabaseError(Exception):
    """The database cannot be opened or migrated: the message says which and why, in one line."""


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


def make_engine(url: str, *, readonly: bool = False) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and the pragmas above."""
    try:
        u = make_url(url)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
        raise DatabaseError(f"not a database URL: {url!r} ({exc})") from None
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"timeout": 30})
        _sqlite_hooks(engine, immediate=not readonly)
        return engine
    try:
        return create_engine(u, pool_pre_ping=True)
    except Exception as exc:  # a missing driver, a malformed URL
        raise DatabaseError(f"cannot use database {u.render_as_string(hide_password=True)}: {exc}") from None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _migrate_lock, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """One database: a write engine, a read engine, and session factories."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.read_engine = make_engine(url, readonly=True) if self.is_sqlite else self.engine
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        if create:
            try:
                migrate(self.engine)
            except Exception as exc:
                safe = make_url(url).render_as_string(hide_password=True)
                raise DatabaseError(f"cannot open database {safe}: {str(exc).splitlines()[0]}") from None

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
