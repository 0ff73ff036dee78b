"""``borderwatch alerts list|send|test`` through click's runner, against a real webhook and SMTP server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from alert_support import SmtpSink, Webhook, seed_health, seed_item, watcher
from click.testing import CliRunner

from alerts.config import AlertSettings, WatcherConfig
from alerts.dispatch import deliver, plan
from crawler.cli.alerts import AlertsApp, alerts
from pipelines.db import Database
from pipelines.timeutil import utcnow

# apprise 2.2 imports the stdlib `imghdr` module (deprecated in 3.11, gone in 3.13) when it loads its e-mail
# plugin; that is apprise's business, not ours, so exactly that warning is ignored here.
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")


@dataclass
class Config:
    watchers: list[WatcherConfig]
    alerts: AlertSettings = field(default_factory=lambda: AlertSettings.model_validate({}))


def run(app: AlertsApp, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(alerts, list(args), obj=app, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_send_delivers_failed_alerts_and_prints_one_line(db: Database, hook: Webhook) -> None:
    t0 = utcnow()
    settings = AlertSettings.model_validate({"max_attempts": 2, "backoff": "5s"})
    ws = [watcher("desk", hook.url("/hook", user="desk", password="hunter2secret"))]
    app = AlertsApp(Config(ws, settings), db)
    seed_item(db, title="TdA members charged", now=t0)
    seed_item(db, title="Fentanyl pills seized", topics=["fentanyl"], now=t0)
    hook.fail_next(100)
    plan(db, ws, now=t0)
    deliver(db, ws, now=t0, settings=settings)
    deliver(db, ws, now=t0 + timedelta(minutes=1), settings=settings)

    code, out, err = run(app, "list", "--state", "failed")
    assert code == 0
    assert out.count(" failed ") == 2 and "503" in out and "hunter2secret" not in out
    code, out, _ = run(app, "list", "--format", "json")
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["state"], r["kind"], r["attempts"]) for r in records] == [("failed", "new", 2)] * 2
    assert {r["title"] for r in records} == {"TdA members charged", "Fentanyl pills seized"}

    # still down: `send` tries, says so, exits 1 (a delivery did not go through)
    code, out, err = run(app, "send")
    assert code == 1 and out.startswith("0 alerts sent (0 messages), 0 retrying, 2 failed")
    assert err.count("failed: desk #") == 2 and "hunter2secret" not in err

    hook.fail_next(0)
    code, out, err = run(app, "send")
    assert (code, err) == (0, "")
    assert out.startswith("2 alerts sent (2 messages), 0 retrying, 0 failed")
    assert len(hook.received) == 2
    code, out, _ = run(app, "list", "--state", "failed")
    assert out.strip() == "no alerts in state failed"


def test_send_plans_new_events_and_flushes_digests(db: Database, hook: Webhook) -> None:
    ws = [watcher("digest", hook.url(), mode="digest", at="08:00")]
    seed_item(db, title="TdA members charged")
    code, out, _ = run(AlertsApp(Config(ws), db), "send")
    assert code == 0 and out.startswith("1 planned, 1 alert sent (1 messages)")
    assert hook.titles() == ["[borderwatch] Digest: 1 new story (Tren de Aragua 1)"]


def test_list_shows_health_and_waiting_digests(db: Database, hook: Webhook) -> None:
    ws = [watcher("ops", hook.url(), admin=True), watcher("digest", hook.url("/d"), mode="digest", every="1d")]
    seed_health(db, "doj-news", "health", "failing: 3 passes in a row")
    seed_item(db, title="TdA members charged")
    plan(db, ws)
    code, out, _ = run(AlertsApp(Config(ws), db), "list", "--state", "pending")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "WATCHER", "KIND", "TRIES", "WHEN", "TITLE"]
    assert any("pending*" in line and "TdA members charged" in line for line in lines)
    assert any(" health " in line and "doj-news: failing: 3 passes in a row" in line for line in lines)
    assert lines[-2:] == ["* waiting for its digest window", "WHEN: sent at, else next try, else created (UTC)"]


def test_test_command_reports_each_channel(db: Database, hook: Webhook, smtp: SmtpSink) -> None:
    ws = [watcher("desk", [smtp.url(), hook.url("/hook", user="desk", password="hunter2secret")])]
    app = AlertsApp(Config(ws), db)
    code, out, _ = run(app, "test", "desk")
    assert code == 0
    assert out.splitlines() == [
        f"ok      mailto://127.0.0.1:{smtp.port}/desk%40example.org",
        f"ok      json://desk:****@127.0.0.1:{hook.port}/hook",
    ]
    assert smtp.messages[0]["Subject"] == "[borderwatch] Test message for watcher desk"
    assert "<b>desk</b>" in SmtpSink.html_of(smtp.messages[0])
    assert hook.received[0].payload["title"] == "[borderwatch] Test message for watcher desk"

    hook.fail_next(1)
    code, out, _ = run(app, "test", "desk")
    assert code == 1
    assert out.splitlines()[0].startswith("ok      mailto://")
    assert out.splitlines()[1].startswith(f"FAILED  json://desk:****@127.0.0.1:{hook.port}/hook: ")
    assert "503" in out and "hunter2secret" not in out


def test_test_command_unknown_watcher(db: Database) -> None:
    app = AlertsApp(Config([watcher("desk", "json://127.0.0.1:9/x")]), db)
    code, out, err = run(app, "test", "nobody")
    assert code == 2 and out == ""
    assert err == "unknown watcher 'nobody' (known: desk)\n"
