"""``borderwatch status``: each source's last and next pass, items, failures and health; the alert backlog;
whether a daemon holds the database. Read-only: gathered in one place, rendered as a table or JSON."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from alerts.dispatch import shown_state
from crawler.cli.output import Column, table
from crawler.config import Config
from crawler.daemon.health import human
from pipelines import items as outcome
from pipelines.db import Database
from pipelines.leases import lease, owner_gone
from pipelines.models import AlertEvent, Delivery, Item, Pass, SourceState, UrlState
from pipelines.retry import RETRIED
from pipelines.timeutil import as_utc

# `orphaned`: not sent, and the watcher is no longer configured (alerts.deliver); not counted as failed.
DELIVERY_STATES = ("pending", "sending", "failed", "uncertain", "orphaned", "sent")


@dataclass(frozen=True)
class LastPass:
    id: int
    started: datetime
    finished: datetime | None
    status: str
    new: int
    updated: int
    unchanged: int
    failed: int
    blocked: int
    error: str | None


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str
    enabled: bool
    configured: bool
    every: timedelta | None
    last_pass: LastPass | None
    running_since: datetime | None
    next_pass: datetime | None  # None: never scheduled (disabled, or no longer configured)
    items: int
    consecutive_failures: int
    health: str
    health_since: datetime | None
    last_success: datetime | None
    last_new_item: datetime | None
    retry_waiting: int = 0  # failed or blocked pages waiting for their next try
    retry_next: datetime | None = None  # the soonest of those tries
    given_up: int = 0  # failed or blocked on every try: no longer tried
    too_complex: int = 0  # too complex to extract: given up at once


@dataclass(frozen=True)
class DaemonStatus:
    holder: str | None
    expires: datetime | None
    gone: bool = False  # the holder is a process of this host that no longer runs

    @property
    def running(self) -> bool:
        return self.holder is not None and not self.gone


@dataclass(frozen=True)
class FleetWorker:
    name: str  # host:pid
    host: str
    pid: int
    concurrency: int
    started: datetime
    heartbeat: datetime
    alive: bool  # its heartbeat is recent (else it died: its running jobs are handed back)
    passes: list[str]  # the sources it is passing over now


@dataclass(frozen=True)
class FleetStatus:
    """``borderwatch worker``s on this (PostgreSQL) database and their job queue."""

    workers: list[FleetWorker]
    waiting: int  # passes queued
    running: int
    stalled: int  # running on a worker whose heartbeat stopped (handed back at the next tick)


@dataclass(frozen=True)
class StatusReport:
    now: datetime
    daemon: DaemonStatus
    sources: list[SourceStatus]
    deliveries: dict[str, int] = field(default_factory=dict)
    unplanned_events: int = 0
    fleet: FleetStatus | None = None


def gather_fleet(db: Database) -> FleetStatus | None:
    """The workers and the pass queue, if this is a PostgreSQL database a worker has used."""
    if db.is_sqlite:
        return None
    from sqlalchemy import text

    from crawler.daemon import registry
    from crawler.daemon.fleet import PASS_TASK, STALLED_AFTER

    registered = registry.all_workers(db)
    with db.engine.connect() as conn:
        queue = conn.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is not None
        if not queue and not registered:
            return None
        jobs = conn.execute(text(
            "SELECT j.status, j.worker_id, j.args->>'source', w.last_heartbeat FROM procrastinate_jobs j "
            "LEFT JOIN procrastinate_workers w ON w.id = j.worker_id "
            "WHERE j.task_name = :t AND j.status IN ('todo', 'doing')"), {"t": PASS_TASK}).all() if queue else []
        now = conn.scalar(text("SELECT now()"))
    stale = timedelta(seconds=STALLED_AFTER)
    doing = [j for j in jobs if j[0] == "doing"]
    now = as_utc(now)
    return FleetStatus(
        workers=[FleetWorker(w.name, w.host, w.pid, w.concurrency, w.started, w.heartbeat,
                             now - w.heartbeat <= stale, [str(p) for p in w.passing])
                 for w in registered],
        waiting=sum(1 for j in jobs if j[0] == "todo"), running=len(doing),
        stalled=sum(1 for j in doing if j[3] is None or now - j[3] > stale),
    )


def next_pass(last_pass: datetime | None, every: timedelta, enabled: bool) -> datetime | None:
    """When the daemon passes over a source next (it may be in the past: due now)."""
    if not enabled:
        return None
    return None if last_pass is None else last_pass + every


def when_next(next_at: datetime | None, enabled: bool, configured: bool, now: datetime) -> str:
    if not configured:
        return "not in config"
    if not enabled:
        return "disabled"
    if next_at is None or next_at <= now:
        return "due now"
    return f"in {human(next_at - now)}"


def gather(db: Database, config: Config, now: datetime) -> StatusReport:
    with db.read() as s:
        states = {st.source: st for st in s.scalars(select(SourceState))}
        last_ids = list(s.scalars(select(func.max(Pass.id)).where(Pass.status != "running").group_by(Pass.source)))
        last = {p.source: _last_pass(p) for p in s.scalars(select(Pass).where(Pass.id.in_(last_ids)))} \
            if last_ids else {}
        running_rows = {p.source: p for p in s.scalars(select(Pass).where(Pass.status == "running")
                                                       .order_by(Pass.started))}
        counts = {r.source: r.n for r in s.execute(select(Item.source, func.count().label("n")).group_by(Item.source))}
        shown = shown_state(Delivery.watcher, Delivery.state, config.watchers).label("state")
        deliveries = {r.state: r.n for r in s.execute(select(shown, func.count().label("n")).group_by(shown))}
        unplanned = s.scalar(select(func.count()).select_from(AlertEvent).where(AlertEvent.dispatched.is_(False)))
        waiting = {r.source: (r.n, r.next) for r in s.execute(
            select(UrlState.source, func.count().label("n"), func.min(UrlState.next_attempt).label("next"))
            .where(UrlState.next_attempt.is_not(None)).group_by(UrlState.source))}
        given_up = {r.source: r.n for r in s.execute(
            select(UrlState.source, func.count().label("n"))
            .where(UrlState.next_attempt.is_(None), UrlState.status.in_(sorted(RETRIED)),
                   UrlState.fetch_url.is_not(None), UrlState.attempts >= config.crawl.page_attempts)
            .group_by(UrlState.source))}
        too_complex = {r.source: r.n for r in s.execute(
            select(UrlState.source, func.count().label("n")).where(UrlState.status == outcome.TOO_COMPLEX)
            .group_by(UrlState.source))}
    running: dict[str, datetime] = {}
    for name, row in running_rows.items():
        gone = _gone_writer(db, name, now)
        if gone is None:
            running[name] = row.started
        elif row.id > (last[name].id if name in last else 0):
            # Its writer died (kill -9, a crash): it is not running, whatever the row says. The next
            # pass over the source settles the row as crashed; until then it is shown as it is.
            last[name] = replace(_last_pass(row), status="crashed",
                                 error=f"left running by {gone}, a process that is gone")
    held = lease(db, "daemon")
    if held is None or held[1] <= now:
        daemon = DaemonStatus(None, None)
    else:
        daemon = DaemonStatus(held[0], held[1], gone=owner_gone(held[0]))
    configured = {src.name: src for src in config.sources}
    names = list(configured) + sorted((set(states) | set(last) | set(counts)) - set(configured))
    sources: list[SourceStatus] = []
    for name in names:
        src = configured.get(name)
        st = states.get(name)
        p = last.get(name)
        enabled = bool(src and src.enabled)
        last_at = st.last_pass if st is not None else None
        sources.append(SourceStatus(
            name=name, kind=src.kind if src else "-", enabled=enabled, configured=src is not None,
            every=src.every if src else None,
            last_pass=p,
            running_since=running.get(name),
            next_pass=next_pass(last_at, src.every, enabled) if src else None,
            items=counts.get(name, 0),
            consecutive_failures=(st.consecutive_failures or 0) if st else 0,
            health=(st.health or "ok") if st else "ok",
            health_since=st.health_since if st else None,
            last_success=st.last_success if st else None,
            last_new_item=st.last_new_item if st else None,
            retry_waiting=waiting.get(name, (0, None))[0], retry_next=waiting.get(name, (0, None))[1],
            given_up=given_up.get(name, 0), too_complex=too_complex.get(name, 0),
        ))
    return StatusReport(now, daemon, sources, {k: deliveries.get(k, 0) for k in DELIVERY_STATES},
                        int(unplanned or 0), gather_fleet(db))


def _gone_writer(db: Database, source: str, now: datetime) -> str | None:
    """Who left ``source``'s pass running, when its lease names a process of this host that is gone."""
    held = lease(db, f"source:{source}")
    if held is not None and held[1] > now and owner_gone(held[0]):
        return held[0]
    return None


