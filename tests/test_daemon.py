"""``borderwatch run``: health rules (pure, table-driven), pass settling, and the real daemon as a process.

The end-to-end tests start ``python -m crawler --config FILE run`` against a local site and a local webhook,
with schedules of a second or two, and bound every wait with a deadline.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from alert_support import Webhook
from helpers import bw, write_config
from localsite import Site, justice_page, rss, serve
from sqlalchemy import select

from crawler.config import Config, load_config
from crawler.daemon import health
from crawler.daemon.child import ChildOutcome, StopRequest, run_child, summarize_stderr
from crawler.daemon.health import QuietRule, Verdict
from crawler.daemon.logs import JsonFormatter, fields, setup_logging
from crawler.daemon.scheduler import Daemon, claim_daemon_lease
from crawler.passes import ledger
from crawler.passes.report import PassReport, read_reports, write_reports
from pipelines import leases
from pipelines.db import Database
from pipelines.models import AlertEvent, Item, Lock, Pass, SourceState
from pipelines.tally import Count, Tally

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)
D = timedelta(days=1)
RULE = QuietRule(factor=6.0)


def daily(n: int, start: datetime = T0) -> list[datetime]:
    return [start + i * D for i in range(n)]


def office_hours(weeks: int, start: datetime = T0) -> list[datetime]:
    """A press office: one release an hour, 9:00 to 17:00, Monday to Friday."""
    out = []
    for day in range(weeks * 7):
        d = start + day * D
        if d.weekday() < 5:
            out += [d + i * H for i in range(9)]
    return out


# -- health: pure, table-driven ----------------------------------------------------------------------------
STREAK_CASES = [
    # (statuses newest first, failures_alert, expected state)
    ([], 2, "ok"),
    (["ok"], 2, "ok"),
    (["failed"], 2, "ok"),
    (["failed", "failed"], 2, "failing"),
    (["failed", "ok", "failed"], 2, "ok"),
    (["ok", "failed", "failed"], 2, "ok"),
    (["crashed", "timeout", "failed"], 3, "failing"),
    (["crashed", "timeout", "ok"], 3, "ok"),
    (["blocked", "blocked"], 2, "blocked"),
    (["blocked", "blocked", "blocked"], 3, "blocked"),
    (["blocked", "failed"], 2, "failing"),
    (["failed", "stopped", "locked", "failed"], 2, "failing"),  # stops and locks say nothing of the source
    (["stopped", "stopped", "stopped"], 1, "ok"),
    (["timeout"], 1, "failing"),
]


@pytest.mark.parametrize(("statuses", "n", "expected"), STREAK_CASES)
def test_failure_streaks(statuses: list[str], n: int, expected: str) -> None:
    v = health.assess(statuses, n, first_seen=[], now=T0, every=H, rule=RULE, last_error="HTTP 500")
    assert v.state == expected
    if expected == "failing":
        assert v.message.startswith("failing:") and "Last error: HTTP 500" in v.detail
    if expected == "blocked":
        assert "bot wall" in v.message


QUIET_CASES = [
    # (name, first_seen, now, quiet_from, every, expected)
    ("daily, 2 days silent", daily(30), daily(30)[-1] + 2 * D, None, H, "ok"),
    ("daily, 7 days silent", daily(30), daily(30)[-1] + 7 * D, None, H, "quiet"),
    ("too few arrivals", daily(4), daily(4)[-1] + 100 * D, None, H, "ok"),
    ("history shorter than a week", [T0 + i * H for i in range(50)], T0 + 60 * D, None, timedelta(minutes=5), "ok"),
    ("office hours: a weekend is usual", office_hours(3), T0 + 21 * D - H, None, timedelta(minutes=15), "ok"),
    ("office hours: five silent days", office_hours(3), T0 + 25 * D + 9 * H, None, timedelta(minutes=15), "quiet"),
    ("recovered a day ago", daily(30), daily(30)[-1] + 10 * D, daily(30)[-1] + 9 * D, H, "ok"),
    ("recovered long ago", daily(30), daily(30)[-1] + 10 * D, daily(30)[-1] + D, H, "quiet"),
    # A first pass that stored 300 items in a minute is one arrival, not 299 zero gaps.
    ("bulk first pass then daily", [T0 + timedelta(seconds=i / 5) for i in range(300)] + daily(10, T0 + D),
     T0 + 10 * D + 3 * D, None, H, "ok"),
    # The floor: never quiet under a day, even for a source with a new item every 10 minutes.
    ("fast source, 20h silent", [T0 + i * timedelta(minutes=10) for i in range(2000)],
     T0 + 2000 * timedelta(minutes=10) + 20 * H, None, timedelta(minutes=5), "ok"),
    ("fast source, 30h silent", [T0 + i * timedelta(minutes=10) for i in range(2000)],
     T0 + 2000 * timedelta(minutes=10) + 30 * H, None, timedelta(minutes=5), "quiet"),
    # A slow schedule bounds it too: a source read every 3 days cannot be quiet after 4.
    ("slow schedule", daily(30), daily(30)[-1] + 8 * D, None, 3 * D, "ok"),
]


@pytest.mark.parametrize(("name", "seen", "now", "quiet_from", "every", "expected"), QUIET_CASES,
                         ids=[c[0] for c in QUIET_CASES])
def test_quiet(name: str, seen: list[datetime], now: datetime, quiet_from: datetime | None, every: timedelta,
               expected: str) -> None:
    v = health.assess(["ok"], 3, first_seen=seen, now=now, every=every, rule=RULE, quiet_from=quiet_from)
    assert v.state == expected, name
    if expected == "quiet":
        assert v.message.startswith("quiet: no new item for") and "Usually a new item every" in v.detail


def test_failing_wins_over_quiet() -> None:
    v = health.assess(["failed", "failed"], 2, first_seen=daily(30), now=daily(30)[-1] + 30 * D, every=H, rule=RULE)
    assert v.state == "failing"


TRANSITIONS = [
    # (stored state, verdict, new state or None for no change, event)
    ("ok", "ok", None, None),
    (None, "ok", None, None),
    ("ok", "failing", "failing", "health"),
    (None, "blocked", "blocked", "health"),
    ("ok", "quiet", "quiet", "health"),
    ("failing", "failing", None, None),
    ("failing", "ok", "ok", "recovery"),
    ("blocked", "ok", "ok", "recovery"),
    ("quiet", "ok", "ok", "recovery"),
    ("failing", "blocked", "blocked", None),  # one episode, one alert
    ("blocked", "quiet", "quiet", None),
]


@pytest.mark.parametrize(("current", "verdict", "state", "event"), TRANSITIONS)
def test_transitions(current: str | None, verdict: str, state: str | None, event: str | None) -> None:
    change = health.transition(current, Verdict(verdict, f"{verdict}: why"), since=T0, now=T0 + 3 * H)
    if state is None:
        assert change is None
        return
    assert change is not None and (change.state, change.event) == (state, event)
    if event == "recovery":
        assert change.message == f"works again (was {current} for 3h)"


def test_a_streak_raises_one_alert_and_one_recovery() -> None:
    """Passes one by one through assess + transition: the episode gives exactly two events."""
    stored, events, history = "ok", [], []
    for status in ["ok", "failed", "failed", "failed", "failed", "blocked", "failed", "ok", "ok", "failed", "ok"]:
        history.insert(0, status)
        v = health.assess(history, 2, first_seen=[], now=T0, every=H, rule=RULE)
        change = health.transition(stored, v)
        if change is not None:
            stored = change.state
            if change.event:
                events.append(change.event)
    assert events == ["health", "recovery"] and stored == "ok"


@pytest.mark.parametrize(("seen", "merge", "expected"), [
    ([], H, []),
    ([T0], H, [T0]),
    ([T0 + 10 * H, T0, T0 + timedelta(seconds=30)], H, [T0, T0 + 10 * H]),
    # Merged into the first item of an arrival, not chained: a steady stream stays a rhythm.
    ([T0 + i * timedelta(minutes=20) for i in range(4)], timedelta(minutes=30), [T0, T0 + timedelta(minutes=40)]),
])
def test_arrivals(seen: list[datetime], merge: timedelta, expected: list[datetime]) -> None:
    assert health.arrivals(seen, merge) == expected


@pytest.mark.parametrize(("d", "text"), [
    (timedelta(seconds=5), "5s"), (timedelta(seconds=119), "119s"), (timedelta(minutes=12), "12m"),
    (timedelta(hours=3), "3h"), (timedelta(hours=3, minutes=20), "3h 20m"), (timedelta(days=2), "2d"),
    (timedelta(days=2, hours=4), "2d 4h"), (timedelta(seconds=-3), "0s"),
])
def test_human(d: timedelta, text: str) -> None:
    assert health.human(d) == text


# -- children and their records ----------------------------------------------------------------------------
TRACEBACK = """2026-11-02 10:00:00 WARNING scrapy: something
Traceback (most recent call last):
  File "x.py", line 1, in <module>
    import pipelines.revisions
