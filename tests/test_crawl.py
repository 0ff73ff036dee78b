"""End to end: ``borderwatch crawl`` against a real local site, into SQLite and PostgreSQL.

The site serves what the real sources serve (DOJ API pages in both field formats, an RSS feed, a
listing, a sitemap index, justice.gov-template article pages) and what goes wrong on them (a bot wall,
a 500 that recovers, a redirect, a windows-1252 page, a robots.txt disallow, a huge page, a 404).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from helpers import bw, bw_here, items_json, write_config
from localsite import Site, api_record_2020, api_record_2024, justice_page, rss, serve
from sqlalchemy import select

from pipelines.db import Database
from pipelines.models import Item, Pass, UrlState

NOW = int(time.time())
DAY = 86400
BOT_WALL = (
    '<html><head><meta http-equiv="refresh" content="5; URL=\'/_sec/verify?provider=interstitial\'">'
    '<script src="/_sec/cp_challenge/ak-challenge-4-3.js"></script></head><body><div id="sec-container">'
    '<div id="sec-text-container"><iframe id="sec-cpt-if" class="bm-verify" src="/_sec/cp_challenge/x">'
    "</iframe></div></div></body></html>"
)
FENTANYL = [
    "A Texas man was sentenced today to 20 years in prison for distributing fentanyl that caused the "
    "fatal overdose of a 19-year-old in Austin.",
    "According to court documents, Juan Ortega, 34, sold counterfeit oxycodone pills containing "
    "fentanyl to the victim in March 2025.",
    "The DEA Austin Resident Office investigated the case.",
]


def rfc822(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def build_site(site: Site) -> None:
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    # DOJ API: three 2024-format records and two 2020-format ones (epoch strings, Python-repr lists).
    site.api_path = "/api/v1/press_releases.json"
    site.api_records = [
        api_record_2024(
            "Eight Tren de Aragua Members Charged With Sex Trafficking in Nashville Motels",
            site.url("/opa/pr/tda-nashville"),
            ["Eight members of Tren de Aragua were charged today in Nashville with sex trafficking.",
             "The defendants ran a forced-prostitution ring out of motels along Interstate 24."],
            date=NOW - 2 * DAY, changed=NOW - 2 * DAY, number="26-101",
            topics=["Human Trafficking", "Transnational Organized Crime"], components=["USAO - Tennessee, Middle"],
        ),
        api_record_2024(
            "Straw Purchaser Sentenced for Buying 40 Rifles Bound for Mexico",
            site.url("/usao-sdtx/pr/straw-purchaser"),
            ["A Laredo woman was sentenced for buying 40 AK-47 style rifles for a trafficking ring.",
             "The rifles were smuggled across the border to Nuevo Laredo."],
            date=NOW - 3 * DAY, changed=NOW - 3 * DAY, topics=["Firearms Offenses"],
        ),
        api_record_2024(
            "Old Release Outside the Window", site.url("/opa/pr/old-release"), ["Old news."],
            date=NOW - 90 * DAY, changed=NOW - 90 * DAY,
        ),
        api_record_2020(
            "INTERPOL Washington and NCB Ottawa Sign Memorandum of Cooperation",
            site.url("/interpol-washington/pr/mou-ottawa"),
            ["INTERPOL Washington and NCB Ottawa signed a memorandum of cooperation against Tren de Aragua."],
            date=NOW - 4 * DAY, changed=NOW - 4 * DAY, components=["Interpol Washington"],
        ),
        api_record_2020(
            "Avocado Trade Talks Continue", site.url("/opa/pr/avocado"),
            ["Officials discussed avocado export quotas."], date=NOW - 5 * DAY, changed=NOW - 5 * DAY,
        ),
    ]
    # Article pages in justice.gov's real template.
    site.add("/opa/pr/fentanyl-sentenced", justice_page("Texas Man Sentenced for Fatal Fentanyl Distribution", FENTANYL))
    site.add("/opa/pr/tda-nashville", justice_page("Eight Tren de Aragua Members Charged", ["Copy of the API text."]))
    site.add("/old/redirected", "", redirect="/opa/pr/moved-release")
    site.add("/opa/pr/moved-release", justice_page("A Release That Moved", ["This release was moved to a new address."]))
    site.add("/opa/pr/flaky", justice_page("Release Behind a Flaky Server", ["The server failed twice first."]),
             fail=[500, 500])
    cp1252 = justice_page("Extradición de un líder del cártel", [
        "El ex presidente Peña Nieto y el café de Sinaloa: “comillas” de Windows.",
        "Second paragraph in a windows-1252 page."], charset="windows-1252")
    site.add("/opa/pr/cp1252", cp1252.encode("cp1252"), content_type="text/html; charset=windows-1252")
    site.add("/opa/pr/botwall", BOT_WALL, status=403)
    site.add("/private/secret", justice_page("Secret", ["Robots say no."]))
    site.add("/opa/pr/huge", justice_page("Huge", ["Big."], pad_kb=2 * 1024))
    feed_items = [
        {"title": "Texas Man Sentenced for Fatal Fentanyl Distribution", "link": site.url("/opa/pr/fentanyl-sentenced"),
         "pubDate": rfc822(NOW - DAY)},
        {"title": "Eight Tren de Aragua Members Charged",
         "link": site.url("/opa/pr/tda-nashville") + "?utm_source=rss&utm_medium=feed", "pubDate": rfc822(NOW - 2 * DAY)},
        {"title": "A Release That Moved", "link": site.url("/old/redirected"), "pubDate": rfc822(NOW - DAY)},
        {"title": "Release Behind a Flaky Server", "link": site.url("/opa/pr/flaky"), "pubDate": rfc822(NOW - DAY)},
        {"title": "Extradición de un líder del cártel", "link": site.url("/opa/pr/cp1252"), "pubDate": rfc822(NOW - DAY)},
        {"title": "Blocked", "link": site.url("/opa/pr/botwall"), "pubDate": rfc822(NOW - DAY)},
        {"title": "Private", "link": site.url("/private/secret"), "pubDate": rfc822(NOW - DAY)},
        {"title": "Huge", "link": site.url("/opa/pr/huge"), "pubDate": rfc822(NOW - DAY)},
        {"title": "Gone", "link": site.url("/opa/pr/gone"), "pubDate": rfc822(NOW - DAY)},
        {"title": "An entry without a link", "pubDate": rfc822(NOW - DAY)},
    ]
    site.add("/news/rss", rss(feed_items), content_type="application/rss+xml")
    # A listing of two pages.
    site.add("/listing", '<html><body><ul><li><h3><a href="/news/l1">One</a></h3></li><li><h3><a href="/news/l2">Two</a>'
             '</h3></li></ul><nav><a class="next" href="/listing?page=2">Next</a></nav></body></html>')
    site.add("/listing?page=2", '<html><body><h3><a href="/news/l3">Three</a></h3></body></html>')
    for n in (1, 2, 3):
        site.add(f"/news/l{n}", justice_page(f"Listing Article {n}", [f"Paragraph of listing article number {n}."]))
    # A sitemap index with a news sitemap; one entry older than `since`.
    recent = datetime.fromtimestamp(NOW - DAY, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = datetime.fromtimestamp(NOW - 400 * DAY, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    site.add("/sitemap.xml", '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f'<sitemap><loc>{site.url("/sitemap-news.xml")}</loc><lastmod>{recent}</lastmod></sitemap></sitemapindex>',
             content_type="application/xml")
    site.add("/sitemap-news.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f'<url><loc>{site.url("/news/s1")}</loc><lastmod>{recent}</lastmod></url>'
             f'<url><loc>{site.url("/news/s-old")}</loc><lastmod>{old}</lastmod></url></urlset>',
             content_type="application/xml")
    site.add("/news/s1", justice_page("Sitemap Article", ["Paragraph of the sitemap article."]))
    site.add("/news/s-old", justice_page("Old Sitemap Article", ["Should never be fetched."]))


def site_config(site: Site, database: str, tmp_path: Path) -> Path:
    data: dict[str, Any] = {
        "database": database,
        "crawl": {"download_delay": 0, "max_page_size": 1024 * 1024, "retries": 3, "timeout": 10,
                  "extract_workers": 1},
        "sources": [
            {"name": "doj-api", "kind": "doj_api", "url": site.url("/api/v1/press_releases.json"),
             "since": "30d", "pagesize": 2},
            {"name": "doj-news", "kind": "feed", "url": site.url("/news/rss")},
            {"name": "listing", "kind": "listing", "url": site.url("/listing"), "links": "h3 a",
             "next": "a.next", "max_pages": 2},
            {"name": "sitemap", "kind": "sitemap", "url": site.url("/sitemap.xml"), "since": "30d"},
        ],
    }
    return write_config(tmp_path / "borderwatch.yaml", data)


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        build_site(s)
        yield s


def by_path(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from urllib.parse import urlsplit

    return {urlsplit(i["url"]).path: i for i in items}


def test_crawl_end_to_end(site: Site, database_url: str, tmp_path: Path) -> None:
    config = site_config(site, database_url, tmp_path)
    first = bw(config, "crawl", "--no-alerts")
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr

    items = by_path(items_json(config))
    expected = {
        "/opa/pr/tda-nashville", "/usao-sdtx/pr/straw-purchaser", "/interpol-washington/pr/mou-ottawa",
        "/opa/pr/avocado", "/opa/pr/fentanyl-sentenced", "/opa/pr/moved-release", "/opa/pr/flaky",
        "/opa/pr/cp1252", "/news/l1", "/news/l2", "/news/l3", "/news/s1",
    }
    assert set(items) == expected

    # Contract fields, and text without the page's boilerplate.
    fent = items["/opa/pr/fentanyl-sentenced"]
    for key in ("id", "url", "source", "title", "published", "first_seen", "updated", "topics", "story", "text"):
        assert key in fent
    assert fent["title"] == "Texas Man Sentenced for Fatal Fentanyl Distribution"
    assert fent["text"].splitlines() == FENTANYL
    for boilerplate in ("Related Content", "Share", "Office of Public Affairs", "Justice.gov", "Updated"):
        assert boilerplate not in fent["text"]

    # API: full body, DOJ metadata, both field formats; the feed's copy of an API item is one item.
    tda = items["/opa/pr/tda-nashville"]
    assert tda["source"] == "doj-api"
    assert tda["text"].startswith("Eight members of Tren de Aragua were charged")
    assert tda["doj_number"] == "26-101"
    assert tda["doj_topics"] == ["Human Trafficking", "Transnational Organized Crime"]
    assert items["/interpol-washington/pr/mou-ottawa"]["doj_components"] == ["Interpol Washington"]
    assert items["/interpol-washington/pr/mou-ottawa"]["doj_number"] is None
    assert datetime.fromisoformat(tda["published"]) == datetime.fromtimestamp(NOW - 2 * DAY, UTC)

    # Redirect: the item keeps the final URL. Encoding: windows-1252 decoded.
    assert items["/opa/pr/moved-release"]["final_url"].endswith("/opa/pr/moved-release")
    assert "Peña Nieto" in items["/opa/pr/cp1252"]["text"] and "“comillas”" in items["/opa/pr/cp1252"]["text"]
    assert site.served("/opa/pr/flaky", 500) == 2 and site.served("/opa/pr/flaky", 200) == 1
    assert site.served("/private/secret") == 0
    assert site.served("/news/s-old") == 0

    db = Database(database_url)
    try:
        with db.read() as s:
            states = {u.url.split("/", 3)[3]: u for u in s.scalars(select(UrlState))}
            passes = {p.source: p for p in s.scalars(select(Pass))}
            moved = s.scalar(select(Item).where(Item.url.like("%/opa/pr/moved-release")))
        assert states["opa/pr/botwall"].status == "blocked"
        assert "bot-check" in states["opa/pr/botwall"].detail
        assert states["private/secret"].status == "robots"
        assert states["opa/pr/huge"].status == "too_large"
        assert states["opa/pr/gone"].status == "failed" and "404" in states["opa/pr/gone"].detail
        assert moved is not None and moved.link is not None and moved.link.endswith("/old/redirected")
        assert {p.status for p in passes.values()} == {"ok"}
        feed, api = passes["doj-news"], passes["doj-api"]
        # The feed and the API race for the TdA release: one of them stores it, the other merges.
        assert feed.new + feed.stats.get("duplicate", 0) == 5
        assert api.new + api.stats.get("fuller_text", 0) == 4
        assert feed.blocked == 1
        assert feed.stats["no_link"] == 1
        assert api.stats["old"] == 1
    finally:
        db.dispose()

    # A second pass over the unchanged site downloads no article page in full again.
    site.reset_counts()
    second = bw(config, "crawl", "--no-alerts")
    assert second.returncode == 0, second.stderr
    assert len(items_json(config)) == len(expected)
    full = {p: n for (p, st), n in site.hits.items() if st == 200 and p.startswith(("/opa/", "/news/l", "/news/s",
                                                                                      "/usao", "/interpol"))}
    assert full == {}, full
    assert site.served("/news/rss", 304) == 1
    assert site.served("/sitemap.xml", 304) == 1


def test_crawl_of_an_unreachable_source_is_recorded_not_fatal(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path / "c.yaml", {
        "database": sqlite_url, "crawl": {"retries": 0, "timeout": 2},
        "sources": [{"name": "down", "kind": "feed", "url": "http://127.0.0.1:9/feed.xml"}],
    })
    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0
    assert "down: failed" in proc.stderr and "Traceback" not in proc.stderr
    db = Database(sqlite_url)
    with db.read() as s:
        p = s.scalar(select(Pass))
    db.dispose()
    assert p is not None and p.status == "failed" and p.error


def test_items_filters(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    config = site_config(site, sqlite_url, tmp_path)
    assert bw(config, "crawl", "--no-alerts").returncode == 0
    assert {i["source"] for i in items_json(config, "--source", "doj-api")} == {"doj-api"}
    found = items_json(config, "--search", "peña nieto")
    assert [i["title"] for i in found] == ["Extradición de un líder del cártel"]
    since = (datetime.now(UTC) - timedelta(days=2, hours=12)).date().isoformat()
    assert all(i["published"] >= since for i in items_json(config, "--since", since))
    assert len(items_json(config, "--limit", "3")) == 3
    table = bw_here(config, "items", "--format", "table")
    assert table.returncode == 0 and "TITLE" in table.stdout.splitlines()[0]
    csv_out = bw_here(config, "items", "--format", "csv")
    assert csv_out.stdout.splitlines()[0].startswith("id,url,source,title,published")
    bad = bw_here(config, "items", "--topic", "nonsense")
    assert bad.returncode == 2 and "nonsense" in bad.stderr and "Traceback" not in bad.stderr
    bad = bw_here(config, "items", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_politeness_crawl_delay_and_user_agent(tmp_path: Path, sqlite_url: str) -> None:
    """robots.txt's Crawl-delay is honoured even with no configured delay; the User-Agent names us."""
    site = Site()
    with serve(site):
        site.add("/robots.txt", "User-agent: *\nCrawl-delay: 1.5\nDisallow: /private/\n", content_type="text/plain")
        paths = [f"/pr/{n}" for n in range(4)]
        for p in paths:
            site.add(p, justice_page(f"Release {p}", [f"Text of release {p}, long enough to be an article."]))
        site.add("/feed", rss([{"title": p, "link": site.url(p), "pubDate": rfc822(NOW - DAY)} for p in paths]),
                 content_type="application/rss+xml")
        config = write_config(tmp_path / "c.yaml", {
            "database": sqlite_url,
            "crawl": {"download_delay": 0, "user_agent": "borderwatch-test (+mailto:desk@example.org)"},
            "sources": [{"name": "polite", "kind": "feed", "url": site.url("/feed")}],
        })
        assert bw(config, "crawl", "--no-alerts").returncode == 0
        times = [t for t, p, st, _ in site.log if p.startswith("/pr/") and st == 200]
        assert len(times) == 4
        gaps = [b - a for a, b in pairwise(times)]
        assert min(gaps) >= 1.5 * 0.95, gaps
        assert {ua for *_, ua in site.log} == {"borderwatch-test (+mailto:desk@example.org)"}


