"""Incremental passes: change a site between passes and see exactly what changed in the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import bw, bw_here, items_json, write_config
from localsite import Site, justice_page, news_page, rss, serve
from sqlalchemy import func, select

from pipelines.db import Database
from pipelines.models import AlertEvent, Item, Pass, Revision

NOW = time.time()
RELEASE = [
    "Eight members of the Tren de Aragua transnational criminal organization were indicted today in Nashville "
    "on charges of sex trafficking, forced labor and money laundering.",
    "According to the indictment, from 2022 to 2025 the defendants recruited Venezuelan women with false promises "
    "of restaurant work and then forced them into commercial sex in motels along Interstate 24.",
    "The defendants, Carlos Mendoza-Rivas, 31, Luis Alberto Pérez, 28, and six others, face up to life in prison.",
    "The FBI and Homeland Security Investigations investigated the case with the Metro Nashville Police Department.",
]
SECOND = [
    "A Laredo woman was sentenced today to 46 months in prison for buying 40 rifles for a firearms trafficking "
    "ring that smuggled them across the border into Nuevo Laredo, Mexico.",
    "Marisol Treviño, 29, admitted she lied on ATF Form 4473 when she bought the AK-style rifles at six stores.",
    "ATF traced two of the rifles to a shootout in Tamaulipas in 2024.",
]
THIRD = [
    "A Phoenix man pleaded guilty today to possessing with intent to distribute 80,000 fentanyl pills found in "
    "a hidden compartment of his truck at the Nogales port of entry.",
    "Rogelio Vásquez, 45, faces a mandatory minimum of ten years in prison at sentencing in February.",
]


def rfc822(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def feed_of(site: Site, paths: list[tuple[str, str]]) -> str:
    return rss([{"title": t, "link": site.url(p), "pubDate": rfc822(NOW - 3600)} for p, t in paths])


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        s.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        s.add("/opa/pr/tda-nashville", justice_page("Eight Tren de Aragua Members Indicted in Nashville", RELEASE))
        s.add("/opa/pr/straw-rifles", justice_page("Straw Purchaser Sentenced for 40 Rifles", SECOND))
        s.add("/news/rss", feed_of(s, [("/opa/pr/tda-nashville", "Eight Tren de Aragua Members Indicted in Nashville"),
                                       ("/opa/pr/straw-rifles", "Straw Purchaser Sentenced for 40 Rifles")]),
              content_type="application/rss+xml")
        s.add("/outlet/feed", rss([]), content_type="application/rss+xml")
        yield s


def config_for(site: Site, database: str, tmp_path: Path) -> Path:
    return write_config(tmp_path / "c.yaml", {
        "database": database,
        # revisit_every 0s: every pass re-checks recent pages (by default at most hourly)
        "crawl": {"download_delay": 0, "extract_workers": 1, "revisit_every": "0s"},
        "sources": [
            {"name": "doj-news", "kind": "feed", "url": site.url("/news/rss")},
            {"name": "border-report", "kind": "feed", "url": site.url("/outlet/feed")},
        ],
    })


def test_second_pass_sees_exactly_what_changed(site: Site, database_url: str, tmp_path: Path) -> None:
    config = config_for(site, database_url, tmp_path)
    assert bw(config, "crawl", "--no-alerts").returncode == 0
    first = {i["url"].rsplit("/", 1)[1]: i for i in items_json(config)}
    assert set(first) == {"tda-nashville", "straw-rifles"}

    # Change the site: a new release, an edited release (a paragraph added), a cosmetic change to
    # another (whitespace, the "Updated" stamp, the share widget), an outlet's reprint of a release,
    # and a repost of an old link with tracking parameters.
    site.add("/opa/pr/fentanyl-pills", justice_page("Phoenix Man Pleads Guilty to Smuggling Fentanyl Pills", THIRD))
    site.change("/opa/pr/tda-nashville", justice_page(
        "Eight Tren de Aragua Members Indicted in Nashville",
        [*RELEASE, "Two of the defendants were arrested in Houston on Nov. 21 and will appear in court next week."]))
    cosmetic = justice_page("Straw Purchaser Sentenced for 40 Rifles", SECOND, updated="November 22, 2026")
    site.change("/opa/pr/straw-rifles", cosmetic.replace("<p>", "<p>\n   ").replace('title="Share on Facebook"', 'title="Share"'))
    site.change("/news/rss", feed_of(site, [
        ("/opa/pr/fentanyl-pills", "Phoenix Man Pleads Guilty to Smuggling Fentanyl Pills"),
        ("/opa/pr/tda-nashville", "Eight Tren de Aragua Members Indicted in Nashville"),
        ("/opa/pr/straw-rifles", "Straw Purchaser Sentenced for 40 Rifles"),
        ("/opa/pr/tda-nashville?utm_source=twitter&utm_campaign=repost#top", "Eight Tren de Aragua Members Indicted"),
    ]))
    reprint = news_page("Feds charge 8 alleged Tren de Aragua members in Nashville sex trafficking case",
                        ["NASHVILLE — Federal prosecutors announced charges on Thursday.", *RELEASE,
                         "Stay with Border Report for updates on this developing story."])
    site.add("/outlet/2026/11/21/tda-nashville-charges", reprint)
    site.change("/outlet/feed", rss([{"title": "Feds charge 8 alleged Tren de Aragua members in Nashville",
                                      "link": site.url("/outlet/2026/11/21/tda-nashville-charges"),
                                      "pubDate": rfc822(NOW - 600)}]))

    site.reset_counts()
    assert bw(config, "crawl", "--no-alerts").returncode == 0
    second = {i["url"].rsplit("/", 1)[1]: i for i in items_json(config)}
    assert set(second) == {"tda-nashville", "straw-rifles", "fentanyl-pills", "tda-nashville-charges"}

    db = Database(database_url)
    try:
        with db.read() as s:
            revisions = list(s.scalars(select(Revision)))
            events = [(e.kind, e.item_id) for e in s.scalars(select(AlertEvent).order_by(AlertEvent.id))]
            tda = s.scalar(select(Item).where(Item.url.like("%/opa/pr/tda-nashville")))
            straw = s.scalar(select(Item).where(Item.url.like("%/opa/pr/straw-rifles")))
            n_items = s.scalar(select(func.count()).select_from(Item))
        assert n_items == 4
        # one material revision (the added paragraph), none for the cosmetic change
        assert len(revisions) == 1
        assert tda is not None and straw is not None
        assert revisions[0].item_id == tda.id and revisions[0].material
        assert "Houston" in tda.text and "Houston" not in revisions[0].text
        assert tda.revision_count == 1 and straw.revision_count == 0
        assert straw.updated == straw.first_seen
        assert ("update", tda.id) in events
        assert not any(kind == "update" and item == straw.id for kind, item in events)
        # the reprint joins the release's story; the new release is a story of its own
        assert second["tda-nashville-charges"]["story"] == second["tda-nashville"]["story"]
        assert second["fentanyl-pills"]["story"] not in {second["tda-nashville"]["story"], second["straw-rifles"]["story"]}
        assert second["straw-rifles"]["story"] != second["tda-nashville"]["story"]
    finally:
        db.dispose()

    # `show` prints the diff of the revision; `items --stories` groups the copies.
    item_id = second["tda-nashville"]["id"]
    shown = bw_here(config, "show", str(item_id))
    assert shown.returncode == 0
    assert "+ Two of the defendants were arrested in Houston" in shown.stdout
    stories = bw_here(config, "items", "--stories", "--format", "json")
    rows = [r for r in map(__import__("json").loads, stories.stdout.splitlines()) if r["copies"] == 2]
    assert len(rows) == 1 and sorted(rows[0]["sources"]) == ["border-report", "doj-news"]

    # A third pass over the unchanged site downloads no article page in full.
    site.reset_counts()
    assert bw(config, "crawl", "--no-alerts").returncode == 0
    full = {p: n for (p, st), n in site.hits.items() if st == 200 and p != "/robots.txt"}
    assert full == {}, full
    db = Database(database_url)
    try:
        with db.read() as s:
            last = s.scalars(select(Pass).where(Pass.source == "doj-news").order_by(Pass.id.desc())).first()
        assert last is not None and last.new == 0 and last.updated == 0
        assert last.stats.get("feed_not_modified") == 1
    finally:
        db.dispose()


def test_an_edit_is_seen_while_the_feed_is_unchanged(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    """A feed answering 304 still lets recent pages be re-checked (conditionally): an edit is not missed."""
    config = config_for(site, sqlite_url, tmp_path)
    assert bw(config, "crawl", "doj-news", "--no-alerts").returncode == 0
    site.change("/opa/pr/straw-rifles", justice_page("Straw Purchaser Sentenced for 40 Rifles",
                                                     [*SECOND, "The ring's leader remains a fugitive in Mexico."]))
    site.reset_counts()
    assert bw(config, "crawl", "doj-news", "--no-alerts").returncode == 0
    assert site.served("/news/rss", 304) == 1
    assert site.served("/opa/pr/straw-rifles", 200) == 1  # changed: downloaded
    assert site.served("/opa/pr/tda-nashville", 304) == 1  # unchanged: one conditional request
    db = Database(sqlite_url)
    try:
        with db.read() as s:
            straw = s.scalar(select(Item).where(Item.url.like("%/opa/pr/straw-rifles")))
            assert straw is not None and straw.revision_count == 1 and "fugitive" in straw.text
    finally:
        db.dispose()

    # With the default revisit_every (1h), pages checked a moment ago are not asked for again.
    config.write_text(config.read_text().replace("revisit_every: 0s", "revisit_every: 1h"))
    site.reset_counts()
    assert bw(config, "crawl", "doj-news", "--no-alerts").returncode == 0
    assert {p for (p, _st) in site.hits} <= {"/news/rss", "/robots.txt"}


FAIR = [
    "The county fair opened on Saturday with a record crowd, a new livestock barn and a pie contest judged by "
    "the mayor.",
    "Organizers said the fair will run for ten days and expects more than 80,000 visitors this year.",
]


def test_an_unmatched_page_is_read_again_when_the_topics_change(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    """A `keep: matching` source remembers a page that matched no topic and does not fetch it again, while the
    topic rules stay the same (a comment added to the topics file changes nothing); once the rules change, the
    page is read once more and stored if it matches now."""
    import yaml

    shipped = (Path(__file__).resolve().parent.parent / "config" / "topics.yaml").read_text(encoding="utf-8")
    topics = tmp_path / "topics.yaml"
    topics.write_text(shipped, encoding="utf-8")
    site.add("/county/fair-opens", news_page("County fair opens with a record crowd", FAIR))
    site.add("/county/tda-charges", news_page("Eight Tren de Aragua members indicted", RELEASE))
    site.add("/county/feed", rss([{"title": "County fair opens", "link": site.url("/county/fair-opens"),
                                   "pubDate": rfc822(NOW - 600)},
                                  {"title": "Eight Tren de Aragua members indicted",
                                   "link": site.url("/county/tda-charges"), "pubDate": rfc822(NOW - 900)}]),
             content_type="application/rss+xml")
    config = write_config(tmp_path / "c.yaml", {
        "database": sqlite_url, "topics": str(topics),
        "crawl": {"download_delay": 0, "extract_workers": 1},
        "sources": [{"name": "county", "kind": "feed", "url": site.url("/county/feed"), "keep": "matching"}],
    })

    def crawl() -> str:
        site.reset_counts()
        proc = bw(config, "crawl", "--no-alerts")
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        return proc.stdout

    first = crawl()
    assert "county: ok: 1 new" in first and "1 matched no topic (not kept)" in first
    assert site.served("/county/fair-opens") == 1
    assert crawl() and site.served("/county/fair-opens") == 0  # remembered: not fetched again
    topics.write_text(shipped + "\n# a comment changes no rule\n", encoding="utf-8")
    assert crawl() and site.served("/county/fair-opens") == 0

    data = yaml.safe_load(shipped)
    data["topics"].append({"id": "fairs", "label": "County fairs", "description": "Agricultural and county fairs.",
                           "threshold": 2.0, "rules": [{"id": "fair", "weight": 3.0, "patterns": ["county fair"]}]})
    topics.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    fourth = crawl()
    assert site.served("/county/fair-opens") == 1 and "county: ok: 1 new" in fourth
    fair = [i for i in items_json(config) if i["url"].endswith("/county/fair-opens")]
    assert len(fair) == 1 and fair[0]["topics"] == ["fairs"]
    assert site.served("/county/tda-charges") == 0  # stored before: not due a revisit
    assert crawl() and site.served("/county/fair-opens") == 0  # now stored: read as any known page
