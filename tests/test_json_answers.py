"""JSON answers without their list are failures, not empty pages: an error object answered with a 200
(``{"error": "rate limited"}``), a bare list, or ``results`` of the wrong type. Read as an empty, complete
walk, the pass said "ok" with nothing new and the DOJ watermark could move past what was never read."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import bw, items_json, write_config
from localsite import Site, api_record_2024, serve
from sqlalchemy import select

from crawler.fetch.spiders.doj_api import page_url, read_results
from crawler.fetch.spiders.drupal_views import view_html
from crawler.fetch.spiders.embedded_json import embedded_records
from crawler.fetch.spiders.gc_news import parse_gc_news
from pipelines.db import Database
from pipelines.models import Pass, SourceState, UrlState

NOW = int(time.time())
API = "/api/v1/press_releases.json"
PARAGRAPHS = ["A man was sentenced today for smuggling fentanyl across the border in a hidden compartment.",
              "Border officers found the pills during a secondary inspection at the port of entry."]
RATE_LIMITED = '{"error": "rate limited"}'


# -- what counts as an API page ------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "expected"), [
    ('{"metadata": {}, "results": [{"url": "u"}]}', [{"url": "u"}]),
    ('{"results": []}', []),
    # a page after the last record, as its own envelope says: the end of the walk
    ('{"metadata": {"resultset": {"count": "40", "pagesize": "20", "page": 2}}}', []),
    (RATE_LIMITED, 'no results in the answer: {"error": "rate limited"}'),
    ('{"metadata": {"resultset": {"count": "41", "pagesize": "20", "page": 2}}}', "no results in the answer"),
    ('{"metadata": {"resultset": {"count": "many", "pagesize": "20", "page": 2}}}', "no results in the answer"),
    ("[]", "a JSON a list, not an object with results: []"),
    ('[{"url": "u"}]', "a JSON a list, not an object with results"),
    ('"maintenance"', "a JSON a string, not an object with results"),
    ('{"results": null}', "results is null, not a list"),
    ('{"results": {"0": {"url": "u"}}}', "results is an object, not a list"),
    ("<html><body>Service unavailable</body></html>", "invalid JSON without a results list"),
])
def test_an_api_page_is_read_or_refused_with_its_reason(body: str, expected: list[Any] | str) -> None:
    if isinstance(expected, list):
        assert read_results(body.encode()) == expected
    else:
        with pytest.raises(ValueError, match="^" + expected.replace("[", r"\[").replace("]", r"\]")):
            read_results(body.encode())


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        s.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        yield s


def _rows(database: str, model: Any) -> list[Any]:
    db = Database(database)
    try:
        with db.read() as s:
            return list(s.scalars(select(model).order_by(model.__table__.primary_key.columns.values()[0])))
    finally:
        db.dispose()


def _record(n: int) -> dict[str, Any]:
    return api_record_2024(f"Release number {n}", f"https://www.justice.gov/opa/pr/release-{n}", PARAGRAPHS,
                           date=NOW - n * 3600, changed=NOW - n * 3600)


def _doj_config(site: Site, database: str, tmp_path: Path, **extra: Any) -> Path:
    return write_config(tmp_path / "borderwatch.yaml", {
        "database": database,
        "crawl": {"download_delay": 0, "retries": 0, "timeout": 60, "extract_workers": 1},
        "sources": [{"name": "doj-api", "kind": "doj_api", "url": site.url(API), "since": "30d", **extra}],
    })


def _stored(config: Path) -> list[str]:
    return sorted(i["url"].rsplit("/", 1)[1] for i in items_json(config))


def test_an_error_object_fails_the_doj_pass_and_keeps_the_watermark(
        site: Site, database_url: str, tmp_path: Path) -> None:
    site.api_path = API
    site.api_records = [_record(3), _record(4)]
    config = _doj_config(site, database_url, tmp_path)
    first = bw(config, "crawl", "--no-alerts")
    assert first.returncode == 0, first.stderr
    (state,) = _rows(database_url, SourceState)
    watermark = state.watermark
    assert watermark is not None

    site.api_path = None  # the API now answers an error object with a 200
    site.add(API, RATE_LIMITED, content_type="application/json")
    failed = bw(config, "crawl", "--no-alerts")
    assert "Traceback" not in failed.stderr
    assert 'not a DOJ API response (no results in the answer: {"error": "rate limited"})' in failed.stderr, \
        failed.stderr
    last = _rows(database_url, Pass)[-1]
    assert last.status == "failed" and last.error is not None and "rate limited" in last.error
    (state,) = _rows(database_url, SourceState)
    assert state.watermark == watermark

    # The API is back, with a release changed since: the next pass reads it.
    site.pages.pop(API)
    site.api_path = API
    site.api_records = [_record(1), _record(3), _record(4)]
    again = bw(config, "crawl", "--no-alerts")
    assert again.returncode == 0, again.stderr
    assert _rows(database_url, Pass)[-1].status == "ok"
    assert _stored(config) == ["release-1", "release-3", "release-4"]
    (state,) = _rows(database_url, SourceState)
    assert state.watermark is not None and state.watermark > watermark


def test_a_bad_later_page_fails_the_doj_walk_and_is_read_next_pass(site: Site, sqlite_url: str,
                                                                   tmp_path: Path) -> None:
    """Page 0 is read and stored; page 1 answers a bare list: the walk is not complete, so no watermark is kept
    and the next pass walks again and reads page 1's records."""
    records = [_record(n) for n in (1, 2, 3)]

    def page(n: int, body: str) -> None:
        url = page_url(site.url(API), n, 2)
        site.add(API + "?" + url.split("?", 1)[1], body, content_type="application/json")

    page(0, json.dumps({"results": records[:2]}))
    page(1, "[]")
    config = _doj_config(site, sqlite_url, tmp_path, pagesize=2)
    proc = bw(config, "crawl", "--no-alerts")
    assert "Traceback" not in proc.stderr
    assert "a JSON a list, not an object with results" in proc.stderr, proc.stderr
    (p,) = _rows(sqlite_url, Pass)
    assert p.status == "failed" and p.new == 2
    (state,) = _rows(sqlite_url, SourceState)
    assert state.watermark is None
    assert _stored(config) == ["release-1", "release-2"]

    page(1, json.dumps({"results": records[2:]}))
    again = bw(config, "crawl", "--no-alerts")
    assert again.returncode == 0, again.stderr
    assert _stored(config) == ["release-1", "release-2", "release-3"]
    (state,) = _rows(sqlite_url, SourceState)
    assert state.watermark is not None