ModuleNotFoundError: No module named 'pipelines.revisions'
"""


@pytest.mark.parametrize(("stderr", "expected"), [
    ("", ""),
    ("\n\n", ""),
    (TRACEBACK, "ModuleNotFoundError: No module named 'pipelines.revisions'"),
    ("a\nb\nlast line", "last line"),
    ("x ERROR scrapy: one\ny INFO z\nx ERROR scrapy: two\nwhatever", "x ERROR scrapy: two (+1 more)"),
    ("x WARNING scrapy: slow\ny DEBUG scrapy: Using CrawlerProcess", "x WARNING scrapy: slow"),
    ("2026-11-23 18:22:49,644 DEBUG scrapy.crawler: Using CrawlerProcess\nAborted!", ""),
    ("Killed", "Killed"),
    ("Traceback (most recent call last):\n  File \"x\"\nsqlalchemy.exc.OperationalError: (sqlite3.OperationalError) "
     "no such column: items.x\n[SQL: SELECT 1]\n(Background on this error at: https://sqlalche.me/e/21/e3q8)",
     "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) no such column: items.x"),
    ("borderwatch: no such config file", "borderwatch: no such config file"),
    ("E" * 500, "E" * 299 + "…"),
])
def test_summarize_stderr(stderr: str, expected: str) -> None:
    assert summarize_stderr(stderr) == expected


def test_the_child_report_round_trips_through_json(tmp_path: Path) -> None:
    """The daemon learns how a child's pass ended from its JSON report, never from its wording."""
    path = tmp_path / "report.json"
    locked = PassReport("feed", "locked", error="being crawled by h:12")
    done = PassReport("api", "failed", 7, Tally({Count.NEW: 2, Count.FAILED: 1, Count.BAD_RECORD: 1}), "HTTP 500",
                      3.25, requests=9, responses=8, bytes=1234, retries=1, max_pages_reached=True)
    write_reports(path, [locked, done])
    assert read_reports(path) == [locked, done]
    assert read_reports(tmp_path / "missing.json") == []
    path.write_text('{"passes": []}')
    with pytest.raises(ValueError, match="not a pass report file"):
        read_reports(path)


