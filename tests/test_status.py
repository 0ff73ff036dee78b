"""``borderwatch status``: last and next pass, items, failures, health, alert backlog and the daemon lease."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import bw_here, write_config

from crawler.cli.main import main
from crawler.read.status import next_pass, when_next
from pipelines import leases
from pipelines.db import Database
from pipelines.models import AlertEvent, Delivery, Item, Lock, Pass, SourceState

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(("last", "every", "enabled", "configured", "text"), [
    (None, H, True, True, "due now"),
    (NOW - 2 * H, H, True, True, "due now"),
    (NOW - timedelta(minutes=45), H, True, True, "in 15m"),
    (NOW - timedelta(minutes=45), H, False, True, "disabled"),
    (None, H, False, False, "not in config"),
])
def test_next_pass(last: datetime | None, every: timedelta, enabled: bool, configured: bool, text: str) -> None:
    assert when_next(next_pass(last, every, enabled), enabled, configured, NOW) == text


def _config(tmp_path: Path, url: str) -> Path:
    return write_config(tmp_path / "bw.yaml", {
        "database": url,
        "sources": [
            {"name": "doj-api", "kind": "doj_api", "url": "https://www.justice.gov/api/v1/press_releases.json",
             "every": "15m"},
            {"name": "doj-news", "kind": "feed", "url": "https://www.justice.gov/news/rss", "every": "1h"},
            {"name": "listing", "kind": "listing", "url": "https://example.org/news", "links": "h3 a",
             "enabled": False},
            {"name": "fresh", "kind": "feed", "url": "https://example.org/rss", "every": "10m"},
        ],
        # the watcher the seeded deliveries are for (a removed watcher's deliveries are `orphaned`)
        "watchers": [{"name": "desk", "notify": ["json://127.0.0.1:9/hook"]}],
    })


def _seed(db: Database, now: datetime, daemon_owner: str | None) -> None:
    with db.write() as s:
        s.add_all([
            Pass(source="doj-api", started=now - timedelta(minutes=6), finished=now - timedelta(minutes=5),
                 status="ok", new=12, updated=3, unchanged=40, stats={}),
            Pass(source="doj-news", started=now - 3 * H, finished=now - 3 * H, status="ok", new=1, stats={}),
            Pass(source="doj-news", started=now - 2 * H, finished=now - 2 * H, status="failed",
                 error="https://www.justice.gov/news/rss: HTTP 500", stats={}),
            Pass(source="doj-news", started=now - timedelta(minutes=2), status="running", stats={}),
            Pass(source="gone", started=now - 30 * H, finished=now - 30 * H, status="ok", stats={}),
            SourceState(source="doj-api", last_pass=now - timedelta(minutes=5), last_success=now - timedelta(minutes=5),
                        consecutive_failures=0, health="ok"),
            SourceState(source="doj-news", last_pass=now - 2 * H, consecutive_failures=2, health="failing",
                        health_since=now - 2 * H),
        ])
        for i in range(3):
            s.add(Item(url=f"https://www.justice.gov/opa/pr/{i}", source="doj-api", title="t", text="x",
                       first_seen=now, updated=now, content_hash=f"{i:064x}"))
        s.add(Item(url="https://www.justice.gov/news/9", source="doj-news", title="t", text="x", first_seen=now,
                   updated=now, content_hash="f" * 64))
        ev = AlertEvent(kind="health", source="doj-news", created=now, payload={"message": "failing"})
        s.add(ev)
        s.add(AlertEvent(kind="recovery", source="doj-news", created=now, dispatched=False, payload={}))
        s.flush()
        for n, state in enumerate(["pending", "pending", "failed", "sent", "sent", "sent"]):
            s.add(Delivery(watcher="desk", event_id=ev.id, dedup_key=f"k{n}", state=state, created=now))
        if daemon_owner:
            s.add(Lock(name="daemon", owner=daemon_owner, acquired=now, expires=now + timedelta(seconds=90)))


def _status(config: Path, *args: str) -> Any:
    result = CliRunner().invoke(main, ["--config", str(config), "status", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_status_json(tmp_path: Path, database_url: str) -> None:
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        _seed(db, now, "otherhost:42")
    finally:
        db.dispose()
    out = json.loads(_status(_config(tmp_path, database_url), "--format", "json"))
    assert out["daemon"] == {"running": True, "holder": "otherhost:42", "lease_expires": out["daemon"]["lease_expires"],
                             "stale": False}
    by = {s["source"]: s for s in out["sources"]}
    assert list(by) == ["doj-api", "doj-news", "listing", "fresh", "gone"]
    api = by["doj-api"]
    assert api["last_pass"]["status"] == "ok" and (api["last_pass"]["new"], api["last_pass"]["updated"]) == (12, 3)
    assert api["items"] == 3 and api["consecutive_failures"] == 0 and api["health"] == "ok"
    assert not api["due_now"]
    assert timedelta(minutes=9) < datetime.fromisoformat(api["next_pass"]) - now <= timedelta(minutes=10)
    news = by["doj-news"]
    assert news["last_pass"]["status"] == "failed" and "HTTP 500" in news["last_pass"]["error"]
    assert news["running_since"] is not None and news["due_now"] and news["next_pass"] is None
    assert (news["consecutive_failures"], news["health"], news["items"]) == (2, "failing", 1)
    assert by["listing"]["enabled"] is False and by["listing"]["due_now"] is False
    assert by["fresh"]["last_pass"] is None and by["fresh"]["due_now"]
    assert by["gone"]["configured"] is False
    assert out["alerts"] == {"pending": 2, "sending": 0, "failed": 1, "uncertain": 0, "orphaned": 0, "sent": 3,
                             "unplanned_events": 2}


def test_status_table(tmp_path: Path, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        _seed(db, datetime.now(UTC), leases.lease_owner(4_000_002))  # this host, a process that is gone
    finally:
        db.dispose()
    lines = _status(_config(tmp_path, sqlite_url)).splitlines()
    assert lines[0].startswith("daemon: not running (a stale lease of") and "that process is gone" in lines[0]
    head = lines[2].split()
    assert head[:3] == ["SOURCE", "HEALTH", "LAST"]
    rows = {ln.split()[0]: ln for ln in lines[3:] if ln and not ln.startswith((" ", "alerts"))}
    assert "in 9m" in rows["doj-api"] or "in 10m" in rows["doj-api"]
    assert "failing 2h" in rows["doj-news"] and "running" in rows["doj-news"]
    assert "disabled" in rows["listing"] and "never" in rows["fresh"] and "due now" in rows["fresh"]
    assert "not in config" in rows["gone"]
    assert "  doj-news: https://www.justice.gov/news/rss: HTTP 500" in lines
    assert lines[-1] == "alerts: 2 pending, 0 sending, 1 failed (3 sent); 2 events not yet planned"


def test_status_real_cli_on_an_empty_database(tmp_path: Path, sqlite_url: str) -> None:
    """The real command (its console entry, through click's runner): no daemon, no passes, nothing pending."""
    config = _config(tmp_path, sqlite_url)
    proc = bw_here(config, "status")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "daemon: not running"
    assert proc.stdout.count("due now") == 3 and "disabled" in proc.stdout
    proc = bw_here(config, "status", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["daemon"]["running"] is False and out["alerts"]["pending"] == 0
