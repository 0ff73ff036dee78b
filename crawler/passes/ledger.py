"""The pass ledger: the only writer of ``Pass`` rows and ``SourceState``; a pass's life cycle in one place.

A pass begins (``begin_pass``: a ``running`` row), runs, and ends in one of three ways:

- its own process records it (``finish_pass``: the row gets the ``PassReport``'s status and counts; the
  source's state its watermark, feed validators, failure streak);
- the daemon settles it when its child could not (``settle``): the row the child left ``running`` becomes
  ``crashed``/``timeout``/``stopped`` with an error, the child's ``source:<name>`` lease is released, and a
  failure is counted (a pass stopped at shutdown is not the source's fault: not counted, and the source
  stays due, so a restart runs it);
- a later pass over the source, or the daemon at start, finds it left ``running`` by a process that is gone
  (``settle_orphaned_passes``, ``recover_orphans``) and marks it ``crashed``.

The source's health (``update_health``) is written here too; what the scheduler reads of past passes
(``last_pass``, ``last_passes``, ``first_run``) is read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.daemon import health
from crawler.daemon.child import ChildOutcome, summarize_stderr
from crawler.passes.report import PassReport
from pipelines.db import Database
from pipelines.leases import lease_owner, owner_gone, release_lease
from pipelines.models import AlertEvent, Item, Lock, Pass, SourceState
from pipelines.redact import redact_text

FAILED_STATUSES = health.FAILED_STATUSES


# -- a pass's own process ----------------------------------------------------------------------------------
def source_state(db: Database, source: str) -> SourceState:
    """What the source remembers between passes (a fresh, unsaved state for a source never crawled)."""
    with db.read() as s:
        state = s.get(SourceState, source)
        return state if state is not None else SourceState(source=source, consecutive_failures=0)


def begin_pass(db: Database, source: str, now: datetime) -> int:
    with db.write() as s:
        p = Pass(source=source, started=now, status="running")
        s.add(p)
        s.flush()
        return p.id


def finish_pass(
    db: Database, report: PassReport, now: datetime, *, watermark: str | None = None,
    feed_etag: str | None = None, feed_last_modified: str | None = None,
) -> Pass:
    """Record how the pass ``report.pass_id`` ended, and what its source remembers for the next pass (its
    watermark and feed validators only after an ``ok`` pass)."""
    assert report.pass_id is not None
    with db.write() as s:
        p = s.get(Pass, report.pass_id)
        assert p is not None
        p.finished = now
        report.apply_to(p)
        p.error = redact_text(p.error) if p.error else p.error  # a source URL's credentials are never stored
        state = s.get(SourceState, report.source)
        if state is None:
            state = SourceState(source=report.source, consecutive_failures=0, health="ok")
            s.add(state)
        state.last_pass = now
        if report.status == "ok":
            state.last_success = now
            state.consecutive_failures = 0
            if watermark:
                state.watermark = watermark
            if feed_etag is not None or feed_last_modified is not None:
                state.feed_etag, state.feed_last_modified = feed_etag, feed_last_modified
            if p.new:
                state.last_new_item = now
        else:
            state.consecutive_failures = (state.consecutive_failures or 0) + 1
        s.flush()
        s.expunge(p)
        return p


# -- settling a child's pass (the daemon) ------------------------------------------------------------------
def settle(
    db: Database, source: str, spawned: datetime, outcome: ChildOutcome, now: datetime,
    report: PassReport | None = None,
) -> PassReport:
    """Make the database tell the truth about a child pass that ended, however it ended. ``report`` is what the
    child said of its pass (its ``--report-json``), if it lived to say it."""
    child = lease_owner(outcome.pid)
    locked = (report.error or "locked") if report is not None and report.status == "locked" else None
    with db.write() as s:
        row = s.scalar(
            select(Pass).where(Pass.source == source, Pass.started >= spawned).order_by(Pass.id.desc()).limit(1)
        )
        if row is None and locked is not None and not outcome.ended_by_daemon:
            return PassReport(source, "locked", error=locked, seconds=outcome.seconds)
        if row is not None and row.status == "running":
            holder = s.get(Lock, f"source:{source}")
            if holder is not None and holder.owner != child and holder.expires > now:
                # Not our child's row: another writer (a manual crawl) is passing over this source now.
                return PassReport(source, "locked", error=f"being crawled by {holder.owner}",
                                  seconds=outcome.seconds)
        state = s.get(SourceState, source)
        if state is None:
            state = SourceState(source=source, consecutive_failures=0, health=health.OK)
            s.add(state)
        why = _why(outcome)
        if row is None:
            # The child died before it could even begin its pass (an import error, a bad config, OOM).
            row = Pass(source=source, started=spawned, status="running", stats={})
            s.add(row)
        if row.status == "running":
            row.status = _abnormal_status(outcome)
            row.finished = now
            row.error = why
            if row.status != "stopped":
                state.consecutive_failures = (state.consecutive_failures or 0) + 1
                state.last_pass = now
        elif outcome.ended_by_daemon and row.status != "ok":
            # The child recorded its own ending after the SIGINT (Scrapy's graceful shutdown): name it right.
            if outcome.stopped and row.status in FAILED_STATUSES:
                row.status = "stopped"
                state.consecutive_failures = max((state.consecutive_failures or 0) - 1, 0)
            elif outcome.timed_out:
                row.status = "timeout"
            row.error = why
        if row.status == "stopped":
            # A pass cut short by the shutdown does not count as the source's last pass: it stays due.
            state.last_pass = s.scalar(
                select(func.max(Pass.finished)).where(Pass.source == source, Pass.id != row.id,
                                                      Pass.status != "stopped")
            )
        s.flush()
        record = _record(row, outcome)
    # The child's lease, if it died holding it.
    release_lease(db, f"source:{source}", child)
    return record


def _abnormal_status(outcome: ChildOutcome) -> str:
    if outcome.timed_out:
        return "timeout"
    if outcome.stopped:
        return "stopped"
    return "crashed"


def _why(outcome: ChildOutcome) -> str:
    summary = summarize_stderr(outcome.stderr)
    if outcome.timed_out:
        limit = health.human(timedelta(seconds=outcome.timeout or outcome.seconds))
        head = f"timed out: still running after {limit} (run.pass_timeout), stopped"
    elif outcome.stopped:
        head = "stopped: the daemon was shutting down"
    elif outcome.exit_code is None:
        head = "the pass process was killed"
    elif outcome.exit_code == 0:
        head = "the pass process ended without recording a pass"
    else:
        head = f"the pass process exited with code {outcome.exit_code}"
    return f"{head}: {summary}" if summary else head


def _record(row: Pass, outcome: ChildOutcome) -> PassReport:
    record = PassReport.from_row(row, seconds=round(outcome.seconds, 2))
    if row.status not in ("ok", "stopped", "timeout", "crashed") and not record.error:
        record.error = summarize_stderr(outcome.stderr) or None
    return record


def recover_orphans(db: Database, now: datetime) -> list[str]:
    """Passes left ``running`` by processes that are gone (a daemon killed with its children): mark them.

    A pass whose lease is still held by a live process (a manual crawl, a child that outlived its daemon)
    is left alone; its source is retried once the lease is free. Not counted as the source's failure.
    """
    fixed: list[str] = []
    with db.write() as s:
        rows = list(s.scalars(select(Pass).where(Pass.status == "running")))
        for row in rows:
            lock = s.get(Lock, f"source:{row.source}")
            if lock is not None and lock.expires > now and not owner_gone(lock.owner):
                continue
            if lock is not None:
                s.delete(lock)
            row.status = "crashed"
            row.finished = now
            row.error = "left running by a process that is gone (found when the daemon started)"
            fixed.append(row.source)
    return fixed


def settle_orphaned_passes(db: Database, source: str, now: datetime) -> list[int]:
    """Passes of ``source`` left ``running`` by a process that is gone: marked ``crashed``.

    Called by a pass that has just taken ``source:<name>``'s lease: whoever wrote a ``running`` row for
    the source no longer holds the lease, so that row will never be finished by its writer. Counted as
    a failure of the source, as the daemon counts a child that crashed.
    """
    settled: list[int] = []
    with db.write() as s:
        rows = list(s.scalars(select(Pass).where(Pass.source == source, Pass.status == "running")))
        for row in rows:
            row.status = "crashed"
            row.finished = now
            row.error = "left running by a process that is gone (a crash or kill -9); settled by the next pass"
            settled.append(row.id)
        if settled:
            state = s.get(SourceState, source)
            if state is not None:
                state.consecutive_failures = (state.consecutive_failures or 0) + len(settled)
    return settled


# -- scheduling --------------------------------------------------------------------------------------------
def first_run(last_pass: datetime | None, every: timedelta, now: datetime) -> datetime:
    """When a source's next pass is due: one interval after its last pass, now if that is past or it never ran."""
    if last_pass is None:
        return now
    return max(now, last_pass + every)


