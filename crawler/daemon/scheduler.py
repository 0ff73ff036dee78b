"""``borderwatch run``: every source on its own schedule, alerts delivered as they arise, for months.

APScheduler (3.x, in memory) holds the clock; the database holds the state. At start the jobs are rebuilt
from the config with fixed ids: one per enabled source (first run one interval after its last pass, or now),
the dispatcher, a lease heartbeat and a health sweep. A pass is a child process (``crawler.daemon.child``) settled
in the database afterwards (``crawler.passes.ledger``), at most ``run.parallel`` at once. The process itself keeps
nothing that grows: no caches, only the table of children running now.

Signals: the first SIGTERM/SIGINT stops new passes, lets running ones finish for ``run.grace``, then stops
them (SIGINT, then SIGKILL) and records them, delivers what is pending once more and exits 0; a second
signal stops the passes at once and exits without the last delivery.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import SchedulerNotRunningError
from apscheduler.triggers.interval import IntervalTrigger

from alerts.views import Labels
from crawler.config import Config
from crawler.daemon import health
from crawler.daemon.child import KILL_AFTER, ChildTable, StopRequest, crawl_command, run_child
from crawler.daemon.logs import fields
from crawler.passes import ledger
from crawler.passes.report import PassReport, read_reports
from pipelines.db import Database
from pipelines.leases import drop_stale_lease, lease
from pipelines.timeutil import utcnow

log = logging.getLogger("borderwatch.daemon")
# A long pass's progress lines, logged by its child process every crawl.progress_every, repeated here.
_progress_log = logging.getLogger("borderwatch.progress")

DAEMON_LEASE_NAME = "daemon"
# The daemon lease lives 90s and is renewed every 20s: a daemon killed with SIGKILL on another host frees
# the database within 90s, and a renewal can be late by a whole SQLite busy timeout (30s) without losing it.
DAEMON_LEASE = timedelta(seconds=90)
HEARTBEAT = timedelta(seconds=20)
# Quietness changes slowly: looking every 10 minutes is plenty (passes check the other states at once).
HEALTH_SWEEP = timedelta(minutes=10)
# A pass that starts late (the machine slept, all slots were busy) still runs if it is up to this late;
# coalescing makes any number of missed runs one run. An hour, or one interval for slower sources.
MISFIRE_FLOOR = timedelta(hours=1)
# Jitter spreads sources sharing a schedule: a tenth of the interval, at most a minute.
JITTER_SHARE, JITTER_MAX = 0.1, 60.0
# A pass by someone else (a manual `borderwatch crawl`) within half an interval makes the scheduled one moot.
MANUAL_SKIP_SHARE = 0.5
# The last delivery at shutdown may take this long; what is left goes out at the next start.
FINAL_DISPATCH_BUDGET = 30.0


class LeaseStore(Protocol):
    """What the daemon needs of ``pipelines.store.Store``: its leases."""

    def acquire(self, name: str, ttl: timedelta, owner: str | None = None) -> bool: ...
    def release(self, name: str, owner: str | None = None) -> None: ...
    def lock_holder(self, name: str) -> str | None: ...


def claim_daemon_lease(store: LeaseStore, db: Database, now: datetime) -> str | None:
    """Take the ``daemon`` lease; returns None on success, else a line naming the holder."""
    if store.acquire(DAEMON_LEASE_NAME, DAEMON_LEASE):
        return None
    gone = drop_stale_lease(db, DAEMON_LEASE_NAME, now)
    if gone is not None:
        log.warning("took over the daemon lease of %s: that process is gone", gone)
        if store.acquire(DAEMON_LEASE_NAME, DAEMON_LEASE):
            return None
    held = lease(db, DAEMON_LEASE_NAME)
    if held is None:  # released in between: try once more
        return None if store.acquire(DAEMON_LEASE_NAME, DAEMON_LEASE) else "another daemon holds this database"
    owner, expires = held
    return (f"another daemon is already running on this database: {owner} "
            f"(its lease runs until {expires.strftime('%Y-%m-%d %H:%M:%S')} UTC unless renewed)")


class Daemon:
    """The scheduler, its jobs, the children and the shutdown."""

    def __init__(self, config: Config, config_file: str, db: Database, store: LeaseStore, *,
                 verbose: int = 0, dispatch: Callable[..., Any] | None = None) -> None:
        self.config = config
        self.config_file = config_file
        self.db = db
        self.store = store
        self.verbose = verbose
        self.run_config = config.run
        self.sources = [s for s in config.sources if s.enabled]
        self.stop = StopRequest()
        self.children = ChildTable()
        self.exit_code = 0
        self._dispatch_fn = dispatch
        self._labels_read: Labels | None = None
        self._stop_requested = False
        self._signal: int | None = None
        self._slots = threading.BoundedSemaphore(self.run_config.parallel)
        self._busy = 0  # jobs running now (passes, deliveries, sweeps), waited for at shutdown
        self._busy_cond = threading.Condition()
        self._wake = threading.Event()  # a pass found something: the dispatcher runs again when done
        self._health_lock = threading.Lock()
        self._ours: dict[str, datetime | None] = {}  # last_pass as our own last pass left it, per source
        self._quiet = health.QuietRule(factor=self.run_config.quiet_factor)
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(len(self.sources) + 4)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    # -- life cycle ----------------------------------------------------------------------------------------
    def run(self) -> int:
        """Run until a signal (or a lost lease); returns the exit code."""
        self._install_signals()
        now = utcnow()
        for source in ledger.recover_orphans(self.db, now):
            log.warning("%s: a pass left running by a process that is gone was marked crashed", source,
                        extra=fields(source=source, event="orphan"))
        due = self._schedule(now)
        self.scheduler.start()
        log.info(
            "borderwatch run: %d source%s, %d pass%s at once, pass timeout %s, alerts every %s; %s",
            len(self.sources), "" if len(self.sources) == 1 else "s", self.run_config.parallel,
            "" if self.run_config.parallel == 1 else "es", health.human(self.run_config.pass_timeout),
            health.human(self.run_config.dispatch_every), "; ".join(due),
            extra=fields(event="start", pid=os.getpid(), sources=[s.name for s in self.sources]),
        )
        while not self._stop_requested:
            time.sleep(0.2)  # signal handlers run here; they only set flags
        self._shutdown()
        return self.exit_code

    def request_stop(self, code: int = 0) -> None:
        """Stop taking passes; running ones get ``run.grace`` to finish."""
        if self.stop.deadline is None:
            self.stop.deadline = time.monotonic() + self.run_config.grace.total_seconds()
        self.exit_code = self.exit_code or code
        self._stop_requested = True

    def _install_signals(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            # Only flags here: a handler that logged or took a lock could deadlock the thread it interrupts.
            if self._stop_requested:
                self.stop.now = True
            else:
                self._signal = signum
                self.request_stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def _shutdown(self) -> None:
        running = self.children.snapshot()
        name = signal.Signals(self._signal).name if self._signal is not None else "a lost lease"
        log.info("stopping (%s): %s", name,
                 f"waiting up to {health.human(self.run_config.grace)} for {len(running)} running "
                 f"pass{'es' if len(running) != 1 else ''} ({', '.join(sorted(running.values()))})"
                 if running else "no pass running", extra=fields(event="stopping", running=sorted(running.values())))
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.pause()
        self._wait_for_jobs()
        forced = self.stop.now
        with contextlib.suppress(SchedulerNotRunningError):
            # Not `wait=True`: it would hold the scheduler's locks while a job that touches the scheduler
            # finishes. The jobs were waited for above; any still queued return at once (stop requested).
            self.scheduler.shutdown(wait=False)
        if not forced:
            self._dispatch(budget=FINAL_DISPATCH_BUDGET, final=True)
        with contextlib.suppress(Exception):
            self.store.release(DAEMON_LEASE_NAME)
        log.info("stopped%s", " at once (second signal)" if forced else "", extra=fields(event="stopped"))
        if forced:
            # Job threads may still be inside a delivery; do not wait for them (a delivery cut short is
            # recovered by the next dispatcher: at-least-once).
            logging.shutdown()
            os._exit(self.exit_code)

    def _wait_for_jobs(self) -> None:
        grace = self.run_config.grace.total_seconds()
        # Grace, then SIGINT→SIGKILL, then a few seconds to write the records down (and for a delivery in
        # progress: its sends are bounded by alerts.send_timeout).
        end = time.monotonic() + grace + KILL_AFTER + max(10.0, self.config.alerts.send_timeout + 5)
        with self._busy_cond:
            while self._busy and time.monotonic() < end:
                if self.stop.now:
                    end = min(end, time.monotonic() + 5)
                self._busy_cond.wait(0.2)

    def _job(self, fn: Callable[..., None]) -> Callable[..., None]:
        """``fn`` counted as running while it runs (the shutdown waits for it), its errors logged."""
        def job(*args: Any) -> None:
            with self._busy_cond:
                self._busy += 1
            try:
                if not self._stop_requested:
                    fn(*args)
            except Exception:
                log.exception("%s failed", getattr(fn, "__name__", "a job"))
            finally:
                with self._busy_cond:
                    self._busy -= 1
                    self._busy_cond.notify_all()

        return job

    # -- jobs ----------------------------------------------------------------------------------------------
    def _schedule(self, now: datetime) -> list[str]:
        """Build every job from the config (fixed ids, ``replace_existing``); returns "source: when" lines."""
        last = ledger.last_passes(self.db)
        due: list[str] = []
        for s in self.sources:
            first = ledger.first_run(last.get(s.name), s.every, now)
            self._ours[s.name] = last.get(s.name)
            seconds = s.every.total_seconds()
            trigger = IntervalTrigger(seconds=seconds, start_date=first, timezone=UTC,
                                      jitter=min(seconds * JITTER_SHARE, JITTER_MAX))
            self._add(self._pass_job, trigger, f"source:{s.name}", f"pass over {s.name}", first,
                      max(s.every, MISFIRE_FLOOR), args=[s.name])
            wait = first - now
            due.append(f"{s.name} {'due now' if wait <= timedelta(seconds=1) else 'in ' + health.human(wait)}")
        every = self.run_config.dispatch_every
        self._add(self._dispatch_job, IntervalTrigger(seconds=every.total_seconds(), timezone=UTC), "dispatch",
                  "deliver alerts", now, max(every, timedelta(minutes=1)))
        self._add(self._heartbeat, IntervalTrigger(seconds=HEARTBEAT.total_seconds(), timezone=UTC), "heartbeat",
                  "renew the daemon lease", now + HEARTBEAT, HEARTBEAT)
        self._add(self._health_sweep, IntervalTrigger(seconds=HEALTH_SWEEP.total_seconds(), timezone=UTC), "health",
                  "source health sweep", now + timedelta(minutes=1), HEALTH_SWEEP)
        return due

    def _add(self, fn: Callable[..., None], trigger: IntervalTrigger, job_id: str, name: str, first: datetime,
             misfire: timedelta, args: list[Any] | None = None) -> None:
        self.scheduler.add_job(self._job(fn), trigger, args=args, id=job_id, name=name, next_run_time=first,
                               misfire_grace_time=int(misfire.total_seconds()), replace_existing=True)

    def _pass_job(self, name: str) -> None:
        if self._stop_requested:
            return
        source = self.config.source(name)
        try:
            theirs = ledger.last_pass(self.db, name)
        except Exception as exc:
            log.error("%s: cannot read its state, pass skipped: %s", name, exc, extra=fields(source=name))
            return
        now = utcnow()
        if (theirs is not None and theirs != self._ours.get(name)
                and now - theirs < source.every * MANUAL_SKIP_SHARE):
            log.info("%s: passed over %s ago by another process; skipped", name, health.human(now - theirs),
                     extra=fields(source=name, event="skip"))
            self._ours[name] = theirs
            return
        while not self._slots.acquire(timeout=0.5):
            if self._stop_requested:
                return
        try:
            if self._stop_requested:
                return
            record = self._run_pass(name)
        finally:
            self._slots.release()
        if record is not None:
            self._after_pass(name, record)

    def pass_command(self, name: str, report_path: str) -> list[str]:
        """The child process of one pass: the CLI's ``crawl``, which writes its report to ``report_path``."""
        return crawl_command(self.config_file, name, report_path, self.verbose)

    def _run_pass(self, name: str) -> PassReport | None:
        spawned = utcnow()
        pid: list[int] = []

        def started(p: int) -> None:
            pid.append(p)
            self.children.add(p, name)

        with tempfile.TemporaryDirectory(prefix="borderwatch-pass-") as tmp:
            report_path = os.path.join(tmp, "report.json")
            try:
                outcome = run_child(self.pass_command(name, report_path),
                                    timeout=self.run_config.pass_timeout.total_seconds(), stop=self.stop,
                                    on_start=started, on_progress=lambda line: _progress_log.info(
                                        line, extra=fields(event="progress", source=name)))
            except OSError as exc:
                log.error("%s: cannot start a pass process: %s", name, exc, extra=fields(source=name))
                return None
            finally:
                if pid:
                    self.children.remove(pid[0])
            report = self._child_report(name, report_path)
        try:
            return ledger.settle(self.db, name, spawned, outcome, utcnow(), report)
        except Exception as exc:
            log.error("%s: pass ended (exit %s) but could not be recorded: %s", name, outcome.exit_code, exc,
                      extra=fields(source=name))
            return None

    @staticmethod
    def _child_report(name: str, path: str) -> PassReport | None:
        """What the child wrote of its pass over ``name``; None if it wrote nothing readable (it died first)."""
        try:
            reports = read_reports(path)
        except (OSError, ValueError) as exc:
            log.warning("%s: the pass report could not be read: %s", name, exc, extra=fields(source=name))
            return None
        return next((r for r in reports if r.source == name), None)

    def _after_pass(self, name: str, record: PassReport) -> None:
        level = logging.INFO if record.status in ("ok", "locked", "stopped") else logging.WARNING
        log.log(level, record.line(), extra=fields(event="pass", **record.fields()))
        try:
            self._ours[name] = ledger.last_pass(self.db, name)
        except Exception:  # pragma: no cover - the database went away; the next pass will tell
            self._ours[name] = None
        change = None
        if record.status not in ("locked", "stopped"):
            change = self._check_health(name)
        if record.new or record.updated or (change is not None and change.event):
            self.wake_dispatcher()

    def _check_health(self, name: str) -> health.Change | None:
        source = self.config.source(name)
        try:
            with self._health_lock:
                change = ledger.update_health(
                    self.db, name, every=source.every, failures_alert=self.run_config.failures_alert,
                    rule=self._quiet, now=utcnow(),
                )
        except Exception as exc:
            log.error("%s: health not assessed: %s", name, exc, extra=fields(source=name))
            return None
        if change is not None:
            level = logging.INFO if change.state == health.OK else logging.WARNING
            log.log(level, "%s: %s", name, change.message,
                    extra=fields(source=name, event="health", health=change.state, alert=change.event))
        return change

    def _health_sweep(self) -> None:
        running = set(self.children.snapshot().values())
        woke = False
        for s in self.sources:
            if self._stop_requested:
                return
            if s.name in running:
                continue
            change = self._check_health(s.name)
            woke = woke or (change is not None and change.event is not None)
        if woke:
            self.wake_dispatcher()

    def wake_dispatcher(self) -> None:
        """Deliver now rather than at the next tick (a pass stored something worth telling)."""
        self._wake.set()
        if self._stop_requested:
            return  # the last delivery at shutdown takes it
        with contextlib.suppress(JobLookupError, SchedulerNotRunningError):
            self.scheduler.modify_job("dispatch", next_run_time=utcnow())

    def _dispatch_job(self) -> None:
        while not self._stop_requested:
            self._wake.clear()
            self._dispatch()
            if not self._wake.is_set():
                return

    def _labels(self) -> Labels:
        """Topic and source names for messages, read once (the config is read once too: restart to change)."""
        if self._labels_read is None:
            self._labels_read = self.config.labels()
        return self._labels_read

    def _dispatch(self, budget: float | None = None, final: bool = False) -> None:
        try:
            if self._dispatch_fn is None:
                from alerts.dispatch import dispatch

                self._dispatch_fn = dispatch
            report = self._dispatch_fn(self.db, self.config.watchers, settings=self.config.alerts,
                        templates=self.config.alerts.templates, budget=budget, labels=self._labels())
        except Exception as exc:
            log.error("alerts: delivery failed: %s", exc, extra=fields(event="alerts"))
            return
        if (final or report.planned or report.sent or report.failed or report.retrying or report.errors
                or report.uncertain):
            level = logging.WARNING if report.failed or report.errors or report.uncertain else logging.INFO
            log.log(level, "alerts: %s", report.summary(), extra=fields(
                event="alerts", planned=report.planned, sent=report.sent, messages=report.messages,
                retrying=report.retrying, failed=report.failed, uncertain=report.uncertain,
                errors=report.errors[:5]))

    def _heartbeat(self) -> None:
        try:
            ok = self.store.acquire(DAEMON_LEASE_NAME, DAEMON_LEASE)
        except Exception as exc:
            log.warning("daemon lease not renewed (retrying in %s): %s", health.human(HEARTBEAT), exc)
            return
        if not ok:
            holder = self.store.lock_holder(DAEMON_LEASE_NAME)
            log.error("the daemon lease was taken by %s: stopping", holder, extra=fields(event="lease_lost"))
            self.request_stop(1)
