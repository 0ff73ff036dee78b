"""Shared fixtures: databases (SQLite file and a throw-away PostgreSQL database) and the service guard.

A test that needs a server skips with the reason on a machine without one; with
``BORDERWATCH_REQUIRE_SERVICES=1`` (``.ci/run`` sets it) the skip becomes a failure, so CI never
passes on skipped tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.db import Database

PG_ADMIN_URL = os.environ.get("BORDERWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
CORPUS = Path(os.environ.get("BORDERWATCH_CORPUS", SHARED / "corpus"))


def need_service(reason: str) -> None:
    """Skip (or, under CI, fail) a test whose server is not there."""
    if os.environ.get("BORDERWATCH_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def need_corpus() -> Path:
    if not CORPUS.is_dir():
        need_service(f"the shared corpus is not at {CORPUS} (set BORDERWATCH_CORPUS)")
    return CORPUS


@pytest.fixture
def corpus() -> Path:
    return need_corpus()


@pytest.fixture
def hook() -> Iterator[Any]:
    """A local HTTP webhook receiver (apprise's json:// reaches it); see tests/alert_support.py."""
    from alert_support import Webhook

    with Webhook() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[Any]:
    """A local SMTP server (aiosmtpd) that keeps what it receives."""
    from alert_support import SmtpSink

    with SmtpSink() as server:
        yield server


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'borderwatch.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bw_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        need_service(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs against SQLite and against PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        database.dispose()