def _last_pass(p: Pass) -> LastPass:
    return LastPass(p.id, p.started, p.finished, p.status, p.new or 0, p.updated or 0, p.unchanged or 0,
                    p.failed or 0, p.blocked or 0, p.error)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def to_json(report: StatusReport) -> dict[str, Any]:
    now = report.now
    out_sources = []
    for s in report.sources:
        p = s.last_pass
        out_sources.append({
            "source": s.name, "kind": s.kind, "enabled": s.enabled, "configured": s.configured,
            "every": s.every.total_seconds() if s.every else None,
            "last_pass": None if p is None else {
                "id": p.id, "started": _iso(p.started), "finished": _iso(p.finished), "status": p.status,
                "new": p.new, "updated": p.updated, "unchanged": p.unchanged, "failed": p.failed,
                "blocked": p.blocked, "error": p.error,
            },
            "running_since": _iso(s.running_since),
            "next_pass": _iso(s.next_pass) if s.next_pass is not None and s.next_pass > now else None,
            "due_now": s.enabled and (s.next_pass is None or s.next_pass <= now),
            "items": s.items, "consecutive_failures": s.consecutive_failures,
            "health": s.health, "health_since": _iso(s.health_since),
            "last_success": _iso(s.last_success), "last_new_item": _iso(s.last_new_item),
            "retries": {"waiting": s.retry_waiting, "next_try": _iso(s.retry_next), "given_up": s.given_up,
                        "too_complex": s.too_complex},
        })
    d = report.daemon
    return {
        "now": _iso(now),
        "daemon": {"running": d.running, "holder": d.holder, "lease_expires": _iso(d.expires), "stale": d.gone},
        "sources": out_sources,
        "alerts": {**report.deliveries, "unplanned_events": report.unplanned_events},
        "fleet": None if report.fleet is None else {
            "workers": [{"name": w.name, "host": w.host, "pid": w.pid, "concurrency": w.concurrency,
                         "started": _iso(w.started), "heartbeat": _iso(w.heartbeat), "alive": w.alive,
                         "passes": w.passes} for w in report.fleet.workers],
            "queue": {"due": sum(1 for s in report.sources
                                 if s.enabled and (s.next_pass is None or s.next_pass <= now)),
                      "waiting": report.fleet.waiting, "running": report.fleet.running,
                      "stalled": report.fleet.stalled},
        },
    }


