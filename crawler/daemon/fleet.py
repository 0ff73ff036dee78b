"""``borderwatch worker``: passes and alert dispatch from a procrastinate queue on the team's PostgreSQL.

Any number of workers on any number of machines share one database; nothing else needs to run.

- **The schedule**: a periodic ``borderwatch.tick`` (procrastinate's periodic tasks: deferred once per period
  whatever the number of workers, since each period's job is unique in ``procrastinate_periodic_defers``) looks
  at every enabled source's last pass (the ledger) and defers ``borderwatch.pass`` for each one that is due and
  has no pass waiting or running.
- **One pass per source at a time**: ``lock=source`` (never two running) and ``queueing_lock=source`` (never two
  waiting). A pass job that finds the source passed since it was queued does nothing (at-least-once delivery
  meets an idempotent pass: items are unique by URL, alerts by the outbox's keys).
- **Crashes**: a worker killed mid-pass leaves its job "doing"; its heartbeat stops, and the tick hands every job
  of a worker silent for ``STALLED_AFTER`` back to the queue (``get_stalled_jobs`` + ``retry_job``). The killed
  worker's pass process notices its parent is gone and kills itself (``crawler.daemon.warm``), so the re-run
  never races it; a re-run that still finds the source leased is retried later.
- **A pass** runs in a fork of a warm parent (``crawler.daemon.warm``) and is settled in the ledger exactly as the
  daemon settles its children (``crawler.passes.ledger.settle``).

Its schema: procrastinate's own tables, applied at the worker's start when missing (under an advisory lock, so
several workers starting at once apply it once); ``ensure_schema`` is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status
from sqlalchemy import text
from sqlalchemy.engine import make_url

from crawler.config import Config
from crawler.daemon import health, registry
from crawler.daemon.child import StopRequest
from crawler.daemon.logs import fields
from crawler.daemon.warm import run_warm
from crawler.passes import ledger
from crawler.passes.report import PassReport, read_reports
from pipelines.db import Database
from pipelines.timeutil import utcnow

if TYPE_CHECKING:
    from alerts.views import Labels

log = logging.getLogger("borderwatch.worker")

PASS_TASK, TICK_TASK, DISPATCH_TASK = "borderwatch.pass", "borderwatch.tick", "borderwatch.dispatch"
# A worker whose heartbeat is older than this is taken for dead and its jobs are run again elsewhere.
HEARTBEAT_EVERY = registry.HEARTBEAT_EVERY
STALLED_AFTER = registry.SILENT_AFTER
# A pass that finds its source leased (a manual crawl, a pass process not yet gone) tries again this much later.
LOCKED_RETRY = 10
# Ticks and alert deliveries are taken before any waiting pass (procrastinate runs higher priorities first): with
# more passes due than the fleet has slots, they would otherwise wait behind the whole queue (bench/fleet.py
# fleet: no alert in 90 s with 40 sources on two slots).
URGENT = 10
# Ticks and alert deliveries run on a queue of their own, served by one more slot in every worker: they never take
# a pass's slot (with one worker of 2 slots and a tick every second, they held one slot half the time: bench/fleet.py).
CONTROL = "control"
# A dispatch job sends for this long at most (a send starts only while a whole alerts.send_timeout fits): unlike
# the daemon's, it holds no pass back, but it holds a slot and the shutdown waits for it. The run.dispatch_every
# budget (the daemon's, between passes) let one alert out per job when send_timeout exceeded it.
DISPATCH_BUDGET = 30.0
# An arbitrary constant of ours for the advisory lock that serialises applying the queue's schema.
SCHEMA_LOCK_KEY = 0x6277_5152  # "bwQR"


class NotPostgres(Exception):
    """The worker needs PostgreSQL (the queue lives in it)."""


class SharedDatabase(Exception):
    """``borderwatch run`` uses this database: a worker refuses to start beside it (both would schedule)."""


class SourceLeased(Exception):
    """The source was being passed over by another process: the job is retried later."""


def conninfo(url: str) -> str:
    """A libpq URL for procrastinate's psycopg connector from the store's SQLAlchemy URL."""
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        raise NotPostgres(u.get_backend_name())
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_schema(db: Database) -> bool:
    """Apply procrastinate's schema if it is not there yet; True if it was applied now. Idempotent and safe with
    several workers starting at once (a transaction-scoped advisory lock)."""
    from procrastinate.schema import SchemaManager

    with db.engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
        if conn.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is not None:
            return False
        conn.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
        return True


@dataclass
class Runtime:
    """What the tasks of this worker process use: its config, database and stop request."""

    config: Config
    config_file: str
    db: Database
    verbose: int = 0
    stop: StopRequest = field(default_factory=StopRequest)
    running: dict[int, str] = field(default_factory=dict)
    heartbeat: registry.Heartbeat | None = None  # this worker's row in the fleet's register
    health_lock: threading.Lock = field(default_factory=threading.Lock)
    _labels: Labels | None = None

    def labels(self) -> Labels:
        """The config's topic and source labels, read once (each reading compiles the topics file)."""
        if self._labels is None:
            self._labels = self.config.labels()
        return self._labels


