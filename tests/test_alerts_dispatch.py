"""The dispatcher end to end: outbox events → deliveries → a real SMTP server and a real webhook.

Every test runs on SQLite and on PostgreSQL (the ``db`` fixture). Times are passed explicitly (``now=``), so
backoff and digest windows are exercised without waiting.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from alert_support import SmtpSink, Webhook, seed_health, seed_item, seed_update, watcher
from sqlalchemy import select, update

from alerts.config import AlertSettings
from alerts.dispatch import deliver, dispatch, plan
from pipelines.db import Database
from pipelines.models import AlertEvent, Delivery, DeliveryAttempt
from pipelines.timeutil import utcnow

# apprise 2.2 imports the stdlib `imghdr` module (deprecated in 3.11, gone in 3.13) when it loads its e-mail
# plugin; that is apprise's business, not ours, so exactly that warning is ignored here.
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")


def deliveries(db: Database) -> list[Delivery]:
    with db.read() as s:
        return list(s.scalars(select(Delivery).order_by(Delivery.id)))


def attempts(db: Database) -> list[DeliveryAttempt]:
    with db.read() as s:
        return list(s.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)))


def per_path(hook: Webhook) -> Counter[str]:
    return Counter(r.path for r in hook.received)


# -- who is told what ---------------------------------------------------------------------------------------------


def test_two_rounds_of_new_items_exact_counts(db: Database, hook: Webhook, smtp: SmtpSink) -> None:
    ws = [
        watcher("all", hook.url("/all")),
        watcher("tda", [hook.url("/tda"), smtp.url("tda@example.org")], topics=["tda"]),
        watcher("fentanyl", hook.url("/fentanyl"), topics=["fentanyl"]),
    ]
    seed_item(db, title="TdA members charged", topics=["tda"])
    seed_item(db, title="TdA leader extradited", topics=["tda", "agreement"])
    seed_item(db, title="Fentanyl pills seized", topics=["fentanyl"])
    report = dispatch(db, ws)
    assert (report.planned, report.sent, report.messages, report.failed) == (6, 6, 8, 0)
    assert per_path(hook) == {"/all": 3, "/tda": 2, "/fentanyl": 1}
    assert sorted(m["Subject"] for m in smtp.messages) == [
        "[borderwatch] Tren de Aragua: TdA leader extradited",
        "[borderwatch] Tren de Aragua: TdA members charged",
    ]
    assert smtp.messages[0]["To"] == "tda@example.org"
    assert "TdA" in SmtpSink.html_of(smtp.messages[0])

    seed_item(db, title="Rifles bound for Mexico", topics=["firearms"])
    seed_item(db, title="Fentanyl and TdA", topics=["fentanyl", "tda"])
    report = dispatch(db, ws)
    assert (report.planned, report.sent) == (4, 4)
    assert per_path(hook) == {"/all": 5, "/tda": 3, "/fentanyl": 2}
    assert len(smtp.messages) == 3
    # nothing left, nothing repeated
    assert dispatch(db, ws).sent == 0
    assert per_path(hook) == {"/all": 5, "/tda": 3, "/fentanyl": 2}
    assert {d.state for d in deliveries(db)} == {"sent"}


def test_a_reprint_of_an_alerted_story_sends_nothing(db: Database, hook: Webhook) -> None:
    ws = [watcher("desk", hook.url())]
    _, story = seed_item(db, title="DOJ: TdA members charged", source="doj-api")
    assert dispatch(db, ws).sent == 1
    seed_item(db, title="USAO copy: TdA members charged", source="usao-mdtn", story=story)
    seed_item(db, title="AP: TdA members charged", source="ap", story=story)
    report = dispatch(db, ws)
    assert (report.planned, report.sent) == (0, 0)
    assert hook.titles() == ["[borderwatch] Tren de Aragua: DOJ: TdA members charged"]
    with db.read() as s:
        assert s.scalar(select(AlertEvent).where(AlertEvent.dispatched.is_(False))) is None


def test_copies_in_one_batch_make_one_alert_that_lists_the_others(db: Database, hook: Webhook) -> None:
    ws = [watcher("desk", hook.url())]
    _, story = seed_item(db, title="DOJ: TdA members charged", source="doj-api")
    seed_item(db, title="AP: Venezuelan gang charged", source="ap", story=story)
    assert dispatch(db, ws).sent == 1
    [received] = hook.received
    assert received.payload["title"] == "[borderwatch] Tren de Aragua: DOJ: TdA members charged"
    assert "Also carried by:\n- ap: AP: Venezuelan gang charged" in received.payload["message"]


def test_update_alerts_only_watchers_who_were_told_and_want_updates(db: Database, hook: Webhook) -> None:
    ws = [
        watcher("updates", hook.url("/updates")),
        watcher("no-updates", hook.url("/quiet"), updates=False),
        watcher("late", hook.url("/late"), topics=["firearms"]),
    ]
    item, _ = seed_item(db, title="TdA members charged", topics=["tda"])
    dispatch(db, ws)
    assert per_path(hook) == {"/updates": 1, "/quiet": 1}
    revision = seed_update(db, item, "a ninth defendant added")
    report = dispatch(db, ws)
    assert (report.planned, report.sent) == (1, 1)
    assert per_path(hook) == {"/updates": 2, "/quiet": 1}
    update_msg = hook.received[-1].payload
    assert update_msg["title"] == "[borderwatch] Updated: Tren de Aragua: TdA members charged"
    assert update_msg["message"].startswith("Updated: a ninth defendant added")
    keys = {d.dedup_key for d in deliveries(db) if d.watcher == "updates"}
    assert f"update:item:{item}:rev:{revision}" in keys
    # the same revision event seen twice (a re-run of the store) is still one alert
    with db.write() as s:
        s.execute(update(AlertEvent).values(dispatched=False))
    assert dispatch(db, ws).planned == 0


def test_update_of_an_item_nobody_was_told_about_is_new_when_it_now_matches(db: Database, hook: Webhook) -> None:
    ws = [watcher("firearms", hook.url(), topics=["firearms"])]
    item, story = seed_item(db, title="Gun store burglary", topics=["tda"])
    assert dispatch(db, ws).sent == 0
    with db.write() as s:  # the classifier now sees firearms trafficking in the corrected text
        from pipelines.models import ItemTopic

        s.add(ItemTopic(item_id=item, topic="firearms", score=0.8, evidence=[], classified_at=utcnow()))
    seed_update(db, item, "the release now names the buyers")
    assert dispatch(db, ws).sent == 1
    assert hook.titles() == ["[borderwatch] Firearms trafficking: Gun store burglary"]
    assert [d.dedup_key for d in deliveries(db)] == [f"new:story:{story}"]


def test_topic_and_source_filters(db: Database, hook: Webhook) -> None:
    ws = [
        watcher("mx-firearms", hook.url("/mx"), topics=["firearms"], sources=["sspc", "doj-api"]),
        watcher("rcmp-all", hook.url("/rcmp"), sources=["rcmp"]),
    ]
    seed_item(db, title="a", topics=["firearms"], source="sspc")
    seed_item(db, title="b", topics=["firearms"], source="rcmp")
    seed_item(db, title="c", topics=["fentanyl"], source="rcmp")
    seed_item(db, title="d", topics=["fentanyl"], source="doj-api")
    seed_item(db, title="e", topics={}, source="rcmp", event=False)  # no topic: the store writes no event
    dispatch(db, ws)
    assert sorted(r.payload["title"][-1] for r in hook.received if r.path == "/mx") == ["a"]
    assert sorted(r.payload["title"][-1] for r in hook.received if r.path == "/rcmp") == ["b", "c"]


def test_max_age_keeps_old_items_quiet(db: Database, hook: Webhook) -> None:
    now = utcnow()
    ws = [watcher("week", hook.url("/week")), watcher("day", hook.url("/day"), max_age="1d")]
    seed_item(db, title="backfill", published=now - timedelta(days=30))
    seed_item(db, title="three days", published=now - timedelta(days=3))
    seed_item(db, title="fresh", published=now - timedelta(hours=2))
    seed_item(db, title="undated", undated=True)  # first_seen (now) stands in for the date
    dispatch(db, ws, now=now)
    assert sorted(t.split(": ", 1)[1] for t in hook.titles("/week")) == ["fresh", "three days", "undated"]
    assert sorted(t.split(": ", 1)[1] for t in hook.titles("/day")) == ["fresh", "undated"]


def test_health_and_recovery_go_to_admins_only(db: Database, hook: Webhook) -> None:
    ws = [
        watcher("desk", hook.url("/desk")),
        watcher("ops", hook.url("/ops"), admin=True, mode="digest", every="1d"),
        watcher("mx-ops", hook.url("/mx-ops"), admin=True, sources=["sspc"]),
    ]
    seed_health(db, "doj-news", "health", "failing: 3 passes in a row", "HTTP 503")
    seed_health(db, "doj-news", "recovery", "works again")
    report = dispatch(db, ws)
    assert report.sent == 2
    assert hook.titles("/ops") == [
        "[borderwatch] Source problem: doj-news: failing: 3 passes in a row",
        "[borderwatch] Source recovered: doj-news: works again",
    ]
    assert hook.titles("/desk") == [] and hook.titles("/mx-ops") == []
    assert hook.received[0].payload["message"].startswith("doj-news: failing: 3 passes in a row\nHTTP 503\n")


# -- nothing lost when a channel is down ---------------------------------------------------------------------------


def test_webhook_down_for_a_while_then_every_alert_arrives_once(db: Database, hook: Webhook) -> None:
    t0 = utcnow()
    ws = [watcher("desk", hook.url("/hook", user="desk", password="hunter2secret"))]
    seed_item(db, title="first", now=t0)
    seed_item(db, title="second", now=t0)
    hook.fail_next(3)
    r1 = deliver(db, ws, now=t0) if plan(db, ws, now=t0) else None
    assert r1 is not None and (r1.sent, r1.retrying) == (0, 2)
    assert {d.next_attempt for d in deliveries(db)} != {None}
    # not yet due: nothing is tried before the backoff has passed
    assert deliver(db, ws, now=t0 + timedelta(seconds=10)).retrying == 0 and hook.refused == 2
    r2 = deliver(db, ws, now=t0 + timedelta(seconds=31))
    assert (r2.sent, r2.retrying) == (1, 1)  # the 503 budget runs out half-way
    r3 = deliver(db, ws, now=t0 + timedelta(seconds=31 + 61))
    assert (r3.sent, r3.retrying) == (1, 0)
    assert sorted(hook.titles()) == ["[borderwatch] Tren de Aragua: first", "[borderwatch] Tren de Aragua: second"]
    assert hook.refused == 3
    assert all(r.authorization and r.authorization.startswith("Basic ") for r in hook.received)
    rows = attempts(db)
    assert [a.ok for a in rows if a.delivery_id == rows[0].delivery_id] == [False, False, True]
    assert sum(a.ok for a in rows) == 2 and len(rows) == 5
    for a in rows:
        assert "hunter2secret" not in a.channel and "hunter2secret" not in (a.error or "")
        assert a.channel.startswith("json://desk:")
    assert all(a.error and "503" in a.error for a in rows if not a.ok)
    for d in deliveries(db):
        assert d.state == "sent" and "hunter2secret" not in (d.last_error or "")


def test_several_urls_retry_only_the_failed_one(db: Database, hook: Webhook, smtp: SmtpSink) -> None:
    t0 = utcnow()
    ws = [watcher("desk", [smtp.url(), hook.url()])]
    seed_item(db, title="TdA members charged", now=t0)
    hook.fail_next(1)
    report = dispatch(db, ws, now=t0)
    assert (report.sent, report.retrying, report.messages) == (0, 1, 1)
    [d] = deliveries(db)
    assert d.state == "pending" and d.attempts == 1
    report = deliver(db, ws, now=t0 + timedelta(minutes=1))
    assert (report.sent, report.messages) == (1, 1)
    assert len(smtp.messages) == 1 and len(hook.received) == 1  # the mail went once
    assert [(a.channel.split(":")[0], a.ok) for a in attempts(db)] == [
        ("mailto", True), ("json", False), ("json", True)
    ]


def test_past_the_retry_limit_a_delivery_is_failed_and_kept(db: Database, hook: Webhook) -> None:
    t0 = utcnow()
    settings = AlertSettings.model_validate({"max_attempts": 3, "backoff": "10s"})
    ws = [watcher("desk", hook.url())]
    seed_item(db, title="TdA members charged", now=t0)
    hook.fail_next(100)
    plan(db, ws, now=t0)
    outcomes = [deliver(db, ws, now=t0 + timedelta(minutes=m), settings=settings) for m in (0, 1, 2)]
    assert [(r.retrying, r.failed) for r in outcomes] == [(1, 0), (1, 0), (0, 1)]
    [d] = deliveries(db)
    assert (d.state, d.attempts, d.next_attempt) == ("failed", 3, None)
    assert "503" in (d.last_error or "")
    # an ordinary run leaves it alone; a forced one (`alerts send`) delivers it once the channel is back
    assert deliver(db, ws, now=t0 + timedelta(hours=1), settings=settings).failed == 0
    assert len(attempts(db)) == 3
    hook.fail_next(0)
    report = deliver(db, ws, settings=settings, force=True)
    assert report.sent == 1 and hook.titles() == ["[borderwatch] Tren de Aragua: TdA members charged"]


def test_time_budget_leaves_the_rest_for_later(db: Database, hook: Webhook) -> None:
    hook.delay = 0.3
    ws = [watcher("desk", hook.url())]
    for i in range(6):
        seed_item(db, title=f"story {i}")
    report = dispatch(db, ws, budget=0.5)
    assert 1 <= report.sent <= 3 and report.deferred == 6 - report.sent
    assert report.elapsed < 2.0
    hook.delay = 0.0
    assert deliver(db, ws).sent == 6 - report.sent
    assert len(hook.received) == 6


# -- digests ----------------------------------------------------------------------------------------------------


def test_digest_waits_for_its_window_then_sends_one_grouped_message(db: Database, hook: Webhook) -> None:
    t0 = utcnow()
    ws = [watcher("morning", hook.url(), mode="digest", every="1h", topics=["tda", "fentanyl"])]
    seed_item(db, title="TdA members charged", topics=["tda"], now=t0)
    seed_item(db, title="TdA leader extradited", topics=["tda"], now=t0)
    seed_item(db, title="Fentanyl pills seized", topics=["fentanyl"], now=t0)
    assert dispatch(db, ws, now=t0).sent == 0
    assert {(d.state, d.digest) for d in deliveries(db)} == {("pending", True)}
    assert dispatch(db, ws, now=t0 + timedelta(minutes=59)).sent == 0
    assert hook.received == []
    report = dispatch(db, ws, now=t0 + timedelta(minutes=61))
    assert (report.sent, report.messages) == (3, 1)
    [digest] = hook.received
    assert digest.payload["title"] == "[borderwatch] Digest: 3 new stories (Tren de Aragua 2, Fentanyl 1)"
    body = digest.payload["message"]
    assert body.index("== Tren de Aragua (2) ==") < body.index("TdA leader extradited") < body.index(
        "== Fentanyl (1) =="
    )
    assert len({d.sent_at for d in deliveries(db)}) == 1
    # the next window counts from this digest
    seed_item(db, title="TdA in Chile", topics=["tda"], now=t0 + timedelta(minutes=70))
    assert dispatch(db, ws, now=t0 + timedelta(minutes=90)).sent == 0
    report = dispatch(db, ws, now=t0 + timedelta(minutes=122))
    assert (report.sent, report.messages) == (1, 1)
    assert hook.received[-1].payload["title"] == "[borderwatch] Digest: 1 new story (Tren de Aragua 1)"


def test_a_failed_digest_is_retried_whole(db: Database, hook: Webhook) -> None:
    t0 = utcnow()
    ws = [watcher("daily", hook.url(), mode="digest", every="1h")]
    for i in range(3):
        seed_item(db, title=f"story {i}", now=t0)
    dispatch(db, ws, now=t0)
    hook.fail_next(1)
    report = deliver(db, ws, now=t0 + timedelta(hours=1))
    assert (report.sent, report.retrying) == (0, 3)
    report = deliver(db, ws, now=t0 + timedelta(hours=1, seconds=31))
    assert (report.sent, report.messages) == (3, 1)
    assert len(hook.received) == 1


# -- two dispatchers at once --------------------------------------------------------------------------------------


def test_two_planners_racing_make_each_delivery_once(db: Database) -> None:
    ws = [watcher(f"w{i}", "json://127.0.0.1:9/hook") for i in range(4)]
    for i in range(120):
        seed_item(db, title=f"story {i}")
    other = Database(db.url, create=False)
    counts: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(database: Database) -> None:
        try:
            barrier.wait()
            counts.append(plan(database, ws))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in (db, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert errors == []
    assert sum(counts) == 480
    rows = deliveries(db)
    assert len(rows) == 480 and len({(d.watcher, d.dedup_key) for d in rows}) == 480
    # and planning the same events again (a crash before they were marked) adds nothing
    with db.write() as s:
        s.execute(update(AlertEvent).values(dispatched=False))
    assert plan(db, ws) == 0
