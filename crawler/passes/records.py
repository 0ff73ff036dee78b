"""What the daemon writes about passes: settling a child's pass, stale rows and leases, source health.

A child records its own pass (``Pass`` row, ``SourceState``) when it can. When it cannot — it crashed, hung
and was killed, or was stopped at shutdown — the daemon settles the record here: the row the child left
``running`` becomes ``crashed``/``timeout``/``stopped`` with an error, the child's ``source:<name>`` lease
is released, and a failure is counted (a pass stopped at shutdown is not the source's fault: not counted,
and the source stays due, so a restart runs it). A manual ``crawl`` that takes over the lease of a process
that is gone settles that process's pass the same way (``settle_orphaned_passes``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.daemon import health
from crawler.daemon.child import ChildOutcome, summarize_stderr
from pipelines.db import Database
from pipelines.leases import Leases, drop_stale_lease, lease, lease_owner, owner_gone, release_lease
from pipelines.models import AlertEvent, Item, Lock, Pass, SourceState
from pipelines.timeutil import as_utc

log = logging.getLogger("borderwatch.daemon")

FAILED_STATUSES = health.FAILED_STATUSES


@dataclass(frozen=True)
class PassRecord:
    """One pass as the daemon logs it."""

    source: str
    status: str  # ok | failed | blocked | crashed | timeout | stopped | locked
    pass_id: int | None = None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    blocked: int = 0
    fetched: int = 0
    seconds: float = 0.0
    error: str | None = None

    def line(self) -> str:
        """``doj-api: ok: 12 new, 3 updated, 40 unchanged in 4.2s`` (and the error, if any)."""
        parts = [f"{self.new} new", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        for n, label in ((self.skipped, "skipped"), (self.failed, "failed"), (self.blocked, "blocked")):
            if n:
                parts.append(f"{n} {label}")
        tail = f" — {self.error}" if self.error else ""
        if self.status == "locked":
            return f"{self.source}: locked{tail}; retried at its next run"
        counts = ", ".join(parts)
        return f"{self.source}: {self.status}: {counts}, {self.fetched} responses in {self.seconds:.1f}s{tail}"

    def fields(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


# -- leases (kept in pipelines.leases; named here for the daemon's modules) ---------------------------------
__all__ = ["Leases", "drop_stale_lease", "lease", "lease_owner", "owner_gone", "release_lease"]


# -- settling a child's pass -------------------------------------------------------------------------------
_LOCKED = re.compile(r"^(?P<source>\S+): locked\b(?P<rest>.*)$", re.MULTILINE)


def locked_message(output: str, source: str) -> str | None:
    """The child's "<source>: locked — being crawled by …" line, if it found its source locked."""
    for m in _LOCKED.finditer(output):
        if m.group("source") == source:
            rest = m.group("rest")
            return (rest.rsplit("—", 1)[-1] if "—" in rest else rest).strip(" :-") or "locked"
    return None


def settle(db: Database, source: str, spawned: datetime, outcome: ChildOutcome, now: datetime) -> PassRecord:
    """Make the database tell the truth about a child pass that ended, however it ended."""
    child = lease_owner(outcome.pid)
    output = outcome.stdout + "\n" + outcome.stderr
    locked = locked_message(output, source)
    with db.write() as s:
        row = s.scalar(
            select(Pass).where(Pass.source == source, Pass.started >= spawned).order_by(Pass.id.desc()).limit(1)
        )
        if row is None and locked is not None and not outcome.ended_by_daemon:
            return PassRecord(source, "locked", error=locked, seconds=outcome.seconds)
        if row is not None and row.status == "running":
            holder = s.get(Lock, f"source:{source}")
            if holder is not None and holder.owner != child and as_utc(holder.expires) > now:
                # Not our child's row: another writer (a manual crawl) is passing over this source now.
                return PassRecord(source, "locked", error=f"being crawled by {holder.owner}",
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


def _record(row: Pass, outcome: ChildOutcome) -> PassRecord:
    error = row.error
    if row.status not in ("ok", "stopped", "timeout", "crashed") and not error:
        error = summarize_stderr(outcome.stderr) or None
    return PassRecord(
        source=row.source, status=row.status, pass_id=row.id, new=row.new or 0, updated=row.updated or 0,
        unchanged=row.unchanged or 0, skipped=row.skipped or 0, failed=row.failed or 0,
        blocked=row.blocked or 0, fetched=row.fetched or 0, seconds=round(outcome.seconds, 2), error=error,
    )


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
            if lock is not None and as_utc(lock.expires) > now and not owner_gone(lock.owner):
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
    return max(now, as_utc(last_pass) + every)


def last_passes(db: Database) -> dict[str, datetime]:
    with db.read() as s:
        return {r.source: as_utc(r.last_pass) for r in s.execute(select(SourceState.source, SourceState.last_pass))
                if r.last_pass is not None}


def last_pass(db: Database, source: str) -> datetime | None:
    with db.read() as s:
        value = s.scalar(select(SourceState.last_pass).where(SourceState.source == source))
    return as_utc(value) if value is not None else None


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
        since = as_utc(state.health_since) if state.health_since is not None else None
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
    return [as_utc(t) for t in s.scalars(
        select(Item.first_seen).where(Item.source == source, Item.first_seen >= since)
    )]