@pytest.mark.parametrize(("last", "every", "expected"), [
    (None, H, T0),  # never ran: now
    (T0 - 3 * H, H, T0),  # overdue: now
    (T0 - timedelta(minutes=20), H, T0 + timedelta(minutes=40)),  # ran 20 min ago: in 40 min, not again now
    (T0 - H, H, T0),
])
def test_first_run(last: datetime | None, every: timedelta, expected: datetime) -> None:
    assert ledger.first_run(last, every, T0) == expected


def test_pass_line() -> None:
    r = PassReport("doj-api", "ok", 3, Tally({Count.NEW: 12, Count.UPDATED: 3, Count.UNCHANGED: 40}), responses=55,
                   seconds=4.25)
    assert r.line() == "doj-api: ok: 12 new, 3 updated, 40 unchanged, 55 responses in 4.2s"
    r = PassReport("feed", "timeout", 4, Tally({Count.FAILED: 2}), seconds=3.0, error="timed out")
    assert r.line() == "feed: timeout: 0 new, 0 updated, 0 unchanged, 2 failed, 0 responses in 3.0s — timed out"
    assert PassReport("feed", "locked", error="being crawled by h:1").line() == (
        "feed: locked — being crawled by h:1; retried at its next run")


def test_json_log_lines() -> None:
    out = io.StringIO()
    setup_logging("json", "INFO", stream=out)
    try:
        logging.getLogger("borderwatch.daemon").info("feed: ok", extra=fields(source="feed", status="ok", new=2))
        logging.getLogger("borderwatch.daemon").debug("hidden")
    finally:
        setup_logging("text", "WARNING")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["level"] == "info" and rec["logger"] == "borderwatch.daemon" and rec["message"] == "feed: ok"
    assert (rec["source"], rec["status"], rec["new"]) == ("feed", "ok", 2)
    assert datetime.fromisoformat(rec["time"]).tzinfo is not None
    assert JsonFormatter().format(logging.makeLogRecord({"msg": "x", "fields": {"message": "no"}})).count('"x"') == 1


def test_run_child_times_out_then_kills() -> None:
    """A child that ignores SIGINT is killed; its whole process group goes with it."""
    code = ("import signal, subprocess, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print(p.pid, flush=True); time.sleep(60)")
    started = time.monotonic()
    import crawler.daemon.child as child_mod

    old = child_mod.KILL_AFTER
    child_mod.KILL_AFTER = 0.5
    try:
        out = run_child([sys.executable, "-c", code], timeout=1.0, stop=StopRequest())
    finally:
        child_mod.KILL_AFTER = old
    assert out.timed_out and not out.stopped and out.exit_code is None
    assert time.monotonic() - started < 10
    grandchild = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(grandchild):
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_run_child_stops_at_the_deadline() -> None:
    stop = StopRequest(deadline=time.monotonic() + 0.5)
    out = run_child([sys.executable, "-c", "import time; time.sleep(30)"], timeout=60, stop=stop)
    assert out.stopped and not out.timed_out and out.seconds < 10


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# -- settling passes in the database (SQLite and PostgreSQL) -----------------------------------------------
def _outcome(pid: int = 999_999, code: int | None = 0, **kw: Any) -> ChildOutcome:
    return ChildOutcome(pid=pid, exit_code=code, seconds=kw.pop("seconds", 1.5), **kw)


def _pass(db: Database, source: str, status: str, started: datetime, **kw: Any) -> int:
    with db.write() as s:
        p = Pass(source=source, started=started, status=status, stats={}, **kw)
        s.add(p)
        s.flush()
        return p.id


