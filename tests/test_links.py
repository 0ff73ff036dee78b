"""Links people see open: an item's ``url`` is a real address, its dedup key is kept apart (issue 9).

A crawl of a plain-``http`` local site with an e-mail and a webhook watcher: every stored ``url`` and
every URL in every alert is fetched and answers 200. A page's same-site ``<link rel="canonical">`` is
its address, a cross-site one is ignored, tracking parameters are gone; the key still merges variants.
Migration 0002 moves the key of a database made at 0001 into ``items.key`` (SQLite and PostgreSQL).
"""

from __future__ import annotations

import html
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alert_support import SmtpSink, Webhook
from helpers import bw, bw_here, items_json, write_config
from localsite import Site, justice_page, rss, serve

from crawler.passes.context import PassContext
from pipelines.classify import Classifier
from pipelines.db import MIGRATIONS, Database, make_engine
from pipelines.items import Article
from pipelines.models import Item
from pipelines.store import Store
from pipelines.tally import Tally

NOW = time.time()
FENTANYL = [
    "A Texas man was sentenced today to 20 years in prison for distributing fentanyl that caused the "
    "fatal overdose of a 19-year-old in Austin.",
    "According to court documents, the defendant sold counterfeit oxycodone pills containing fentanyl.",
    "The DEA Austin Resident Office investigated the case.",
]
_URL = re.compile(r"https?://[^\s\"'<>()\[\]]+")


