"""The ``embedded_json`` kind: a listing page whose items are JSON inside the page (the RCMP's news, read from its
Drupal settings script), against a local replica of the listing.

The listing in tests/fixtures/embedded_json/ and the article pages are BUILT from the documented structure (no
real rcmp.ca page is saved in the corpus; its README says what the fixture covers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import bw
from localsite import Site, serve
from publisher_pages import (
    TEXT_EN,
    TEXT_FENTANYL_EN,
    TEXT_OFF_EN,
    catalogue_config,
    generic_news_page,
    read_fixture,
    stored,
    unmatched,
)

from crawler.config import Config, EmbeddedJsonSource, catalogue_entries
from crawler.fetch.spiders.embedded_json import embedded_records, read_items
from crawler.passes.check import check_file, render
from pipelines.classify import Classifier

NOW = datetime.now(UTC).replace(microsecond=0)
DAYS = {n: NOW - timedelta(days=n) for n in range(1, 5)}
OLD = NOW - timedelta(days=700)
PATH = "poweb.all_news.rest_export_all_news"
SCRIPT = "script[data-drupal-selector='drupal-settings-json']"


def listing(site: str = "https://rcmp.ca") -> str:
    text = read_fixture("embedded_json", "rcmp_news.html").replace("{{SITE}}", site)
    for n, when in DAYS.items():
        text = text.replace(f"{{{{DAY{n}}}}}", when.isoformat()).replace(f"{{{{EPOCH{n}}}}}",
                                                                         str(int(when.timestamp())))
    return text.replace("{{OLD}}", OLD.isoformat())


def _entry() -> dict[str, Any]:
    return next(e for e in catalogue_entries() if e["name"] == "rcmp-news")


def _source(**keys: Any) -> EmbeddedJsonSource:
    entry = {k: v for k, v in _entry().items() if k != "enabled"}
    return EmbeddedJsonSource.model_validate({**entry, **keys})


def test_the_items_are_read_from_the_drupal_settings_script() -> None:
    records, problem = embedded_records(listing(), SCRIPT, PATH)
    assert problem is None and len(records) == 6
    items = read_items(records, _source())
    # newest first, whatever the key and form of each date
    assert [i.published for i in items] == [DAYS[1], DAYS[2], DAYS[2], DAYS[3], DAYS[4], OLD]
    assert [i.link for i in items] == [
        "https://rcmp.ca/en/news/2026/11/rcmp-charges-three-members-tren-de-aragua-network",
        "/en/news/2026/11/fentanyl-lab-dismantled-british-columbia",  # relative: joined to the listing's URL
        None,  # "#": an item without a page
        "https://rcmp.ca/en/news/2026/11/road-safety-reminder-long-weekend",
        "https://rcmp.ca/en/news/2026/11/rcmp-cbsa-seize-cocaine-port-montreal",  # from a rendered <a href>
        "https://rcmp.ca/en/news/2024/01/archived-border-integrity-results",
    ]
    assert items[4].title == "RCMP and CBSA seize cocaine at the port of Montréal"  # entity decoded


def _page(settings: object) -> str:
    return (f'<html><body><script type="application/json" data-drupal-selector="drupal-settings-json">'
            f"{json.dumps(settings)}</script></body></html>")


RECORD = {"title": "T", "view_node": "https://rcmp.ca/en/news/a", "created": "2026-11-20"}


@pytest.mark.parametrize(("page", "count", "problem"), [
    (_page({"poweb": {"all_news": {"rest_export_all_news": json.dumps([RECORD])}}}), 1, None),
    (_page({"poweb": {"all_news": {"rest_export_all_news": [RECORD, RECORD]}}}), 2, None),  # not encoded
    (_page({"poweb": {"all_news": {"rest_export_all_news": {"7": RECORD}}}}), 1, None),  # keyed by id
    (_page({"poweb": {"all_news": {"rest_export_all_news": "[]"}}}), 0, None),
    ("<html><body><p>News</p></body></html>", 0, f"no {SCRIPT} element in the page"),
    ('<html><body><script type="application/json" data-drupal-selector="drupal-settings-json">{"poweb": '
     "</script></body></html>", 0, f"{SCRIPT}: not readable JSON"),
    (_page({"poweb": {"latest": []}}), 0, f"no {PATH} in the page's JSON (stopped at 'all_news')"),
    (_page({"poweb": {"all_news": {"rest_export_all_news": "no news"}}}), 0, f"{PATH} is not a list of items"),
])
def test_odd_listings(page: str, count: int, problem: str | None) -> None:
    records, found = embedded_records(page, SCRIPT, PATH)
    assert len(records) == count
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
    ("2026-11-20T09:30:00-05:00", datetime(2026, 11, 20, 14, 30, tzinfo=UTC)),
    ("2026-11-20 09:30:00", datetime(2026, 11, 20, 9, 30, tzinfo=UTC)),
    ('<time datetime="2026-11-20T14:30:00Z">Nov 20</time>', datetime(2026, 11, 20, 14, 30, tzinfo=UTC)),
    ("1795185000", datetime(2026, 11, 20, 14, 30, tzinfo=UTC)),
    (1795185000, datetime(2026, 11, 20, 14, 30, tzinfo=UTC)),
    ("soon", None),
    (None, None),
])
def test_dates_in_the_forms_an_export_gives(value: object, expected: datetime | None) -> None:
    [item] = read_items([{"title": "T", "view_node": "/a", "created": value}], _source())
    assert item.published == expected


def test_the_catalogue_entry_ships_disabled_with_the_reason() -> None:
    entry = _entry()
    assert entry["kind"] == "embedded_json" and entry["url"] == "https://rcmp.ca/en/news"
    assert entry["enabled"] is False and "medium-low" in entry["note"]


def test_sources_check_reads_a_saved_listing(tmp_path: Path) -> None:
    saved = tmp_path / "rcmp_news.html"
    saved.write_text(listing(), encoding="utf-8")
    config = Config.model_validate({"sources": [{**_entry(), "enabled": True}]})
    report = check_file(config, config.sources[0], saved, Classifier.from_file(None))
    assert report.read_as == "listing page with embedded JSON"
    assert len(report.links) == 5 and report.links[0].url.endswith("rcmp-charges-three-members-tren-de-aragua-network")
    assert report.links[0].title == "RCMP charges three members of the Tren de Aragua network"
    lines = render(report)
    assert "links:     5 found" in lines
    assert "note:      article pages are read only when the source is checked live (without --file)" in lines


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        yield s


PAGES = {
    "/en/news/2026/11/rcmp-charges-three-members-tren-de-aragua-network":
        ("RCMP charges three members of the Tren de Aragua network", TEXT_EN, 1),
    "/en/news/2026/11/fentanyl-lab-dismantled-british-columbia":
        ("Fentanyl lab dismantled in British Columbia", TEXT_FENTANYL_EN, 2),
    "/en/news/2026/11/road-safety-reminder-long-weekend": ("Road safety reminder for the long weekend", TEXT_OFF_EN, 3),
    "/en/news/2026/11/rcmp-cbsa-seize-cocaine-port-montreal":
        ("RCMP and CBSA seize cocaine at the port of Montréal", TEXT_FENTANYL_EN[::-1], 4),
    "/en/news/2024/01/archived-border-integrity-results": ("Archived: border integrity results", TEXT_EN, 700),
}


def test_crawl_of_the_catalogue_entry_against_a_replica(site: Site, database_url: str, tmp_path: Path) -> None:
    site.add("/en/news", listing(site.url("")))
    for path, (title, text, days) in PAGES.items():
        # (the page's headline carries the site's name: the record's own title is what is stored)
        site.add(path, generic_news_page(f"{title} | RCMP", text, (NOW - timedelta(days=days)).isoformat(), "en"))
    config = catalogue_config(tmp_path / "c.yaml", database_url, {
        "rcmp-news": {"url": site.url("/en/news"), "since": "30d", "enabled": True},
    })
    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "rcmp-news: ok: 3 new" in proc.stdout and "1 matched no topic (not kept)" in proc.stdout
    items = stored(database_url)
    assert set(items) == {"/en/news/2026/11/rcmp-charges-three-members-tren-de-aragua-network",
                          "/en/news/2026/11/fentanyl-lab-dismantled-british-columbia",
                          "/en/news/2026/11/rcmp-cbsa-seize-cocaine-port-montreal"}
    for path, item in items.items():
        title, text, days = PAGES[path]
        assert item["source"] == "rcmp-news" and item["title"] == title and item["language"] == "en"
        assert str(item["text"]).splitlines()[-len(text):] == text  # (the headline may lead the text)
        published = item["published"]
        assert isinstance(published, datetime) and published.replace(tzinfo=UTC) == NOW - timedelta(days=days)
    # keep: matching — the road-safety statement was read, counted and remembered, not stored
    assert unmatched(database_url) == {"/en/news/2026/11/road-safety-reminder-long-weekend"}
    assert site.served("/en/news/2024/01/archived-border-integrity-results") == 0  # older than `since`

    # A second pass: the listing is read again, no article page is fetched again.
    site.reset_counts()
    again = bw(config, "crawl", "--no-alerts")
    assert again.returncode == 0, again.stderr
    assert "rcmp-news: ok: 0 new" in again.stdout
    assert site.served("/en/news") == 1
    assert sum(site.served(path) for path in PAGES) == 0


def test_a_listing_without_its_json_fails_the_pass_saying_why(site: Site, database_url: str, tmp_path: Path) -> None:
    site.add("/en/news", "<html><body><h1>News</h1><p>Coming soon.</p></body></html>")
    config = catalogue_config(tmp_path / "c.yaml", database_url, {
        "rcmp-news": {"url": site.url("/en/news"), "enabled": True},
    })
    proc = bw(config, "crawl", "--no-alerts")
    assert "Traceback" not in proc.stderr
    assert f"no {SCRIPT} element in the page" in proc.stdout + proc.stderr
    assert stored(database_url) == {}