def test_api_rate_and_source_delay_are_minimum_gaps(tmp_path: Path, sqlite_url: str) -> None:
    """The DOJ API's rate (≤ 4 requests/s) and a source's own `delay` hold even with no global delay."""
    site = Site()
    with serve(site):
        site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        site.api_path = "/api/v1/press_releases.json"
        site.api_records = [
            api_record_2024(f"Release {i}", site.url(f"/pr/api-{i}"), [f"Body {i}."], date=NOW - i * 60, changed=NOW - i * 60)
            for i in range(8)
        ]
        for n in range(3):
            site.add(f"/pr/f{n}", justice_page(f"Feed release {n}", [f"Text of feed release {n}, long enough."]))
        site.add("/feed", rss([{"title": f"F{n}", "link": site.url(f"/pr/f{n}"), "pubDate": rfc822(NOW - DAY)}
                               for n in range(3)]), content_type="application/rss+xml")
        config = write_config(tmp_path / "c.yaml", {
            "database": sqlite_url, "crawl": {"download_delay": 0},
            "sources": [
                {"name": "api", "kind": "doj_api", "url": site.url("/api/v1/press_releases.json"), "pagesize": 2,
                 "rate": 4.0},
                {"name": "slow", "kind": "feed", "url": site.url("/feed"), "delay": 0.6},
            ],
        })
        assert bw(config, "crawl", "--no-alerts").returncode == 0
        api = [t for t, p, st, _ in site.log if p == "/api/v1/press_releases.json"]
        pages = [t for t, p, st, _ in site.log if p.startswith("/pr/f")]
        assert len(api) == 5 and len(pages) == 3
        assert min(b - a for a, b in pairwise(api)) >= 0.25 * 0.95
        assert min(b - a for a, b in pairwise(pages)) >= 0.6 * 0.95