def last_passes(db: Database) -> dict[str, datetime]:
    with db.read() as s:
        return {r.source: r.last_pass for r in s.execute(select(SourceState.source, SourceState.last_pass))
                if r.last_pass is not None}


def last_pass(db: Database, source: str) -> datetime | None:
    with db.read() as s:
        value = s.scalar(select(SourceState.last_pass).where(SourceState.source == source))
    return value


# -- health ------------------------------------------------------------------------------------------------
def update_health(
    db: Database, source: str, *, every: timedelta, failures_alert: int, rule: health.QuietRule, now: datetime,
) -> health.Change | None:
    """Assess ``source`` and, when its state changes, store it and raise at most one alert event."""
    # Recent passes: enough to see a streak of `failures_alert`, with room for neutral ones in between.
    look_back = failures_alert + 10
    with db.write() as s:
        rows = s.execute(
            select(Pass.status, Pass.error).where(Pass.source == source, Pass.status != "running")
            .order_by(Pass.id.desc()).limit(look_back)
        ).all()
        statuses = [r.status for r in rows]
        last_error = next((r.error for r in rows if (r.status in FAILED_STATUSES or r.status == health.BLOCKED)
                           and r.error), None)
        seen = _first_seen(s, source, now - rule.window)
        state = s.get(SourceState, source)
        if state is None:
            if not statuses:
                return None
            state = SourceState(source=source, consecutive_failures=0, health=health.OK)
            s.add(state)
        current = state.health or health.OK
        since = state.health_since
        verdict = health.assess(
            statuses, failures_alert, first_seen=seen, now=now, every=every, rule=rule,
            quiet_from=since if current == health.OK else None, last_error=last_error,
        )
        change = health.transition(current, verdict, since=since, now=now)
        if change is None:
            return None
        state.health = change.state
        if change.event is not None or state.health_since is None:
            state.health_since = now
        if change.event is not None:
            s.add(AlertEvent(kind=change.event, source=source, created=now,
                             payload={"message": change.message, "detail": change.detail}))
        return change


def _first_seen(s: Session, source: str, since: datetime) -> Sequence[datetime]:
    return list(s.scalars(select(Item.first_seen).where(Item.source == source, Item.first_seen >= since)))
