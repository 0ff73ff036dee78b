"""Alembic environment: runs on the connection ``pipelines.db.migrate`` hands it."""

from __future__ import annotations

from alembic import context

from pipelines.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` run by hand: use the configured URL
    from pipelines.db import make_engine

    url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///data/borderwatch.db"
    with make_engine(url).begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    context.run_migrations()