def _rfc822(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _with_canonical(page: str, href: str) -> str:
    return page.replace("</head>", f'<link rel="canonical" href="{html.escape(href)}"></head>', 1)


def _page(n: int, city: str) -> str:
    """A distinct fentanyl release (a story of its own), so each page gets its own alert."""
    paragraphs = [p.replace("Austin", city).replace("20 years", f"{10 + n} years") for p in FENTANYL]
    return justice_page(f"{city} Man Sentenced for Fentanyl Distribution ({n})", paragraphs)


@pytest.fixture
def site() -> Iterator[Site]:
    with serve(Site()) as running:
        yield running


def build(site: Site) -> None:
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    # Plain page reached through a tracking link: the address keeps `id`, loses `utm_*`.
    site.add("/pr/plain", _page(1, "Austin"))
    # A same-site canonical (absolute, with tracking, and a `www.`-less twin of our host is not needed).
    site.add("/pr/alias", _with_canonical(_page(2, "Dallas"), site.url("/pr/canonical-home?utm_medium=x")))
    site.add("/pr/canonical-home", _page(2, "Dallas"))
    # A relative canonical resolves against the page.
    site.add("/pr/relative", _with_canonical(_page(3, "Houston"), "/pr/relative-home"))
    site.add("/pr/relative-home", _page(3, "Houston"))
    # A cross-site canonical (a syndicated copy naming another site) is ignored.
    site.add("/pr/cross", _with_canonical(_page(4, "El Paso"), "https://other.example/story/4"))
    # A trailing slash and a redirect: kept as the server has them.
    site.add("/pr/folder/", _page(5, "Laredo"))
    site.add("/old/moved", "", redirect=site.url("/pr/moved"))
    site.add("/pr/moved", _page(6, "McAllen"))
    # The same release reached through two variants of one link: one item.
    site.add("/pr/twin", _page(7, "Brownsville"))
    # One story carried twice (a release and its mirror): the alert lists the copy ("also carried by").
    site.add("/pr/story", _page(8, "Eagle Pass"))
    site.add("/mirror/story/", _page(8, "Eagle Pass"))
    entries = [
        ("Austin", "/pr/plain?utm_source=rss&id=7&fbclid=abc"),
        ("Dallas", "/pr/alias"),
        ("Houston", "/pr/relative"),
        ("El Paso", "/pr/cross"),
        ("Laredo", "/pr/folder/"),
        ("McAllen", "/old/moved"),
        ("Brownsville", "/pr/twin?utm_campaign=a"),
        ("Brownsville again", "/pr/twin/"),
        ("Eagle Pass", "/pr/story"),
        ("Eagle Pass mirror", "/mirror/story/?ocid=feed"),
    ]
    site.add("/news/rss", rss([
        {"title": f"{city} release", "link": site.url(path), "pubDate": _rfc822(NOW - 3600)}
        for city, path in entries
    ]), content_type="application/rss+xml")


def _opens(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return int(resp.status)


def _urls(text: str) -> list[str]:
    return [u.rstrip(".,;:") for u in _URL.findall(html.unescape(text))]


def _parts(message: EmailMessage) -> list[str]:
    return [str(part.get_content()) for part in message.walk() if part.get_content_maintype() == "text"]


def test_crawl_of_an_http_site_stores_and_alerts_addresses_that_open(site: Site, sqlite_url: str,
                                                                     tmp_path: Path) -> None:
    build(site)
    with SmtpSink() as smtp, Webhook() as hook:
        config = write_config(tmp_path / "bw.yaml", {
            "database": sqlite_url,
            "crawl": {"download_delay": 0, "extract_workers": 1, "timeout": 10},
            "sources": [{"name": "news", "kind": "feed", "url": site.url("/news/rss"), "since": "30d"}],
            "watchers": [
                {"name": "mail", "notify": [smtp.url()], "topics": ["fentanyl"]},
                {"name": "hook", "notify": [hook.url()], "topics": ["fentanyl"]},
            ],
        })
        proc = bw(config, "crawl")
        assert proc.returncode == 0, proc.stderr
        items = items_json(config)
        hook.wait_for(8)
        deadline = time.monotonic() + 10
        while len(smtp.messages) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)

        # What is stored and shown: real addresses of this http site, tracking gone, nothing else rewritten.
        urls = sorted(i["url"] for i in items)
        base = site.url("")
        assert urls == sorted([
            f"{base}/pr/plain?id=7", f"{base}/pr/canonical-home", f"{base}/pr/relative-home",
            f"{base}/pr/cross", f"{base}/pr/folder/", f"{base}/pr/moved", f"{base}/pr/twin",
            f"{base}/pr/story", f"{base}/mirror/story/",
        ]), urls
        for url in urls:
            assert _opens(url) == 200, url
        # The key is kept apart, for deduplication only (https, no trailing slash: it need not open).
        keys = {i["url"]: i["key"] for i in items}
        assert keys[f"{base}/pr/folder/"] == f"https://127.0.0.1:{urlsplit(base).port}/pr/folder"
        assert keys[f"{base}/pr/canonical-home"].endswith("/pr/alias")

        # Every URL in every alert opens: webhook bodies and both parts of every e-mail (one alert per
        # story: the mirror is listed in its story's alert as a copy, with its own real address).
        story = {i["story"] for i in items if i["url"].endswith("story") or i["url"].endswith("story/")}
        assert len(story) == 1
        assert len(hook.received) == 8 and len(smtp.messages) == 8
        seen: Counter[str] = Counter()
        for r in hook.received:
            for url in _urls(str(r.payload.get("message", ""))):
                seen[url] += 1
        for message in smtp.messages:
            for part in _parts(message):
                for url in _urls(part):
                    seen[url] += 1
        assert set(urls) <= set(seen), set(urls) - set(seen)
        for url in seen:
            assert _opens(url) == 200, url
        assert not any(u.startswith("https://") for u in seen), seen


def test_show_and_csv_print_the_real_address(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    """`show` prints the real address; `items --format csv` carries it too; feed-only items too."""
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    site.add("/pr/one/", _page(1, "Austin"))
    site.add("/news/rss", rss([{"title": "one", "link": site.url("/pr/one/?utm_source=x"),
                                "pubDate": _rfc822(NOW - 3600)}]), content_type="application/rss+xml")
    # A feed whose pages are not fetched: the entry's own link, tracking removed.
    site.add("/pr/two/", _page(2, "Dallas"))
    site.add("/news/summaries", rss([{"title": "two", "link": site.url("/pr/two/?id=2&utm_source=x"),
                                      "description": "A summary of the second release about fentanyl.",
                                      "pubDate": _rfc822(NOW - 3600)}]), content_type="application/rss+xml")
    config = write_config(tmp_path / "bw.yaml", {
        "database": sqlite_url, "crawl": {"download_delay": 0, "extract_workers": 1},
        "sources": [{"name": "news", "kind": "feed", "url": site.url("/news/rss"), "since": "30d"},
                    {"name": "summaries", "kind": "feed", "url": site.url("/news/summaries"), "since": "30d",
                     "fetch_pages": False}],
    })
    assert bw(config, "crawl", "--no-alerts").returncode == 0
    item, summary = sorted(items_json(config), key=lambda i: str(i["source"]))
    assert summary["url"] == site.url("/pr/two/?id=2") and _opens(summary["url"]) == 200
    assert item["url"] == site.url("/pr/one/")
    shown = bw_here(config, "show", str(item["id"]))
    assert site.url("/pr/one/") in shown.stdout and "https://127.0.0.1" not in shown.stdout
    csv = bw_here(config, "items", "--format", "csv")
    assert site.url("/pr/one/") in csv.stdout


# -- the store: variants of one link are one item, the address is what the spider saw -----------------------
def test_link_variants_still_merge_into_one_item(db: Database) -> None:
    store = Store(db, Classifier.from_file(None))
    counts = Tally()
    text = "A county fair opened with a parade on Main Street."
    store.save([Article(url="http://example.org/a?utm_source=y", source="s", title="Fair", text=text)], counts)
    store.save([Article(url="https://www.example.org/a/", source="s", title="Fair", text=text)], counts)
    with db.read() as s:
        rows = list(s.scalars(sa.select(Item)))
    assert len(rows) == 1 and counts["new"] == 1 and counts["unchanged"] == 1
    assert rows[0].key == "https://example.org/a"
    # The address is the one the article came with (the spider strips tracking before the store).
    assert rows[0].url.startswith("http")


# -- migration 0002 -------------------------------------------------------------------------------------------
def _alembic(url: str, target: str) -> None:
    engine = make_engine(url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
    finally:
        engine.dispose()


def test_migration_0002_moves_the_key_and_sets_real_addresses(database_url: str) -> None:
    _alembic(database_url, "0001")
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    common = {"source": "s", "title": "t", "text": "x", "first_seen": now, "updated": now, "content_hash": "h",
              "doj_topics": [], "doj_components": [], "revision_count": 0, "authority": 2}
    rows = [
        # a page fetched over http, reached with tracking parameters
        {"url": "https://127.0.0.1:8080/pr/a", "final_url": "http://127.0.0.1:8080/pr/a/?utm_source=x&id=2"},
        # a DOJ API record: its own URL, www. and all
        {"url": "https://justice.gov/opa/pr/b", "final_url": "https://www.justice.gov/opa/pr/b"},
        # no final URL: the old value stays
        {"url": "https://example.org/c", "final_url": None},
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
            got = {(i.key, i.url) for i in s.scalars(sa.select(Item))}
        assert got == {
            ("https://127.0.0.1:8080/pr/a", "http://127.0.0.1:8080/pr/a/?id=2"),
            ("https://justice.gov/opa/pr/b", "https://www.justice.gov/opa/pr/b"),
            ("https://example.org/c", "https://example.org/c"),
        }
        # The key is unique (dedup); the address need not be.
        with pytest.raises(sa.exc.IntegrityError), db.write() as s:
            s.add(Item(key="https://example.org/c", url="https://example.org/other", **{
                k: v for k, v in common.items() if k not in ("doj_topics", "doj_components")}))
        with db.write() as s:
            s.add(Item(key="https://example.org/d", url="https://example.org/c", **{
                k: v for k, v in common.items() if k not in ("doj_topics", "doj_components")}))
    finally:
        db.dispose()


def test_a_revisit_fetches_the_real_address_never_the_key(db: Database) -> None:
    """A stored page due a conditional revisit is fetched where it opens, even without a final URL."""
    now = datetime.now(UTC)
    with db.write() as s:
        s.add(Item(key="https://127.0.0.1:8080/pr/x", url="http://127.0.0.1:8080/pr/x/", final_url=None,
                   source="news", title="t", text="x", first_seen=now - timedelta(hours=3),
                   updated=now, content_hash="h", last_checked=now - timedelta(hours=2)))
    store = Store(db, Classifier.from_file(None))
    ctx = PassContext(source="news", now=now, since=now - timedelta(days=30), revisit=timedelta(days=3),
                      first_pass=False, known=store.load_known())
    assert "https://127.0.0.1:8080/pr/x" in ctx.known  # the seen-check still looks up the key
    assert ctx.due_revisits("news") == ["http://127.0.0.1:8080/pr/x/"]