def _state(db: Database, source: str) -> SourceState:
    with db.read() as s:
        st = s.get(SourceState, source)
        assert st is not None
        return st


def test_settle_a_hung_child(db: Database) -> None:
    now = datetime.now(UTC)
    spawned = now - timedelta(seconds=5)
    pid = 4_000_000  # no such process
    pid_owner = leases.lease_owner(pid)
    _pass(db, "feed", "ok", spawned - H, finished=spawned - H)
    pass_id = _pass(db, "feed", "running", spawned + timedelta(seconds=1))
    with db.write() as s:
        s.add(Lock(name="source:feed", owner=pid_owner, acquired=spawned, expires=now + H))
    out = _outcome(pid, None, timed_out=True, timeout=1800.0, stderr=TRACEBACK + "Aborted!\n")
    rec = ledger.settle(db, "feed", spawned, out, now)
    assert (rec.status, rec.pass_id) == ("timeout", pass_id)
    assert rec.error == ("timed out: still running after 30m (run.pass_timeout), stopped: "
                         "ModuleNotFoundError: No module named 'pipelines.revisions'")
    with db.read() as s:
        assert s.get(Lock, "source:feed") is None
        row = s.get(Pass, pass_id)
        assert row is not None and row.status == "timeout" and row.finished is not None
    st = _state(db, "feed")
    assert st.consecutive_failures == 1


def test_settle_a_child_that_died_before_its_pass(db: Database) -> None:
    now = datetime.now(UTC)
    rec = ledger.settle(db, "feed", now - timedelta(seconds=2), _outcome(code=1, stderr=TRACEBACK), now)
    assert rec.status == "crashed" and rec.error is not None and "exited with code 1" in rec.error
    assert _state(db, "feed").consecutive_failures == 1


def test_settle_keeps_what_a_child_recorded(db: Database) -> None:
    now = datetime.now(UTC)
    spawned = now - timedelta(seconds=3)
    pid = _pass(db, "feed", "ok", spawned + timedelta(seconds=1), finished=now, new=2, updated=1)
    rec = ledger.settle(db, "feed", spawned, _outcome(), now)
    assert (rec.status, rec.pass_id, rec.new, rec.updated) == ("ok", pid, 2, 1)


def test_settle_a_stopped_pass_leaves_the_source_due(db: Database) -> None:
    now = datetime.now(UTC)
    earlier = now - 2 * H
    _pass(db, "feed", "ok", earlier - timedelta(seconds=5), finished=earlier)
    spawned = now - timedelta(seconds=3)
    # The child recorded a failure after the SIGINT (Scrapy's graceful stop), counting it.
    pass_id = _pass(db, "feed", "failed", spawned + timedelta(seconds=1), finished=now, error="stopped: shutdown")
    with db.write() as s:
        s.add(SourceState(source="feed", consecutive_failures=1, last_pass=now, health="ok"))
    rec = ledger.settle(db, "feed", spawned, _outcome(stopped=True), now)
    assert (rec.status, rec.pass_id) == ("stopped", pass_id)
    st = _state(db, "feed")
    assert st.consecutive_failures == 0
    assert st.last_pass is not None and abs(_utc(st.last_pass) - earlier) < timedelta(seconds=1)


def test_settle_a_locked_source(db: Database) -> None:
    now = datetime.now(UTC)
    out = _outcome(stderr="whatever the child printed")
    report = PassReport("feed", "locked", error="being crawled by h:7")
    rec = ledger.settle(db, "feed", now - timedelta(seconds=2), out, now, report)
    assert rec.status == "locked" and rec.error == "being crawled by h:7"
    with db.read() as s:
        assert s.scalars(select(Pass)).first() is None and s.get(SourceState, "feed") is None


def test_settle_leaves_another_writers_pass_alone(db: Database) -> None:
    now = datetime.now(UTC)
    spawned = now - timedelta(seconds=3)
    pass_id = _pass(db, "feed", "running", spawned + timedelta(seconds=1))
    with db.write() as s:
        s.add(Lock(name="source:feed", owner="otherhost:5", acquired=spawned, expires=now + H))
    rec = ledger.settle(db, "feed", spawned, _outcome(code=0), now)
    assert rec.status == "locked"
    with db.read() as s:
        row = s.get(Pass, pass_id)
        assert row is not None and row.status == "running"


def test_recover_orphans(db: Database) -> None:
    now = datetime.now(UTC)
    dead = _pass(db, "a", "running", now - H)  # no lease at all
    gone = _pass(db, "b", "running", now - H)  # lease of a process of this host that is gone
    live = _pass(db, "c", "running", now - H)  # lease of a live process elsewhere
    with db.write() as s:
        s.add(Lock(name="source:b", owner=leases.lease_owner(4_000_001), acquired=now, expires=now + H))
        s.add(Lock(name="source:c", owner="elsewhere:12", acquired=now, expires=now + H))
    assert sorted(ledger.recover_orphans(db, now)) == ["a", "b"]
    with db.read() as s:
        assert {p.id: p.status for p in s.scalars(select(Pass))} == {dead: "crashed", gone: "crashed", live: "running"}
        assert s.get(Lock, "source:b") is None and s.get(Lock, "source:c") is not None


