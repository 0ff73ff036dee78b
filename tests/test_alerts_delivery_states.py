"""Delivery states beyond sent/failed: a slow endpoint within ``alerts.send_timeout`` is sent once; a send that
timed out after it went out is ``uncertain`` (shown, never repeated blindly); a delivery whose watcher left the
config is ``orphaned`` (shown, not counted as failed, live again when the watcher comes back); ``alerts send``
exits 1 when something did not go through. Real webhook, real databases."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from alert_support import Webhook, seed_item, watcher
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, select, text

from alerts.config import AlertSettings, WatcherConfig
from alerts.dispatch import deliver, plan
from crawler.cli.alerts import AlertsApp, alerts
from crawler.config import Config as FullConfig
from crawler.read.status import gather, render_table, to_json
from pipelines.db import MIGRATIONS, Database
from pipelines.models import Delivery, DeliveryAttempt
from pipelines.timeutil import utcnow

pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")


@dataclass
class Config:
    watchers: list[WatcherConfig]
    alerts: AlertSettings = field(default_factory=lambda: AlertSettings.model_validate({}))


def run(app: AlertsApp, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(alerts, list(args), obj=app, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def deliveries(db: Database) -> list[Delivery]:
    with db.read() as s:
        return list(s.scalars(select(Delivery).order_by(Delivery.id)))


def outcomes(db: Database) -> list[tuple[str, str | None]]:
    with db.read() as s:
        return [(a.channel, a.outcome) for a in s.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id))]


# -- the configured timeout applies -----------------------------------------------------------------------------


def test_a_webhook_answering_in_6s_within_a_10s_send_timeout_gets_one_copy(sqlite_url: str, hook: Webhook) -> None:
    db = Database(sqlite_url)
    hook.delay = 6.0
    settings = AlertSettings.model_validate({"send_timeout": 10, "backoff": "1s"})
    ws = [watcher("desk", hook.url())]
    seed_item(db, title="TdA members charged")
    plan(db, ws)
    report = deliver(db, ws, settings=settings)
    assert (report.sent, report.retrying, report.failed, report.uncertain) == (1, 0, 0, 0)
    # later runs (past any backoff) have nothing to do
    assert deliver(db, ws, now=utcnow() + timedelta(hours=1), settings=settings).messages == 0
    assert len(hook.received) == 1
    [d] = deliveries(db)
    assert (d.state, d.attempts) == ("sent", 1)
    db.dispose()


def test_a_15s_answer_with_a_3s_send_timeout_is_uncertain_and_not_repeated(sqlite_url: str, hook: Webhook) -> None:
    db = Database(sqlite_url)
    hook.delay = 15.0
    settings = AlertSettings.model_validate({"send_timeout": 3, "backoff": "1s"})
    ws = [watcher("desk", hook.url())]
    app = AlertsApp(Config(ws, settings), db)
    seed_item(db, title="TdA members charged")
    plan(db, ws)
    started = time.monotonic()
    report = deliver(db, ws, settings=settings)
    assert time.monotonic() - started < 6  # the configured 3 s applied, not apprise's own limits
    assert (report.sent, report.retrying, report.failed, report.uncertain) == (0, 0, 0, 1)
    [d] = deliveries(db)
    assert (d.state, d.next_attempt) == ("uncertain", None)
    assert "no answer within 3s after the message went out" in (d.last_error or "")
    assert outcomes(db) == [(outcomes(db)[0][0], "uncertain")]

    # neither the backoff nor a plain `alerts send` sends it again…
    assert deliver(db, ws, now=utcnow() + timedelta(hours=2), settings=settings).messages == 0
    code, out, err = run(app, "send")
    assert code == 0 and out.startswith("0 alerts sent (0 messages)"), (out, err)
    # …and `alerts list` says what happened
    code, out, _ = run(app, "list", "--state", "uncertain")
    assert code == 0 and " uncertain " in out and "may have arrived" in out
    [record] = [json.loads(line) for line in run(app, "list", "--format", "json")[1].splitlines()]
    assert record["state"] == "uncertain"

    hook.wait_for(1, timeout=20)
    time.sleep(0.5)
    assert len(hook.received) == 1  # the slow endpoint did get it: exactly one copy

    # a person may decide to send it again: then it is sent (a second copy, asked for)
    hook.delay = 0.0
    code, out, err = run(app, "send", "--resend-uncertain")
    assert (code, err) == (0, ""), (out, err)
    assert out.startswith("1 alert sent (1 messages)")
    assert len(hook.received) == 2 and deliveries(db)[0].state == "sent"
    db.dispose()


def test_an_uncertain_channel_is_not_retried_with_a_failed_one(db: Database, hook: Webhook) -> None:
    """Two channels: one times out after sending, one is refused. Only the refused one is retried; once it
    accepts, the delivery is uncertain (one channel may not have it), not sent and not failed."""
    with Webhook(delay=4.0) as slow:
        settings = AlertSettings.model_validate({"send_timeout": 1, "backoff": "1s"})
        ws = [watcher("desk", [slow.url("/slow"), hook.url("/down")])]
        seed_item(db, title="Fentanyl pills seized", topics=["fentanyl"])
        plan(db, ws)
        hook.fail_next(1)
        first = deliver(db, ws, settings=settings)
        assert (first.retrying, first.uncertain) == (1, 0)
        assert deliveries(db)[0].state == "pending"
        second = deliver(db, ws, now=utcnow() + timedelta(minutes=5), settings=settings)
        assert (second.sent, second.retrying, second.uncertain, second.messages) == (0, 0, 1, 1)
        [d] = deliveries(db)
        assert d.state == "uncertain" and "/slow: uncertain before (not re-sent)" in (d.last_error or "")
        assert [o for _, o in outcomes(db)] == ["uncertain", "failed", "sent"]
        slow.wait_for(1, timeout=10)
        assert len(slow.received) == 1 and len(hook.received) == 1


def test_a_time_budget_never_cuts_a_send_short(sqlite_url: str, hook: Webhook) -> None:
    """With 2 s of budget and a channel answering in 3 s, the one send started gets its whole send_timeout
    (sent, once); the next waits for the next run instead of being cut off into an uncertain send."""
    db = Database(sqlite_url)
    hook.delay = 3.0
    settings = AlertSettings.model_validate({"send_timeout": 10})
    ws = [watcher("desk", hook.url())]
    seed_item(db, title="TdA members charged")
    seed_item(db, title="Fentanyl pills seized", topics=["fentanyl"])
    plan(db, ws)
    report = deliver(db, ws, settings=settings, budget=2.0)
    assert (report.sent, report.uncertain, report.retrying, report.deferred) == (1, 0, 0, 1)
    assert [d.state for d in deliveries(db)] == ["sent", "pending"] and len(hook.received) == 1
    db.dispose()


# -- `alerts send` exit codes -----------------------------------------------------------------------------------


def test_alerts_send_exits_1_when_a_delivery_did_not_go_through(db: Database, hook: Webhook) -> None:
    settings = AlertSettings.model_validate({"max_attempts": 3})
    ws = [watcher("desk", hook.url())]
    app = AlertsApp(Config(ws, settings), db)
    code, out, _ = run(app, "send")
    assert (code, out.startswith("0 alerts sent")) == (0, True)  # nothing to send is not a failure
    seed_item(db, title="TdA members charged")
    hook.fail_next(1)
    code, out, err = run(app, "send")
    assert code == 1 and "1 retrying" in out and err.startswith("failed: desk #")
    code, out, err = run(app, "send")
    assert (code, err) == (0, "") and out.startswith("1 alert sent")


def test_alerts_test_says_when_a_channel_is_uncertain(db: Database, hook: Webhook) -> None:
    hook.delay = 3.0
    app = AlertsApp(Config([watcher("desk", hook.url())], AlertSettings.model_validate({"send_timeout": 1})), db)
    code, out, _ = run(app, "test", "desk")
    assert code == 1 and out.startswith("UNSURE  json://127.0.0.1:") and "may have arrived" in out


# -- orphaned deliveries ----------------------------------------------------------------------------------------


def test_a_removed_watchers_deliveries_are_orphaned_everywhere_and_live_again_when_it_returns(
    db: Database, hook: Webhook
) -> None:
    settings = AlertSettings.model_validate({"max_attempts": 1})
    desk, gone = watcher("desk", hook.url("/desk")), watcher("gone", hook.url("/gone"))
    seed_item(db, title="TdA members charged")
    seed_item(db, title="Fentanyl pills seized", topics=["fentanyl"])
    plan(db, [desk, gone])
    hook.fail_next(100)
    deliver(db, [desk, gone], settings=settings)  # all four fail for good
    assert [d.state for d in deliveries(db)] == ["failed"] * 4
    hook.fail_next(0)

    # `gone` leaves the config: its two failed deliveries are orphaned, not failed — for list, status and send
    app = AlertsApp(Config([desk], settings), db)
    code, out, _ = run(app, "list", "--state", "orphaned")
    assert code == 0 and out.count(" orphaned ") == 2 and "'gone' is no longer configured (was failed)" in out
    code, out, _ = run(app, "list", "--state", "failed")
    assert out.count(" failed ") == 2 and " gone " not in out
    full = FullConfig.model_validate({"sources": [], "watchers": [desk.model_dump(exclude_defaults=True)]})
    report = gather(db, full, utcnow())
    assert to_json(report)["alerts"] == {"pending": 0, "sending": 0, "failed": 2, "uncertain": 0, "orphaned": 2,
                                         "sent": 0, "unplanned_events": 0}
    assert list(render_table(report))[-1] == "alerts: 0 pending, 0 sending, 2 failed, 2 orphaned (0 sent); " \
                                             "0 events not yet planned"
    code, out, _ = run(app, "send")
    assert code == 0 and "2 alerts sent (2 messages)" in out and "2 orphaned (watcher no longer configured)" in out
    assert {r.path for r in hook.received} == {"/desk"}

    # it comes back: its deliveries are live again, and `alerts send` (which retries failed ones) sends them
    app = AlertsApp(Config([desk, gone], settings), db)
    code, out, _ = run(app, "list", "--state", "orphaned")
    assert out.strip() == "no alerts in state orphaned"
    code, out, _ = run(app, "send")
    assert code == 0 and out.startswith("2 alerts sent (2 messages)") and "orphaned" not in out
    assert sorted(r.path for r in hook.received) == ["/desk", "/desk", "/gone", "/gone"]


# -- the migration ------------------------------------------------------------------------------------------------


def test_migration_0007_fills_the_outcome_of_earlier_attempts(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    engine = create_engine(database_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alert_events (id, kind, created, dispatched, payload) "
                          "VALUES (1, 'new', :now, true, '{}')"),
                     {"now": now})
        conn.execute(text("INSERT INTO deliveries (id, watcher, event_id, dedup_key, state, digest, attempts, "
                          "created) VALUES (1, 'desk', 1, 'new:story:1', 'sent', false, 2, :now)"), {"now": now})
        for ok in (False, True):
            conn.execute(text("INSERT INTO delivery_attempts (delivery_id, at, channel, ok) "
                              "VALUES (1, :now, 'json://h/', :ok)"), {"now": now, "ok": ok})
    engine.dispose()
    db = Database(database_url)  # upgrades to the newest revision
    try:
        assert outcomes(db) == [("json://h/", "failed"), ("json://h/", "sent")]
        with db.write() as s:
            s.execute(insert(DeliveryAttempt).values(delivery_id=1, at=now, channel="c", ok=False,
                                                     outcome="uncertain"))
        assert outcomes(db)[-1] == ("c", "uncertain")
    finally:
        db.dispose()
