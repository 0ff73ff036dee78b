"""A signed address's key holds no signature: the same page signed anew is the same item, not a duplicate
(real crawls of a local site), and migration 0015 rewrites the keys stored before (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from helpers import items_json, write_config
from localsite import Site
from test_links import _alembic
from test_secret_urls import article, config_for, crawl, publish, site  # noqa: F401  (site: the fixture)

from pipelines.db import Database, make_engine
from pipelines.models import Item, UrlState

SIG1, SIG2 = "S1gnatur3First", "S1gnatur3Second"


def test_a_page_signed_anew_is_the_same_item(site: Site, database_url: str, tmp_path: Path) -> None:  # noqa: F811
    first = f"/files/notice?id=7&Expires=1893456000&Signature={SIG1}"
    second = f"/files/notice?id=7&Expires=1893459600&Signature={SIG2}"
    site.add(first, article("signed"))
    site.add(second, article("signed"))
    publish(site, [first])
    config = config_for(tmp_path, database_url, site)
    crawl(config)
    publish(site, [second])
    proc = crawl(config)
    assert "news: ok: 0 new" in proc.stdout, proc.stdout
    (item,) = items_json(config)
    assert item["url"] == site.url(first)


def test_revisits_go_to_the_address_the_source_lists_now(site: Site, sqlite_url: str,  # noqa: F811
                                                         tmp_path: Path) -> None:
    """Stored at its first signed address; the feed re-signs it and the old address expires (403). A revisit
    at the new address answers 304: from then on revisits (the feed unchanged) go there, never to the old one."""
    first = f"/files/notice?id=7&Expires=1893456000&Signature={SIG1}"
    second = f"/files/notice?id=7&Expires=1893459600&Signature={SIG2}"
    site.add(first, article("signed"))
    publish(site, [first])
    config = write_config(tmp_path / "c.yaml", {
        "database": sqlite_url,
        "crawl": {"download_delay": 0, "extract_workers": 1, "retries": 0, "revisit_every": "0s"},
        "sources": [{"name": "news", "kind": "feed", "url": site.url("/feed"), "every": "1h"}],
    })
    crawl(config)
    site.add(first, "<html><body>Request has expired</body></html>", status=403)
    site.add(second, article("signed"))
    publish(site, [second])
    site.reset_counts()
    crawl(config)  # the feed changed: the page is asked for where it lists it now
    assert site.served("/files/notice", 304) == 1 and site.served("/files/notice", 403) == 0
    site.reset_counts()
    proc = crawl(config)  # the feed unchanged: a revisit of what it lists
    assert site.served("/feed", 304) == 1, proc.stdout
    assert site.served("/files/notice", 304) == 1 and site.served("/files/notice", 403) == 0, proc.stdout
    assert len(items_json(config)) == 1
    assert "news: ok: 0 new, 0 updated, 1 unchanged" in proc.stdout, proc.stdout


def test_migration_0015_rewrites_signed_keys_and_leaves_the_others(database_url: str) -> None:
    _alembic(database_url, "0014_workers")
    now = datetime.now(UTC)
    common = {"source": "s", "title": "t", "text": "x", "first_seen": now, "updated": now, "content_hash": "h",
              "doj_topics": [], "doj_components": [], "revision_count": 0, "authority": 2}
    signed = "https://cdn.example.org/n.pdf?Expires={}&Signature={}&id=2"
    keys = [
        "https://example.org/a?expires=2026&page=2",  # no signature: an ordinary parameter, untouched
        signed.format(1, SIG1),  # the page, stored under its first signature
        signed.format(2, SIG2),  # and again under its second: the duplicate keeps its key
        "https://cdn.example.org/other.pdf?X-Amz-Date=1&X-Amz-Signature=abc",
    ]
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            items = sa.Table("items", sa.MetaData(), autoload_with=conn)
            conn.execute(items.insert(), [{**common, "key": k, "url": k, "link": k if n == 3 else None}
                                          for n, k in enumerate(keys)])
            states = sa.Table("url_states", sa.MetaData(), autoload_with=conn)
            conn.execute(states.insert(), [
                {"url": "https://cdn.example.org/f.pdf?Expires=***&Signature=***", "source": "s",
                 "status": "failed", "attempts": 1, "first_seen": now, "last_attempt": now, "detail": ""},
                {"url": "https://example.org/b?expires=1", "source": "s", "status": "failed", "attempts": 1,
                 "first_seen": now, "last_attempt": now, "detail": ""},
            ])
    finally:
        engine.dispose()

    db = Database(database_url)  # brings it to head, as every command does
    try:
        with db.read() as s:
            got = [(i.key, i.link) for i in s.scalars(sa.select(Item).order_by(Item.id))]
            urls = set(s.scalars(sa.select(UrlState.url)))
    finally:
        db.dispose()
    assert got == [
        ("https://example.org/a?expires=2026&page=2", None),
        ("https://cdn.example.org/n.pdf?id=2", None),
        (signed.format(2, SIG2), None),
        ("https://cdn.example.org/other.pdf", "https://cdn.example.org/other.pdf"),
    ]
    assert urls == {"https://cdn.example.org/f.pdf", "https://example.org/b?expires=1"}