def test_health_events_once_per_episode(db: Database) -> None:
    rule = QuietRule()
    t = datetime.now(UTC)

    def after(status: str) -> health.Change | None:
        _pass(db, "feed", status, t, finished=t, error="HTTP 500" if status == "failed" else None)
        return ledger.update_health(db, "feed", every=H, failures_alert=2, rule=rule, now=t)

    assert after("ok") is None
    assert after("failed") is None
    change = after("failed")
    assert change is not None and change.event == "health"
    assert after("failed") is None and after("crashed") is None
    change = after("ok")
    assert change is not None and change.event == "recovery"
    assert after("ok") is None
    with db.read() as s:
        events = list(s.scalars(select(AlertEvent).order_by(AlertEvent.id)))
    assert [(e.kind, e.source) for e in events] == [("health", "feed"), ("recovery", "feed")]
    assert events[0].payload["message"].startswith("failing: 2 passes in a row")
    assert events[0].payload["detail"] == "Last error: HTTP 500"
    assert _state(db, "feed").health == "ok"


def test_health_quiet_from_items(db: Database) -> None:
    now = datetime.now(UTC)
    with db.write() as s:
        for i, seen in enumerate(daily(20, now - 40 * D)):
            s.add(Item(url=f"https://example.org/{i}", source="feed", title="t", text="x", first_seen=seen,
                       updated=seen, content_hash=f"{i:064x}"))
    _pass(db, "feed", "ok", now, finished=now)
    change = ledger.update_health(db, "feed", every=H, failures_alert=3, rule=QuietRule(), now=now)
    assert change is not None and (change.state, change.event) == ("quiet", "health")
    assert change.message == "quiet: no new item for 21d"


def test_daemon_lease(db: Database) -> None:
    """One holder at a time; a dead local holder's lease is taken over; a live remote one is named."""
    now = datetime.now(UTC)
    mine, theirs = leases.Leases(db), leases.Leases(db)
    assert claim_daemon_lease(mine, db, now) is None
    assert claim_daemon_lease(mine, db, now) is None  # renewing one's own
    with db.write() as s:
        lock = s.get(Lock, "daemon")
        assert lock is not None
        lock.owner = "otherhost:42"
    refused = claim_daemon_lease(theirs, db, now)
    assert refused is not None and refused.startswith("another daemon is already running on this database: otherhost:42")
    with db.write() as s:
        lock = s.get(Lock, "daemon")
        assert lock is not None
        lock.owner = leases.lease_owner(4_000_003)  # this host, a process that is gone (killed -9)
    assert claim_daemon_lease(theirs, db, now) is None
    assert theirs.lock_holder("daemon") == leases.lease_owner()


class _LostLease:
    def acquire(self, name: str, ttl: timedelta, owner: str | None = None) -> bool:
        return False

    def release(self, name: str, owner: str | None = None) -> None:
        pass

    def lock_holder(self, name: str) -> str | None:
        return "otherhost:9"


def test_a_lost_lease_stops_the_daemon_with_exit_1(sqlite_url: str) -> None:
    cfg = Config.model_validate({"database": sqlite_url, "sources": [
        {"name": "feed", "kind": "feed", "url": "http://127.0.0.1:9/rss"}]})
    db = Database(sqlite_url)
    try:
        daemon = Daemon(cfg, "unused.yaml", db, _LostLease())
        daemon._heartbeat()
        assert daemon.exit_code == 1 and daemon.stop.deadline is not None
    finally:
        db.dispose()