def make_app(url: str, runtime: Runtime | None, tick_seconds: int = 30) -> procrastinate.App:
    """The queue and its tasks. ``runtime`` None: an app that only defers (and reads the queue)."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)))

    def need() -> Runtime:
        assert runtime is not None, "tasks run in a worker only"
        return runtime

    @app.task(name=PASS_TASK, pass_context=False,
              retry=procrastinate.RetryStrategy(max_attempts=30, wait=LOCKED_RETRY, retry_exceptions={SourceLeased}))
    async def run_pass(source: str, queued: str) -> str:
        rt = need()
        record = await asyncio.to_thread(pass_once, rt, source, queued)
        if record is None:
            return "skipped"
        if record.status == "locked":
            raise SourceLeased(record.error or "locked")
        if record.status == "stopped":
            # Cut short by this worker's shutdown (run.grace ran out): handed back at once, for another worker.
            # The stopped pass does not count as the source's last, so the new job is not skipped as done; it
            # waits for this one's lock; what the stopped pass stored is known to it (unique URLs, outbox keys).
            await defer_pass(app, source)  # (False: a tick queued it already)
            log.info("%s: pass handed back to the queue", source, extra=fields(source=source, event="handback"))
        if record.new or record.updated or record.status != "ok":
            await defer_dispatch(app)
        return record.status

    @app.task(name=DISPATCH_TASK, pass_context=False, lock="dispatch", queueing_lock="dispatch", priority=URGENT,
              queue=CONTROL)
    async def dispatch_alerts() -> None:
        if await asyncio.to_thread(dispatch, need()):
            await defer_dispatch(app)  # what the budget left is sent by the next job, on whichever worker

    @app.periodic(cron=f"* * * * * */{tick_seconds}", periodic_id="tick")
    @app.task(name=TICK_TASK, pass_context=False, queueing_lock="tick", lock="tick", priority=URGENT, queue=CONTROL)
    async def tick(timestamp: int) -> None:
        rt = need()
        stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER)
        for job in stalled:
            what = (job.id, job.task_name, job.task_kwargs.get("source", ""))
            try:
                await app.job_manager.retry_job(job)
            except UniqueViolation:
                # The same job is already waiting (its queueing lock is taken: a tick deferred it since): that
                # one does the work, so the stalled one is closed, not queued twice.
                await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
                log.warning("job %s (%s %s) was left running by a worker that is gone: the same job is already "
                            "waiting, so this one is closed", *what, extra=fields(event="stalled"))
            else:
                log.warning("job %s (%s %s) was left running by a worker that is gone: queued again", *what,
                            extra=fields(event="stalled"))
        for name in await asyncio.to_thread(due_sources, rt):
            await defer_pass(app, name)
        await defer_dispatch(app)

    return app


async def defer_pass(app: procrastinate.App, source: str) -> bool:
    """Queue a pass over ``source``; False if one is already waiting."""
    try:
        await app.configure_task(PASS_TASK, lock=f"pass:{source}", queueing_lock=f"pass:{source}").defer_async(
            source=source, queued=utcnow().isoformat())
    except AlreadyEnqueued:
        return False
    return True


async def defer_dispatch(app: procrastinate.App) -> None:
    with contextlib.suppress(AlreadyEnqueued):
        await app.configure_task(DISPATCH_TASK, lock="dispatch", queueing_lock="dispatch",
                                 priority=URGENT, queue=CONTROL).defer_async()


def due_sources(rt: Runtime) -> list[str]:
    """Enabled sources due now (per ``every`` and the ledger's last pass) with no pass waiting or running."""
    now = utcnow()
    last = ledger.last_passes(rt.db)
    with rt.db.engine.connect() as conn:
        queued = set(conn.scalars(text(
            "SELECT lock FROM procrastinate_jobs WHERE task_name = :t AND status IN ('todo', 'doing')"),
            {"t": PASS_TASK}))
    return [s.name for s in rt.config.sources
            if s.enabled and f"pass:{s.name}" not in queued
            and ledger.first_run(last.get(s.name), s.every, now) <= now]


def pass_once(rt: Runtime, source: str, queued: str) -> PassReport | None:
    """One pass over ``source`` in a warm child, settled in the ledger; None if it was passed since ``queued``."""
    from datetime import datetime

    last = ledger.last_pass(rt.db, source)
    if last is not None and last >= datetime.fromisoformat(queued):
        log.info("%s: passed since this job was queued; nothing to do", source, extra=fields(source=source))
        return None
    spawned = utcnow()
    with tempfile.TemporaryDirectory(prefix="borderwatch-pass-") as tmp:
        path = os.path.join(tmp, "report.json")
        argv = ["--config", rt.config_file, *(["-v"] if rt.verbose > 1 else []),
                "crawl", source, "--no-alerts", "--report-json", path]
        pid: list[int] = []

        def started(p: int) -> None:
            pid.append(p)
            rt.running[p] = source
            if rt.heartbeat is not None:
                rt.heartbeat.poke()

        try:
            outcome = run_warm(argv, timeout=rt.config.run.pass_timeout.total_seconds(), stop=rt.stop,
                               on_start=started)
        finally:
            if pid:
                rt.running.pop(pid[0], None)
                if rt.heartbeat is not None:
                    rt.heartbeat.poke()
        try:
            report = next((r for r in read_reports(path) if r.source == source), None)
        except (OSError, ValueError):
            report = None
    record = ledger.settle(rt.db, source, spawned, outcome, utcnow(), report)
    level = logging.INFO if record.status in ("ok", "locked", "stopped") else logging.WARNING
    cpu = f" ({outcome.cpu:.2f}s CPU)" if outcome.cpu is not None else ""
    log.log(level, record.line() + cpu, extra=fields(event="pass", cpu=outcome.cpu, **record.fields()))
    if record.status not in ("locked", "stopped"):
        src = rt.config.source(source)
        with rt.health_lock:
            change = ledger.update_health(rt.db, source, every=src.every,
                                          failures_alert=rt.config.run.failures_alert,
                                          rule=health.QuietRule(factor=rt.config.run.quiet_factor), now=utcnow())
        if change is not None:
            log.log(logging.INFO if change.state == health.OK else logging.WARNING, "%s: %s", source,
                    change.message, extra=fields(source=source, event="health", health=change.state))
    return record


def dispatch(rt: Runtime) -> bool:
    """Plan and send the due alerts for up to ``DISPATCH_BUDGET`` seconds; True if some were left for later."""
    from alerts.dispatch import dispatch as deliver

    report = deliver(rt.db, rt.config.watchers, settings=rt.config.alerts, templates=rt.config.alerts.templates,
                     budget=max(rt.config.run.dispatch_every.total_seconds(), DISPATCH_BUDGET),
                     labels=rt.labels())
    if report.planned or report.sent or report.failed or report.errors:
        log.info("alerts: %s", report.summary(), extra=fields(event="alerts"))
    return report.deferred > 0


def run_worker(rt: Runtime, url: str, concurrency: int, tick_seconds: int) -> int:
    """Run until SIGTERM/SIGINT: the running passes get ``run.grace``, then are stopped and recorded (and
    queued again: another worker runs them). Refuses (SharedDatabase) a database ``borderwatch run`` uses."""
    name = registry.worker_name()
    # Our row first, then the daemon's lease: of a worker and a daemon starting at once, one sees the other.
    registry.register(rt.db, name, concurrency, utcnow())
    try:
        daemon = registry.live_daemon(rt.db, utcnow())
        if daemon is not None:
            raise SharedDatabase(f"`borderwatch run` ({daemon}) uses this database: a worker beside it would "
                                 "pass every source twice; stop it first (workers replace it)")
        rt.heartbeat = registry.Heartbeat(rt.db, name, HEARTBEAT_EVERY, lambda: list(rt.running.values()))
        rt.heartbeat.start()
        return _serve(rt, url, name, concurrency, tick_seconds)
    finally:
        if rt.heartbeat is not None:
            rt.heartbeat.stop()
        registry.unregister(rt.db, name)


def _serve(rt: Runtime, url: str, name: str, concurrency: int, tick_seconds: int) -> int:
    from crawler.daemon.warm import warm_up

    if ensure_schema(rt.db):
        log.info("the job queue's tables were created in this database")
    warm_up(rt.config.topics)
    # procrastinate logs every job it starts and ends (each tick too): only at -v.
    logging.getLogger("procrastinate").setLevel(logging.INFO if rt.verbose else logging.WARNING)
    app = make_app(url, rt, tick_seconds)
    grace = rt.config.run.grace.total_seconds()
    log.info("borderwatch worker %s: %d pass%s at once, tick every %ds", name, concurrency,
             "" if concurrency == 1 else "es", tick_seconds, extra=fields(event="start", pid=os.getpid()))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with app.open_async():
            common: dict[str, Any] = dict(
                install_signal_handlers=False, update_heartbeat_interval=HEARTBEAT_EVERY,
                stalled_worker_timeout=STALLED_AFTER, shutdown_graceful_timeout=grace + 15, delete_jobs="successful")
            # Passes on the default queue (jobs queued before control jobs had a queue of their own included), the
            # tick and alert deliveries on CONTROL, in a slot of their own.
            workers = [
                asyncio.ensure_future(app.run_worker_async(
                    name=name, concurrency=concurrency, queues=["default"], **common)),
                asyncio.ensure_future(app.run_worker_async(
                    name=f"{name}/control", concurrency=1, queues=[CONTROL], **common)),
            ]

            def on_signal() -> None:
                # First signal: no new jobs; running passes get run.grace, then are stopped. Second: stop now.
                if rt.stop.deadline is not None:
                    rt.stop.now = True
                else:
                    rt.stop.deadline = time.monotonic() + grace
                for worker in workers:
                    worker.cancel()

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal)
            # Both end (each lets its running jobs finish) before the app closes: asyncio.wait, not gather, whose
            # first cancelled child would end the wait while the other still persists its jobs.
            _, pending = await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
            if pending and rt.stop.deadline is None:  # one ended by itself (its database gone): stop the other too
                for worker in pending:
                    worker.cancel()
            if pending:
                await asyncio.wait(pending)
            for worker in workers:
                if not worker.cancelled() and worker.exception() is not None:
                    raise worker.exception()  # type: ignore[misc]

    asyncio.run(main())
    log.info("stopped", extra=fields(event="stopped"))
    return 0
