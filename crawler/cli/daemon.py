"""The ``run`` (the daemon) and ``status`` commands; ``crawler.cli.main`` registers them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crawler.config import DEFAULT_CONFIG, PACKAGED_CONFIG
from pipelines.timeutil import utcnow

if TYPE_CHECKING:
    from crawler.cli.main import App


def config_file(app: App) -> str:
    """The file the config was read from (as ``load_config`` finds it), absolute, for the pass processes."""
    path = Path(app.config_path or os.environ.get("BORDERWATCH_CONFIG") or DEFAULT_CONFIG)
    if not app.config_path and str(path) == DEFAULT_CONFIG and not path.exists() and PACKAGED_CONFIG.exists():
        path = PACKAGED_CONFIG
    return str(path.resolve())


@click.command()
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines as text or one JSON object per line (default: run.log_format).")
@click.pass_obj
def run(app: App, log_format: str | None) -> None:
    """The daemon: every source on its schedule, alerts as they arise, until SIGTERM/SIGINT."""
    from crawler.cli.main import fail, usage_error
    from crawler.daemon.logs import setup_logging
    from crawler.daemon.scheduler import Daemon, claim_daemon_lease
    from pipelines.leases import Leases

    config = app.config
    app.check_topics()
    if not any(s.enabled for s in config.sources):
        usage_error(f"{app.config_path or 'config'}: sources: no enabled sources to run")
    # The daemon's own lines (one per pass) are the point: INFO by default, -v adds nothing, -vv debug.
    setup_logging(log_format or config.run.log_format, "DEBUG" if app.verbose > 1 else "INFO")
    db = app.db
    store = Leases(db)
    refused = claim_daemon_lease(store, db, utcnow())
    if refused is not None:
        fail(refused)
    # The lease first, then the workers' rows: of a daemon and a worker starting at once, one sees the other.
    from crawler.daemon import registry
    from crawler.daemon.scheduler import DAEMON_LEASE_NAME

    workers = registry.live_workers(db, utcnow(), registry.SILENT_AFTER)
    if workers:
        store.release(DAEMON_LEASE_NAME)
        db.dispose()
        usage_error(f"{app.config_path or 'config'}: database: {registry.describe(workers)} use this database: "
                    "`borderwatch run` beside them would pass every source twice; stop them first, or run more "
                    "workers instead")
    daemon = Daemon(config, config_file(app), db, store, verbose=app.verbose)
    try:
        code = daemon.run()
    finally:
        db.dispose()
    sys.exit(code)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def status(app: App, fmt: str) -> None:
    """Each source's last and next pass, items, failures and health; the alert backlog; the daemon."""
    from crawler.read.status import gather, render_table, to_json

    db = app.db  # (outside the try: a refused config must not be reported again by the clean-up)
    try:
        report = gather(db, app.config, utcnow())
    finally:
        db.dispose()
    if fmt == "json":
        click.echo(json.dumps(to_json(report), ensure_ascii=False))
        return
    for line in render_table(report):
        click.echo(line)


@click.command()
@click.option("--concurrency", type=click.IntRange(min=1, max=64), default=None,
              help="Passes this worker runs at once (default: run.parallel).")
@click.option("--tick", "tick", type=click.IntRange(min=1, max=59), default=30, show_default=True,
              help="Seconds between schedule ticks (any one worker defers the due passes each tick).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines as text or one JSON object per line (default: run.log_format).")
@click.pass_obj
def worker(app: App, concurrency: int | None, tick: int, log_format: str | None) -> None:
    """A worker of the fleet: passes and alerts from the job queue in PostgreSQL, until SIGTERM/SIGINT."""
    from crawler.cli.main import usage_error
    from crawler.daemon.logs import setup_logging

    config = app.config
    if not config.database.startswith("postgresql"):
        usage_error(f"{app.config_path or 'config'}: database: `borderwatch worker` needs PostgreSQL (the job "
                    "queue and the fleet's per-host politeness live in it); with SQLite use `borderwatch run`")
    from crawler.daemon.fleet import Runtime, SharedDatabase, run_worker

    app.check_topics()
    setup_logging(log_format or config.run.log_format, "DEBUG" if app.verbose > 1 else "INFO")
    db = app.db
    rt = Runtime(config=config, config_file=config_file(app), db=db, verbose=app.verbose)
    try:
        code = run_worker(rt, config.database, concurrency or config.run.parallel, tick)
    except SharedDatabase as exc:
        usage_error(f"{app.config_path or 'config'}: database: {exc}")
    finally:
        db.dispose()
    sys.exit(code)
