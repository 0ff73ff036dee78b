"""The ``drupal_views`` kind: a Drupal view's listing read through its ``/views/ajax`` POST (the Prime Minister
of Canada's news), against a local replica that answers the POST the way Drupal does.

The answers in tests/fixtures/drupal_views/ and the article pages are BUILT from the documented structure (no
real pm.gc.ca answer or page is saved in the corpus).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import bw
from localsite import Site, serve
from publisher_pages import (
    TEXT_EN,
    TEXT_FENTANYL_EN,
    TEXT_FR,
    TEXT_OFF_EN,
    catalogue_config,
    pm_page,
    read_fixture,
    stored,
    unmatched,
)

from crawler.config import catalogue_entries
from crawler.fetch.spiders.drupal_views import view_html, view_items

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = {f"{{{{DAY{n}}}}}": NOW - timedelta(days=n) for n in range(1, 5)} | {"{{OLD}}": NOW - timedelta(days=700)}


def answer(name: str) -> str:
    text = read_fixture("drupal_views", name)
    for mark, when in DAY.items():
        text = text.replace(mark, when.isoformat())
    return text


def _entry(name: str) -> dict[str, str]:
    return next(e for e in catalogue_entries() if e["name"] == name)


def test_the_view_html_is_taken_from_the_insert_command() -> None:
    entry = _entry("pm-canada-en")
    html = view_html(answer("pm_news_page0.json").encode())
    assert html is not None and "news-row" in html and "ajaxPageState" not in html
    rows = view_items(html, entry["items"], entry["links"], entry["dates"])
    assert [r[0] for r in rows] == [
        "/en/news/news-releases/2026/11/17/prime-minister-announces-fentanyl-czar-measures",
        "/en/news/statements/2026/11/16/statement-prime-minister-tren-de-aragua",
        "/en/news/news-releases/2026/11/15/prime-minister-meets-arts-council"]
    assert rows[0][1] == DAY["{{DAY1}}"].isoformat()
    assert rows[1][2] == "Statement by the Prime Minister on Tren de Aragua"
    empty = view_html(answer("pm_news_page2.json").encode())
    assert empty is not None and view_items(empty, entry["items"], entry["links"], entry["dates"]) == []


def test_odd_answers() -> None:
    assert view_html(b"not json, not html") is None
    assert view_html(b"[{\"command\": \"settings\"}]") is None  # commands without a view: not a view answer
    assert view_html(b"<div class='news-row'></div>") == "<div class='news-row'></div>"  # a plain HTML answer


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        yield s


def build_pm(site: Site) -> None:
    form = {"view_name": "news", "view_display_id": "page_1"}
    for n in range(3):
        site.add_post("/views/ajax", {**form, "page": str(n)}, answer(f"pm_news_page{n}.json"),
                      content_type="application/json")
    pages = {
        "/en/news/news-releases/2026/11/17/prime-minister-announces-fentanyl-czar-measures":
            ("Prime Minister announces new measures against fentanyl", TEXT_FENTANYL_EN),
        "/en/news/statements/2026/11/16/statement-prime-minister-tren-de-aragua":
            ("Statement by the Prime Minister on Tren de Aragua", TEXT_EN),
        "/en/news/news-releases/2026/11/15/prime-minister-meets-arts-council":
            ("Prime Minister meets the Arts Council", TEXT_OFF_EN),
        "/en/news/news-releases/2026/11/14/prime-minister-border-agreement":
            ("Prime Minister welcomes border security agreement", TEXT_FENTANYL_EN[::-1]),
    }
    for (path, (title, text)), day in zip(pages.items(), ("{{DAY1}}", "{{DAY2}}", "{{DAY3}}", "{{DAY4}}"), strict=True):
        site.add(path, pm_page(title, text, DAY[day].isoformat()))
    # French: the /fr/ view, one item
    fr_row = answer("pm_news_page0.json").replace("/en/news/", "/fr/nouvelles/")
    site.add_post("/fr/views/ajax", {**form, "page": "0"}, fr_row, content_type="application/json")
    site.add_post("/fr/views/ajax", {**form, "page": "1"}, answer("pm_news_page2.json"),
                  content_type="application/json")
    site.add("/fr/nouvelles/news-releases/2026/11/17/prime-minister-announces-fentanyl-czar-measures",
             pm_page("Le premier ministre annonce des mesures contre le fentanyl", TEXT_FR, DAY["{{DAY1}}"].isoformat(),
                     lang="fr"))


def test_crawl_of_the_catalogue_entries_against_a_replica(site: Site, database_url: str, tmp_path: Path) -> None:
    build_pm(site)
    config = catalogue_config(tmp_path / "c.yaml", database_url, {
        "pm-canada-en": {"url": site.url("/views/ajax"), "since": "30d"},
        "pm-canada-fr": {"url": site.url("/fr/views/ajax"), "since": "30d"},
    })
    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    # page 0 (three items) and page 1 (one new, one older than `since`); max_pages 2: page 2 never asked for
    en_posts = sorted(form for path, form in site.posts if path == "/views/ajax")
    assert len(en_posts) == 2 and all("view_name=news" in f and "view_display_id=page_1" in f for f in en_posts)
    assert "pm-canada-en: ok: 3 new" in proc.stdout and "1 matched no topic (not kept)" in proc.stdout
    items = stored(database_url)
    en = {p: i for p, i in items.items() if i["source"] == "pm-canada-en"}
    assert set(en) == {"/en/news/news-releases/2026/11/17/prime-minister-announces-fentanyl-czar-measures",
                       "/en/news/statements/2026/11/16/statement-prime-minister-tren-de-aragua",
                       "/en/news/news-releases/2026/11/14/prime-minister-border-agreement"}
    fent = en["/en/news/news-releases/2026/11/17/prime-minister-announces-fentanyl-czar-measures"]
    assert fent["title"] == "Prime Minister announces new measures against fentanyl"
    assert str(fent["text"]).splitlines() == TEXT_FENTANYL_EN
    assert fent["language"] == "en"
    published = fent["published"]
    assert isinstance(published, datetime) and published.replace(tzinfo=UTC) == DAY["{{DAY1}}"]
    # keep: matching — the arts-council release was read, counted and remembered, not stored
    assert unmatched(database_url) == {"/en/news/news-releases/2026/11/15/prime-minister-meets-arts-council"}
    fr = {p: i for p, i in items.items() if i["source"] == "pm-canada-fr"}
    [(_path, item)] = fr.items()
    assert item["language"] == "fr" and str(item["text"]).splitlines() == TEXT_FR
    assert item["title"] == "Le premier ministre annonce des mesures contre le fentanyl"

    # A second pass: page 0 brings nothing new, so the walk stops there; the unmatched page is not fetched again.
    site.reset_counts()
    site.posts.clear()
    again = bw(config, "crawl", "--no-alerts", "pm-canada-en")
    assert again.returncode == 0, again.stderr
    assert [form for p, form in site.posts if p == "/views/ajax"] == [f for f in en_posts if f.endswith("page=0")]
    assert site.served("/en/news/news-releases/2026/11/15/prime-minister-meets-arts-council") == 0
    assert "pm-canada-en: ok: 0 new" in again.stdout