# -- the other JSON-reading kinds ----------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "is_view"), [
    (b'[{"command": "settings"}, {"command": "insert", "data": "<div class=\\"view\\"></div>"}]', True),
    (b'[{"command": "insert", "data": ""}]', True),  # an empty view is still a view
    (RATE_LIMITED.encode(), False),
    (b'[{"command": "settings"}]', False),
    (b"[]", False),
])
def test_a_views_answer_without_an_insert_command_is_not_a_view(body: bytes, is_view: bool) -> None:
    assert (view_html(body) is not None) is is_view


def test_an_error_object_fails_the_drupal_views_pass(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    form = {"view_name": "news", "view_display_id": "page_1"}
    site.add_post("/views/ajax", {**form, "page": "0"}, RATE_LIMITED, content_type="application/json")
    config = write_config(tmp_path / "borderwatch.yaml", {
        "database": sqlite_url,
        "crawl": {"download_delay": 0, "retries": 0, "timeout": 60, "extract_workers": 1},
        "sources": [{"name": "pm", "kind": "drupal_views", "url": site.url("/views/ajax"), "view_name": "news",
                     "view_display_id": "page_1", "items": "div.news-row", "links": "a", "since": "30d"}],
    })
    proc = bw(config, "crawl", "--no-alerts")
    assert "Traceback" not in proc.stderr
    assert 'not a Drupal views/ajax answer: {"error": "rate limited"}' in proc.stderr, proc.stderr
    (p,) = _rows(sqlite_url, Pass)
    assert p.status == "failed"
    (state,) = _rows(sqlite_url, UrlState)
    assert state.status == "failed" and state.detail.startswith("page 0: not a Drupal views/ajax answer")


def test_an_error_object_where_the_embedded_list_was_is_a_problem() -> None:
    script = 'script[data-drupal-selector="drupal-settings-json"]'
    settings = json.dumps({"poweb": {"news": {"error": "rate limited"}}})
    page = f'<html><body><script type="application/json" data-drupal-selector="drupal-settings-json">{settings}' \
           "</script></body></html>"
    records, problem = embedded_records(page, script, "poweb.news")
    assert records == [] and problem == 'poweb.news is not a list of items: ["rate limited"]'


def test_a_gc_news_entry_that_is_not_an_object_is_kept_as_unreadable() -> None:
    entries, problem = parse_gc_news(b'{"feed": {"entry": [{"link": "https://x.gc.ca/a", "title": "A"}, null]}}')
    assert problem is None
    assert entries[0]["link"] == "https://x.gc.ca/a"
    assert entries[1] == {"unreadable": "not an object but NoneType"}