def _ago(t: datetime, now: datetime) -> str:
    return f"{t.strftime('%Y-%m-%d %H:%M')} ({human(now - t)} ago)"


STATUS_COLUMNS = [
    Column("source"), Column("health"), Column("last", "LAST PASS"), Column("status"), Column("new"),
    Column("updated", "UPD"), Column("next", "NEXT PASS"), Column("items"), Column("fails"),
]


def render_table(report: StatusReport) -> Iterator[str]:
    now = report.now
    d = report.daemon
    if d.holder is None:
        yield "daemon: not running"
    elif d.gone:
        yield f"daemon: not running (a stale lease of {d.holder}: that process is gone)"
    else:
        yield f"daemon: running ({d.holder})"
    f = report.fleet
    if f is not None:
        due = sum(1 for s in report.sources if s.enabled and (s.next_pass is None or s.next_pass <= now))
        yield (f"workers: {len(f.workers)}; passes: {due} due, {f.waiting} waiting, {f.running} running, "
               f"{f.stalled} stalled")
        for w in f.workers:
            doing = ", ".join(w.passes) or "nothing"
            silent = "" if w.alive else " (silent: taken for dead, its passes handed back)"
            yield (f"  worker {w.host} pid {w.pid}: up {human(now - w.started)}, heartbeat {human(now - w.heartbeat)} "
                   f"ago{silent}; passing {doing} ({len(w.passes)} of {w.concurrency})")
    yield ""
    rows: list[dict[str, Any]] = []
    for s in report.sources:
        p = s.last_pass
        health = s.health if s.health_since is None or s.health == "ok" else f"{s.health} {human(now - s.health_since)}"
        status = p.status if p else "-"
        if s.running_since is not None:
            status = f"running {human(now - s.running_since)}"
        rows.append({
            "source": s.name, "health": health, "last": _ago(p.finished or p.started, now) if p else "never",
            "status": status, "new": p.new if p else "-", "updated": p.updated if p else "-",
            "next": when_next(s.next_pass, s.enabled, s.configured, now), "items": s.items,
            "fails": s.consecutive_failures,
        })
    yield from table(STATUS_COLUMNS, rows)
    if not rows:
        yield "(no sources)"
    for s in report.sources:
        if s.last_pass and s.last_pass.status != "ok" and s.last_pass.error:
            yield f"  {s.name}: {s.last_pass.error}"
    for s in report.sources:
        if s.retry_waiting or s.given_up or s.too_complex:
            yield f"  {s.name}: {retry_line(s, now)}"
    dl = report.deliveries
    yield ""
    extra = "".join(f", {dl[k]} {k}" for k in ("uncertain", "orphaned") if dl.get(k))
    yield (f"alerts: {dl.get('pending', 0)} pending, {dl.get('sending', 0)} sending, {dl.get('failed', 0)} failed"
           f"{extra} ({dl.get('sent', 0)} sent); {report.unplanned_events} event"
           f"{'s' if report.unplanned_events != 1 else ''} not yet planned")


def retry_line(s: SourceStatus, now: datetime) -> str:
    """``3 failed or blocked pages waiting to be retried (next try in 40m); 1 given up after crawl.page_attempts
    tries; 1 page too complex to extract (given up)``."""
    parts = []
    if s.retry_waiting:
        when = "due now" if s.retry_next is None or s.retry_next <= now else f"in {human(s.retry_next - now)}"
        pages = "page" if s.retry_waiting == 1 else "pages"
        parts.append(f"{s.retry_waiting} failed or blocked {pages} waiting to be retried (next try {when})")
    if s.given_up:
        parts.append(f"{s.given_up} given up after crawl.page_attempts tries")
    if s.too_complex:
        pages = "page" if s.too_complex == 1 else "pages"
        parts.append(f"{s.too_complex} {pages} too complex to extract (given up)")
    return "; ".join(parts)
