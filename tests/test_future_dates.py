"""Publication dates in the future (issue 10): year 9999, or days ahead of the first fetch.

The rule (``pipelines.timeutil.trusted_published``): a publication date more than a day after the page
was first fetched is not trusted. The store keeps ``published`` empty for it and counts it in the pass
(``future_date``); items are then ordered, filtered and judged fresh for alerts by ``first_seen``, like
undated items. Runs on SQLite and PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alert_support import Webhook, seed_item, watcher
from sqlalchemy import select

from alerts.dispatch import dispatch
from crawler.read.query import ItemQuery, query_items
from pipelines.classify import Classifier
from pipelines.db import Database
from pipelines.items import Article
from pipelines.models import Item
from pipelines.store import Store
from pipelines.tally import Tally
from pipelines.timeutil import trusted_published, utcnow

pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

SEEN = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
FAR = datetime(9999, 12, 31, tzinfo=UTC)
TDA = ("Eight members of the Tren de Aragua gang were charged today in Nashville with sex trafficking "
       "and extortion of Venezuelan migrants.")


@pytest.mark.parametrize(
    ("published", "trusted"),
    [
        (None, False),
        (SEEN - timedelta(days=400), True),  # an old release found by a backfill
        (SEEN, True),
        (SEEN + timedelta(hours=23), True),  # dated in a time zone ahead, or a date without a time
        (SEEN + timedelta(days=1), True),
        (SEEN + timedelta(days=1, seconds=1), False),
        (SEEN + timedelta(days=3), False),  # "days ahead"
        (FAR, False),  # year 9999
        (datetime(9999, 12, 31), False),  # naive (as SQLite returns it): UTC
    ],
)
def test_a_date_more_than_a_day_after_the_first_fetch_is_not_trusted(
        published: datetime | None, trusted: bool) -> None:
    assert trusted_published(published, SEEN) == (published if trusted else None)


def article(url: str, title: str, published: datetime | None) -> Article:
    return Article(url=f"https://example.org/{url}", source="news", title=title, text=f"{title}. {TDA}",
                   published=published)


def test_future_dates_neither_pin_items_to_the_top_nor_keep_them_fresh(db: Database, hook: Webhook) -> None:
    now = utcnow()
    counts = Tally()
    # A month ago the crawler found a page claiming year 9999 and one claiming to be from next week.
    Store(db, Classifier.from_file(None), now=lambda: now - timedelta(days=30)).save([
        article("year-9999", "Year 9999 page", FAR),
        article("next-week", "Next week page", now - timedelta(days=23)),
    ], counts)
    # Today: an ordinary release of yesterday, one dated later today, and another page claiming 9999.
    Store(db, Classifier.from_file(None), now=lambda: now).save([
        article("yesterday", "Yesterday's release", now - timedelta(days=1)),
        article("later-today", "Release dated this evening", now + timedelta(hours=6)),
        article("year-9999-today", "Year 9999 page found today", FAR),
    ], counts)
    assert counts["new"] == 5 and counts["future_date"] == 3

    with db.read() as s:
        published = {i.title: i.published for i in s.scalars(select(Item))}
    assert published["Year 9999 page"] is None and published["Next week page"] is None
    assert published["Year 9999 page found today"] is None
    assert published["Release dated this evening"] is not None  # within a day: kept as given

    # Newest first, by the trusted date (else first_seen): the month-old pages at the bottom.
    order = [i["title"] for i in query_items(db, ItemQuery(limit=10))]
    assert order[:3] == ["Release dated this evening", "Year 9999 page found today", "Yesterday's release"]
    assert set(order[3:]) == {"Year 9999 page", "Next week page"}
    assert [i["title"] for i in query_items(db, ItemQuery(since=now + timedelta(days=2)))] == []

    # A week's watcher hears of today's items only: the month-old ones are not "fresh" for ever.
    dispatch(db, [watcher("desk", hook.url(), max_age="7d")], now=now)
    told = sorted(t.split(": ", 1)[1] for t in hook.titles())
    assert told == ["Release dated this evening", "Year 9999 page found today", "Yesterday's release"]


def test_items_stored_with_a_future_date_before_the_rule_are_not_fresh_for_ever(db: Database, hook: Webhook) -> None:
    now = utcnow()
    seed_item(db, title="stored long ago, dated 9999", published=FAR, now=now - timedelta(days=30))
    seed_item(db, title="fresh", published=now - timedelta(hours=2), now=now)
    dispatch(db, [watcher("desk", hook.url(), max_age="7d")], now=now)
    assert [t.split(": ", 1)[1] for t in hook.titles()] == ["fresh"]


def test_migration_0008_clears_future_dates_stored_before_the_rule(database_url: str) -> None:
    """A database whose items were stored with year-9999 dates (before the rule) sorts them by first_seen
    once it is opened: the migration clears the dates no reader can believe."""
    import sqlalchemy as sa
    from test_links import _alembic

    from pipelines.db import make_engine

    _alembic(database_url, "0007")
    engine = make_engine(database_url)
    seen = datetime(2026, 11, 1, tzinfo=UTC)
    common = {"source": "s", "text": "x", "first_seen": seen, "updated": seen, "content_hash": "h",
              "doj_topics": [], "doj_components": [], "revision_count": 0, "authority": 2}
    rows = [
        {"key": "https://example.org/far", "url": "https://example.org/far", "title": "far", "published": FAR},
        {"key": "https://example.org/ahead", "url": "https://example.org/ahead", "title": "ahead",
         "published": seen + timedelta(hours=20)},  # within the day's slack: kept
        {"key": "https://example.org/old", "url": "https://example.org/old", "title": "old",
         "published": seen - timedelta(days=3)},
    ]
    try:
        with engine.begin() as conn:
            items = sa.Table("items", sa.MetaData(), autoload_with=conn)
            conn.execute(items.insert(), [{**common, **r} for r in rows])
    finally:
        engine.dispose()
    db = Database(database_url)  # brings it to head, as every command does
    try:
        with db.read() as s:
            got = {i.title: i.published for i in s.scalars(select(Item))}
        assert got["far"] is None
        assert got["ahead"] is not None and got["old"] is not None
        # "far" now sorts by its first fetch (Nov 1), after "ahead" (Nov 1, 20:00) and before "old" (Oct 29)
        assert [r["title"] for r in query_items(db, ItemQuery(limit=10))] == ["ahead", "far", "old"]
    finally:
        db.dispose()