def test_run_without_sources_is_a_usage_error(tmp_path: Path, sqlite_url: str) -> None:
    cfg = write_config(tmp_path / "bw.yaml", {"database": sqlite_url, "sources": [
        {"name": "feed", "kind": "feed", "url": "http://127.0.0.1:9/rss", "enabled": False}]})
    proc = bw(cfg, "run", timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"borderwatch: {cfg}: sources: no enabled sources to run"


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


# -- the real daemon, as a process -------------------------------------------------------------------------
TDA = ["Eight members of the Tren de Aragua gang were charged with sex trafficking in Nashville motels.",
       "The defendants ran a forced-prostitution ring for Tren de Aragua along Interstate 24, prosecutors said."]
FENTANYL = ["A Texas man was sentenced today to 20 years in prison for distributing fentanyl that caused the "
            "fatal overdose of a 19-year-old in Austin.",
            "According to court documents, he sold counterfeit oxycodone pills containing fentanyl."]
AVOCADO = ["Officials discussed avocado export quotas at a trade meeting."]


def _rfc822(t: datetime) -> str:
    return format_datetime(t, usegmt=True)


class Feed:
    """An RSS feed on the local site whose entries can be added while the daemon runs."""

    def __init__(self, site: Any, path: str) -> None:
        self.site, self.path, self.entries = site, path, []
        site.add(path, rss([]), content_type="application/rss+xml")

    def publish(self, slug: str, title: str, paragraphs: list[str]) -> None:
        now = datetime.now(UTC)
        self.site.add(f"/pr/{slug}", justice_page(title, paragraphs, date=now.strftime("%Y-%m-%dT%H:%M:%SZ")))
        self.entries.insert(0, {"title": title, "link": self.site.url(f"/pr/{slug}"), "pubDate": _rfc822(now)})
        self.site.change(self.path, rss(self.entries))

    @property
    def url(self) -> str:
        return str(self.site.url(self.path))


class DaemonProcess:
    """``borderwatch run`` in its own process, its log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.started = datetime.now(UTC)
        env = {k: v for k, v in os.environ.items() if k != "BORDERWATCH_CONFIG"}
        with open(log, "ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(config), "run"],
                                         stdout=f, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon did not exit within {timeout}s:\n{self.text()[-3000:]}") from None

    def stop(self, timeout: float) -> tuple[int, float]:
        t = time.monotonic()
        self.signal(signal.SIGTERM)
        return self.wait(timeout), time.monotonic() - t

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[[Path], DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(config: Path) -> DaemonProcess:
        d = DaemonProcess(config, tmp_path / f"daemon-{len(started)}.log")
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        s.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        yield s


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with Webhook() as h:
        yield h


def wait_until(what: str, check: Callable[[], Any], timeout: float, daemon: DaemonProcess | None = None) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        if daemon is not None and daemon.proc.poll() is not None:
            raise AssertionError(f"the daemon exited ({daemon.proc.returncode}) waiting for {what}:\n{daemon.text()[-3000:]}")
        time.sleep(0.1)
    log = daemon.text()[-4000:] if daemon is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")


def config(tmp_path: Path, url: str, sources: list[dict[str, Any]], *, watchers: list[dict[str, Any]] | None = None,
           **run: Any) -> Path:
    return write_config(tmp_path / "borderwatch.yaml", {
        "database": url,
        "crawl": {"download_delay": 0, "extract_workers": 1, "retries": 0, "timeout": 60},
        "sources": sources,
        "watchers": watchers or [],
        "run": {"dispatch_every": "1s", "grace": "20s", **run},
    })


def passes(db: Database, source: str | None = None) -> list[Pass]:
    with db.read() as s:
        q = select(Pass).order_by(Pass.id)
        if source is not None:
            q = q.where(Pass.source == source)
        return list(s.scalars(q))


def finished(db: Database, source: str, status: str | None = None) -> list[Pass]:
    return [p for p in passes(db, source) if p.status != "running" and (status is None or p.status == status)]


def titles(hook: Webhook, needle: str) -> list[str]:
    return [t for t in hook.titles() if needle in t]


def test_alerts_arrive_sigterm_and_restart(tmp_path: Path, sqlite_url: str, site: Site, hook: Webhook,
                                          daemons: Callable[[Path], DaemonProcess]) -> None:
    """New items are alerted with no manual command; SIGTERM exits 0; a restart neither repeats nor skips."""
    fast, slow = Feed(site, "/fast.rss"), Feed(site, "/slow.rss")
    fast.publish("tda", "Eight Tren de Aragua Members Charged in Nashville", TDA)
    slow.publish("avocado", "Avocado Trade Talks Continue", AVOCADO)
    cfg = config(tmp_path, sqlite_url, [
        {"name": "fast", "kind": "feed", "url": fast.url, "every": "2s"},
        {"name": "slow", "kind": "feed", "url": slow.url, "every": "1h"},
    ], watchers=[{"name": "desk", "notify": [hook.url()], "admin": True}])
    db = Database(sqlite_url)
    try:
        d = daemons(cfg)
        wait_until("the first alert", lambda: titles(hook, "Tren de Aragua"), 30, d)
        wait_until("a pass over slow", lambda: finished(db, "slow", "ok"), 20, d)
        # A new release appears on the site: its alert arrives by itself.
        fast.publish("fentanyl", "Texas Man Sentenced for Fatal Fentanyl Distribution", FENTANYL)
        appeared = time.monotonic()
        wait_until("the new item's alert", lambda: titles(hook, "Fentanyl Distribution"), 20, d)
        assert time.monotonic() - appeared < 15
        code, took = d.stop(30)
        assert code == 0 and took < 20, d.text()[-2000:]
        log = d.text()
        assert "Traceback" not in log
        assert "fast: ok: 1 new, 0 updated" in log and "stopping (SIGTERM)" in log and log.rstrip().endswith("stopped")
        assert not [p for p in passes(db) if p.status == "running"]
        with db.read() as s:
            assert list(s.scalars(select(Lock))) == []
        sent = len(hook.received)
        assert sent == 2, hook.titles()
        fast_before = len(finished(db, "fast"))
        stopped_at = datetime.now(UTC)

        # Restart: fast (due: its interval has passed) runs at once; slow (ran minutes ago, every 1h) does not.
        d2 = daemons(cfg)
        wait_until("a pass over fast after the restart", lambda: len(finished(db, "fast")) > fast_before, 30, d2)
        first = next(p for p in passes(db, "fast") if _utc(p.started) > stopped_at)
        assert _utc(first.started) - d2.started < timedelta(seconds=8), "a due pass was not run at start"
        assert len(finished(db, "slow")) == 1 and "slow in 59m" in d2.text()
        code, _ = d2.stop(30)
        assert code == 0
        assert len(hook.received) == sent, hook.titles()  # nothing repeated
        assert all(p.status in ("ok", "stopped") for p in passes(db)), [(p.source, p.status, p.error) for p in passes(db)]
    finally:
        db.dispose()


def test_failing_source_one_health_alert_one_recovery(tmp_path: Path, sqlite_url: str, site: Site, hook: Webhook,
                                                     daemons: Callable[[Path], DaemonProcess]) -> None:
    feed = Feed(site, "/news.rss")
    feed.publish("avocado", "Avocado Trade Talks Continue", AVOCADO)
    cfg = config(tmp_path, sqlite_url, [{"name": "news", "kind": "feed", "url": feed.url, "every": "1s"}],
                 watchers=[{"name": "ops", "notify": [hook.url()], "admin": True}], failures_alert=2)
    db = Database(sqlite_url)
    try:
        d = daemons(cfg)
        wait_until("a good pass", lambda: finished(db, "news", "ok"), 20, d)
        with site.lock:
            site.pages["/news.rss"].fail = [500] * 10_000
        wait_until("the health alert", lambda: titles(hook, "Source problem"), 30, d)
        failed_then = len(finished(db, "news", "failed"))
        wait_until("one more failed pass", lambda: len(finished(db, "news", "failed")) > failed_then, 20, d)
        with site.lock:
            site.pages["/news.rss"].fail.clear()
        wait_until("the recovery notice", lambda: titles(hook, "Source recovered"), 30, d)
        ok_then = len(finished(db, "news", "ok"))
        wait_until("one more good pass", lambda: len(finished(db, "news", "ok")) > ok_then, 20, d)
        code, _ = d.stop(30)
        assert code == 0
        problem, recovered = titles(hook, "Source problem"), titles(hook, "Source recovered")
        assert len(problem) == 1 and len(recovered) == 1, hook.titles()
        assert "news: failing: 2 passes in a row did not complete (2 failed)" in problem[0]
        assert "news: works again (was failing for" in recovered[0]
        body = next(r.payload["message"] for r in hook.received if "Source problem" in r.payload["title"])
        assert "500" in body
        assert _state(db, "news").health == "ok" and _state(db, "news").consecutive_failures == 0
        log = d.text()
        assert "news: failed: 0 new" in log and "news: failing: 2 passes" in log and "news: works again" in log
    finally:
        db.dispose()


def test_hanging_pass_times_out_and_a_second_signal_stops_at_once(
        tmp_path: Path, sqlite_url: str, site: Site, daemons: Callable[[Path], DaemonProcess]) -> None:
    site.add("/hang.rss", rss([]), content_type="application/rss+xml", hang=60)
    fast = Feed(site, "/fast.rss")
    fast.publish("avocado", "Avocado Trade Talks Continue", AVOCADO)
    cfg = config(tmp_path, sqlite_url, [
        {"name": "hang", "kind": "feed", "url": site.url("/hang.rss"), "every": "1s"},
        {"name": "fast", "kind": "feed", "url": fast.url, "every": "1s"},
    ], pass_timeout="12s", parallel=2, grace="60s")  # a normal pass takes 2-7s, more on a loaded machine
    db = Database(sqlite_url)
    try:
        d = daemons(cfg)
        timed_out = wait_until("a timed-out pass", lambda: finished(db, "hang", "timeout"), 40, d)
        assert timed_out[0].error == "timed out: still running after 12s (run.pass_timeout), stopped"
        wait_until("fast passes while hang hangs", lambda: len(finished(db, "fast", "ok")) >= 2, 20, d)
        st = _state(db, "hang")
        assert st.consecutive_failures >= 1
        with db.read() as s:  # the killed child's lease went with it
            lock = s.get(Lock, "source:hang")
            assert lock is None or not leases.owner_gone(lock.owner)
        assert "hang: timeout: 0 new" in d.text()
        # A pass is hanging now; the first signal would wait 60s for it, the second stops it at once.
        last = max(p.id for p in passes(db, "hang"))
        wait_until("a hanging pass", lambda: [p for p in passes(db, "hang") if p.status == "running" and p.id > last],
                   20, d)
        d.signal(signal.SIGTERM)
        time.sleep(0.5)
        t = time.monotonic()
        d.signal(signal.SIGINT)
        assert d.wait(15) == 0
        assert time.monotonic() - t < 8
        assert "stopped at once (second signal)" in d.text()
        assert not [p for p in passes(db) if p.status == "running"], [(p.source, p.status) for p in passes(db)]
        assert "stopped" in {p.status for p in passes(db, "hang")}
    finally:
        db.dispose()


def test_two_daemons_and_a_locked_source(tmp_path: Path, database_url: str, site: Site,
                                         daemons: Callable[[Path], DaemonProcess]) -> None:
    """A second daemon on one database exits 1 naming the first; a source locked by a manual crawl waits."""
    feed = Feed(site, "/news.rss")
    feed.publish("avocado", "Avocado Trade Talks Continue", AVOCADO)
    cfg = config(tmp_path, database_url, [{"name": "news", "kind": "feed", "url": feed.url, "every": "1s"}],
                 log_format="json")
    db = Database(database_url)
    try:
        now = datetime.now(UTC)
        with db.write() as s:  # as a `borderwatch crawl news` on another machine holds it
            s.add(Lock(name="source:news", owner="otherhost:77", acquired=now, expires=now + H))
        d = daemons(cfg)
        wait_until("the daemon lease", lambda: leases.lease(db, "daemon"), 20, d)
        second = bw(cfg, "run", timeout=60)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert lines[0].startswith("borderwatch: another daemon is already running on this database: ")
        assert f"{socket.gethostname()}:{d.pid}" in lines[0]
        wait_until("a locked pass", lambda: "news: locked — being crawled by otherhost:77" in d.text(), 20, d)
        assert passes(db, "news") == []
        with db.write() as s:
            s.execute(Lock.__table__.delete().where(Lock.name == "source:news"))
        wait_until("a pass once the lock is free", lambda: finished(db, "news", "ok"), 20, d)
        assert _state(db, "news").consecutive_failures == 0
        code, _ = d.stop(30)
        assert code == 0
        assert leases.lease(db, "daemon") is None
        # run.log_format: json — every line one object, the pass lines with their fields.
        lines = [json.loads(line) for line in d.text().splitlines()]
        assert all({"time", "level", "logger", "message"} <= set(rec) for rec in lines)
        ok = next(rec for rec in lines if rec.get("event") == "pass" and rec.get("status") == "ok")
        assert ok["source"] == "news" and ok["new"] == 1 and ok["message"].startswith("news: ok: 1 new")
    finally:
        db.dispose()


REWORDED_CHILD = """
import sys

from crawler.passes.report import PassReport

# Any wording at all: the daemon must not depend on it.
PassReport.line = lambda self, **kw: f"[{self.status.upper()}] the pass over {self.source} is over"

if __name__ == "__main__":  # (extraction workers are spawned: they import this module too)
    from crawler.cli.main import entry

    entry(sys.argv[1:])
"""


def test_the_daemon_reads_the_childs_report_not_its_wording(tmp_path: Path, sqlite_url: str, site: Site) -> None:
    """The child's summary line reworded: the daemon still sees a locked source, then an ok pass with its counts."""
    feed = Feed(site, "/news.rss")
    feed.publish("tda", "Eight Tren de Aragua Members Charged in Nashville", TDA)
    cfg = config(tmp_path, sqlite_url, [{"name": "news", "kind": "feed", "url": feed.url, "every": "1h"}])
    script = tmp_path / "reworded.py"
    script.write_text(REWORDED_CHILD)

    class RewordedDaemon(Daemon):  # its children run the CLI with the reworded summary line
        def pass_command(self, name: str, report_path: str) -> list[str]:
            cmd = super().pass_command(name, report_path)
            assert cmd[1:3] == ["-m", "crawler"]
            return [sys.executable, str(script), *cmd[3:]]

    db = Database(sqlite_url)
    try:
        now = datetime.now(UTC)
        with db.write() as s:  # as a `borderwatch crawl news` on another machine holds it
            s.add(Lock(name="source:news", owner="otherhost:77", acquired=now, expires=now + H))
        shown = subprocess.run([sys.executable, str(script), "--config", str(cfg), "crawl", "news", "--no-alerts"],
                               capture_output=True, text=True, timeout=120, check=False)
        assert shown.returncode == 0 and shown.stderr.strip() == "[LOCKED] the pass over news is over", shown
        daemon = RewordedDaemon(load_config(str(cfg)), str(cfg), db, leases.Leases(db))
        locked = daemon._run_pass("news")
        assert locked is not None and (locked.status, locked.error) == ("locked", "being crawled by otherhost:77")
        assert passes(db, "news") == []
        with db.write() as s:
            s.execute(Lock.__table__.delete().where(Lock.name == "source:news"))
        done = daemon._run_pass("news")
        assert done is not None and (done.status, done.new, done.error) == ("ok", 1, None), done
        (row,) = passes(db, "news")
        assert (row.status, row.new, done.pass_id) == ("ok", 1, row.id)
        assert done.line().startswith("news: ok: 1 new")  # the daemon's own log line, from the record
    finally:
        db.dispose()
