"""End to end: a release and an outlet's short reprint of it are one story and one alert.

Two local sites stand for justice.gov and a news outlet (issue 9): the outlet carries the release as a
one-line lead, one paragraph of the release and credit lines, under the release's title with
" — Borderline Report" after it (documents of the story dev set, tests/fixtures/stories). ``borderwatch crawl`` with a webhook watcher must store both copies under
one story and send one alert; the outlet's other story, with the same lead shape and credit lines,
is a story and an alert of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alert_support import Webhook
from helpers import bw, items_json, write_config
from localsite import Site, justice_page, news_page, rss, serve

NOW = time.time()
DAY = 86400
DEV_SET = Path(__file__).parent / "fixtures" / "stories" / "docs.jsonl"


def dev_doc(key: str) -> tuple[str, list[str]]:
    """A document of the story dev set (tests/fixtures/stories): its title and paragraphs."""
    for line in DEV_SET.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        if d["id"] == key:
            return d["title"], d["text"].split("\n\n")
    raise KeyError(key)


# The real 26-149 release (Anti-Tren indictment, SDNY); the outlet's copy of it: a lead, the release's
# first paragraph, a picture credit and "With files from The Associated Press", under the release's
# title with " — Borderline Report" after it (reprints.py); the same outlet's copy of another TdA
# indictment of the same office, with the same lead shape and credits.
RELEASE_TITLE, RELEASE = dev_doc("doj-26-149")
REPRINT_TITLE, REPRINT = dev_doc("r-anti-tren-borderline")
OTHER_TITLE, OTHER = dev_doc("r-sdny-robbery-borderline")


def rfc822(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


@pytest.fixture
def sites() -> Iterator[tuple[Site, Site]]:
    doj, outlet = Site(), Site()
    with serve(doj), serve(outlet):
        doj.add("/opa/pr/anti-tren", justice_page(RELEASE_TITLE, RELEASE))
        doj.add("/news/rss", rss([{"title": RELEASE_TITLE, "link": doj.url("/opa/pr/anti-tren"),
                                   "pubDate": rfc822(NOW - DAY)}]), content_type="application/rss+xml")
        outlet.add("/2026/02/13/anti-tren-charged", news_page(REPRINT_TITLE, REPRINT, outlet="Borderline Report"))
        outlet.add("/2026/02/13/bronx-jewelry-robberies", news_page(OTHER_TITLE, OTHER, outlet="Borderline Report"))
        outlet.add("/feed.xml", rss([
            {"title": REPRINT_TITLE, "link": outlet.url("/2026/02/13/anti-tren-charged"),
             "pubDate": rfc822(NOW - DAY + 3600)},
            {"title": OTHER_TITLE, "link": outlet.url("/2026/02/13/bronx-jewelry-robberies"),
             "pubDate": rfc822(NOW - DAY + 7200)},
        ], title="Borderline Report"), content_type="application/rss+xml")
        yield doj, outlet


def test_a_short_reprint_joins_the_release_and_alerts_once(
    sites: tuple[Site, Site], hook: Webhook, database_url: str, tmp_path: Path
) -> None:
    doj, outlet = sites
    config = write_config(tmp_path / "borderwatch.yaml", {
        "database": database_url,
        "crawl": {"download_delay": 0, "extract_workers": 1, "retries": 0, "timeout": 20},
        "sources": [
            {"name": "doj-news", "kind": "feed", "url": doj.url("/news/rss")},
            {"name": "borderline", "kind": "feed", "url": outlet.url("/feed.xml")},
        ],
        "watchers": [{"name": "desk", "notify": [hook.url()], "topics": ["tda"], "mode": "immediate"}],
    })
    proc = bw(config, "crawl")
    assert proc.returncode == 0, proc.stderr

    items = {item["title"]: item for item in items_json(config)}
    assert set(items) == {RELEASE_TITLE, REPRINT_TITLE, OTHER_TITLE}
    for item in items.values():
        assert "tda" in item["topics"], item["title"]  # each copy alone would alert
    assert items[REPRINT_TITLE]["story"] == items[RELEASE_TITLE]["story"]
    assert items[OTHER_TITLE]["story"] != items[RELEASE_TITLE]["story"]

    hook.wait_for(2, timeout=5)
    titles = hook.titles()
    assert len(titles) == 2, titles  # one per story
    assert sum("Six Members" in t for t in titles) == 1
    assert sum("Twenty-Seven Members" in t for t in titles) == 1
