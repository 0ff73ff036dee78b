"""The ``gc_news`` kind: the Government of Canada's news API (JSON and Atom), read from a local replica.

The answers in tests/fixtures/gc_news/ are BUILT from the documented shape (no real answer is saved); the API's
query is built from the source's `dept`, `topic`, `type`, `pick`, and the replica answers only that exact query.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import bw
from localsite import Site, serve
from publisher_pages import catalogue_config, read_fixture, stored

from crawler.config import catalogue_entries
from crawler.fetch.spiders.gc_news import api_url, parse_gc_news, path_language

NOW = datetime.now(UTC).replace(microsecond=0)
DAYS = {"{{DAY1}}": NOW - timedelta(days=1), "{{DAY2}}": NOW - timedelta(days=2),
        "{{DAY3}}": NOW - timedelta(days=3), "{{OLD}}": NOW - timedelta(days=400)}


def fixture(name: str, *, spaced: bool = False) -> str:
    text = read_fixture("gc_news", name)
    for mark, when in DAYS.items():
        # the JSON form with "YYYY-MM-DD HH:MM:SS" (as GC feeds write it), the Atom form in RFC 3339
        text = text.replace(mark, when.strftime("%Y-%m-%d %H:%M:%S") if spaced else when.isoformat())
    return text


def test_query_is_built_from_the_source_filters() -> None:
    url = api_url("https://api.io.canada.ca/io-server/gc/news/en/v2", dept=["publicsafetycanada"], topic=[],
                  types=["newsreleases", "statements"], pick=50)
    assert url == ("https://api.io.canada.ca/io-server/gc/news/en/v2?dept=publicsafetycanada&type=newsreleases,"
                   "statements&sort=publishedDate&orderBy=desc&pick=50&format=json")
    # a parameter written in the source URL is kept; the source's filters win over the URL's
    url = api_url("https://api.io.canada.ca/io-server/gc/news/fr/v2?format=atom&pick=5", dept=[],
                  topic=["nationalsecurityanddefence"], types=[], pick=20)
    assert "format=atom" in url and "pick=20" in url and "topic=nationalsecurityanddefence" in url
    assert path_language(url) == "fr"
    assert path_language("https://api.io.canada.ca/io-server/gc/news/en/v2") == "en"


def test_json_and_atom_answers_are_read_alike() -> None:
    entries, problem = parse_gc_news(fixture("publicsafety_en.json", spaced=True).encode())
    assert problem is None
    assert [e["title"] for e in entries][:2] == [
        "Minister announces new measures against fentanyl trafficking at the border",
        "Statement on the listing of Tren de Aragua as a terrorist entity"]
    assert entries[0]["published"] == DAYS["{{DAY1}}"]
    assert entries[1]["teaser"].startswith("The Government of Canada has listed the Tren de Aragua")
    assert entries[4]["link"] == ""  # the entry without a link is the spider's to count
    atom, problem = parse_gc_news(fixture("publicsafety_fr.atom").encode())
    assert problem is None and len(atom) == 2
    assert atom[1]["title"] == "Déclaration sur l'inscription du Tren de Aragua comme entité terroriste"
    assert atom[1]["published"] == DAYS["{{DAY2}}"]
    assert atom[0]["link"].startswith("https://www.canada.ca/fr/securite-publique-canada/nouvelles/")


def test_unreadable_answers_are_a_problem_not_a_crash() -> None:
    assert parse_gc_news(b"{not json")[1]
    assert parse_gc_news(b'{"feed": {}}')[1] == "JSON without feed.entry"
    assert parse_gc_news(b"<html><body>Service unavailable</body></html>")[1]


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        yield s


def _entry(name: str) -> dict[str, object]:
    return next(e for e in catalogue_entries() if e["name"] == name)


def test_crawl_of_the_catalogue_entries_against_a_replica(site: Site, database_url: str, tmp_path: Path) -> None:
    en, fr = _entry("gc-publicsafety-en"), _entry("gc-publicsafety-fr")
    en_path, fr_path = "/io-server/gc/news/en/v2", "/io-server/gc/news/fr/v2"
    # The replica answers only the query the catalogue entry asks for.
    for entry, path, body, ctype in ((en, en_path, fixture("publicsafety_en.json", spaced=True), "application/json"),
                                     (fr, fr_path, fixture("publicsafety_fr.atom"), "application/atom+xml")):
        url = api_url(site.url(path), dept=list(entry["dept"]), topic=[], types=list(entry["type"]),  # type: ignore[call-overload]
                      pick=50)
        site.add(path + "?" + url.split("?", 1)[1], body, content_type=ctype)
    config = catalogue_config(tmp_path / "c.yaml", database_url, {
        "gc-publicsafety-en": {"url": site.url(en_path), "since": "30d"},
        "gc-publicsafety-fr": {"url": site.url(fr_path), "since": "30d"},
    })
    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "gc-publicsafety-en: ok: 3 new" in proc.stdout
    assert "gc-publicsafety-fr: ok: 2 new" in proc.stdout
    items = stored(database_url)
    assert len(items) == 5
    fent = items["/en/public-safety-canada/news/2026/11/minister-announces-new-measures-against-fentanyl-trafficking.html"]
    assert fent["title"] == "Minister announces new measures against fentanyl trafficking at the border"
    assert fent["language"] == "en" and fent["source"] == "gc-publicsafety-en"
    assert str(fent["text"]).startswith("The Minister of Public Safety announced new funding")
    published = fent["published"]
    assert isinstance(published, datetime) and published.replace(tzinfo=UTC) == DAYS["{{DAY1}}"]
    tda_fr = items["/fr/securite-publique-canada/nouvelles/2026/11/declaration-tren-de-aragua.html"]
    assert tda_fr["language"] == "fr" and tda_fr["source"] == "gc-publicsafety-fr"
    assert str(tda_fr["text"]).startswith("Le gouvernement du Canada a inscrit")
    # www.canada.ca pages are walled: nothing but the API was asked for.
    assert {p for (p, _s) in site.hits} <= {en_path, fr_path, "/robots.txt"}


def test_crawl_of_the_security_topic_and_the_walled_pages_entries(
    site: Site, database_url: str, tmp_path: Path
) -> None:
    """`gc-security-*` ask by topic and keep what matches; `gc-publicsafety-pages` (shipped disabled: canada.ca
    hangs for non-browser clients) fetches each item's page, here from a replica that answers."""
    from publisher_pages import TEXT_FENTANYL_EN, canada_page, unmatched

    sec_en, sec_fr, pages = _entry("gc-security-en"), _entry("gc-security-fr"), _entry("gc-publicsafety-pages")
    for entry, path, body, ctype in (
        (sec_en, "/sec/gc/news/en/v2", fixture("publicsafety_en.json", spaced=True), "application/json"),
        (sec_fr, "/sec/gc/news/fr/v2", fixture("publicsafety_fr.atom"), "application/atom+xml"),
        (pages, "/pages/gc/news/en/v2",
         fixture("publicsafety_en.json", spaced=True).replace("https://www.canada.ca/", site.url("/")),
         "application/json"),
    ):
        url = api_url(site.url(path), dept=list(entry.get("dept") or []),  # type: ignore[call-overload]
                      topic=list(entry.get("topic") or []), types=list(entry["type"]),  # type: ignore[call-overload]
                      pick=50)
        assert ("topic=nationalsecurityanddefence" in url) is (entry is not pages)
        site.add(path + "?" + url.split("?", 1)[1], body, content_type=ctype)
    site.add("/en/public-safety-canada/news/2026/11/minister-announces-new-measures-against-fentanyl-trafficking.html",
             canada_page("Minister announces new measures against fentanyl trafficking at the border",
                         TEXT_FENTANYL_EN, DAYS["{{DAY1}}"].date().isoformat()))
    config = catalogue_config(tmp_path / "c.yaml", database_url, {
        "gc-security-en": {"url": site.url("/sec/gc/news/en/v2"), "since": "30d"},
        "gc-security-fr": {"url": site.url("/sec/gc/news/fr/v2"), "since": "30d"},
        "gc-publicsafety-pages": {"url": site.url("/pages/gc/news/en/v2"), "since": "30d", "enabled": True},
    })
    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    # keep: matching — the emergency-preparedness item is counted, not stored
    assert "gc-security-en: ok: 2 new" in proc.stdout and "1 matched no topic" in proc.stdout
    assert "gc-security-fr: ok: 2 new" in proc.stdout
    assert unmatched(database_url) >= {"/en/public-safety-canada/news/2026/11/emergency-preparedness-week.html"}
    items = stored(database_url)
    page_item = items["/en/public-safety-canada/news/2026/11/minister-announces-new-measures-against-fentanyl-trafficking.html"]
    assert page_item["source"] == "gc-publicsafety-pages"  # the page's text wins over the API's teaser
    assert str(page_item["text"]).splitlines() == TEXT_FENTANYL_EN
    fetched = site.served(
        "/en/public-safety-canada/news/2026/11/minister-announces-new-measures-against-fentanyl-trafficking.html", 200)
    assert fetched == 1  # the pages entry fetched it (its replica answers; the real canada.ca does not)
    assert items["/fr/securite-publique-canada/nouvelles/2026/11/declaration-tren-de-aragua.html"]["language"] == "fr"
