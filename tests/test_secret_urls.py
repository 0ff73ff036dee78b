"""Pages whose address carries a secret or a signature: their per-URL record is found again (backoff, clearing)
under the key it was written with, the secret never lands in the database or the output, and a retry goes to
a real address, never to a redacted one (SQLite and PostgreSQL, real crawls of a local site)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import bw, items_json, write_config
from localsite import Site, justice_page, rss, serve
from sqlalchemy import inspect, select, text, update

from pipelines.db import Database
from pipelines.models import UrlState
from pipelines.urlstates import state_key

NOW = datetime.now(UTC)
API_KEY = "K3yS3cr3tV4lue"
SIG1, SIG2 = "S1gnatur3First", "S1gnatur3Second"


def article(name: str) -> str:
    return justice_page(f"Release {name} about border enforcement",
                        [f"Release {name}: federal agents seized rifles bound for Mexico at the Laredo port.",
                         f"The defendants in case {name} face up to twenty years in prison."])


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        s.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        yield s


def publish(site: Site, links: list[str]) -> None:
    stamp = (NOW - timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    site.add("/feed", rss([{"title": f"Release {n}", "link": site.url(link), "pubDate": stamp}
                           for n, link in enumerate(links)]), content_type="application/rss+xml")


def config_for(tmp_path: Path, database: str, site: Site) -> Path:
    return write_config(tmp_path / "c.yaml", {
        "database": database,
        "crawl": {"download_delay": 0, "extract_workers": 1, "retries": 0},
        "sources": [{"name": "news", "kind": "feed", "url": site.url("/feed"), "every": "1h"}],
    })


def crawl(config: Path) -> subprocess.CompletedProcess[str]:
    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def states(database: str) -> list[UrlState]:
    db = Database(database)
    try:
        with db.read() as s:
            rows = list(s.scalars(select(UrlState)))
            for r in rows:
                s.expunge(r)
            return rows
    finally:
        db.dispose()


def make_due(database: str) -> None:
    db = Database(database)
    try:
        with db.write() as s:
            s.execute(update(UrlState).where(UrlState.next_attempt.is_not(None))
                      .values(next_attempt=datetime.now(UTC) - timedelta(seconds=1)))
    finally:
        db.dispose()


def stored_anywhere(database: str, secret: str) -> list[str]:
    """Every table and column whose text holds ``secret``."""
    db = Database(database)
    found = []
    try:
        with db.read() as s:
            for table in inspect(db.engine).get_table_names():
                for row in s.execute(text(f'SELECT * FROM "{table}"')).mappings():
                    found += [f"{table}.{col}" for col, value in row.items() if secret in str(value)]
    finally:
        db.dispose()
    return found


@pytest.mark.parametrize(("key", "expected"), [
    ("https://h.example/a?id=2", "https://h.example/a?id=2"),
    ("https://h.example/a?Expires=1&id=2", "https://h.example/a?Expires=1&id=2"),  # no signature: a parameter
    ("https://h.example/a?api_key=z&id=2", "https://h.example/a?api_key=***&id=2"),
    ("https://h.example/a?Expires=1&Key-Pair-Id=k&Signature=x", "https://h.example/a?Expires=***&Key-Pair-Id=***&Signature=***"),
    ("https://h.example/a?X-Amz-Date=2&X-Amz-Expires=3&X-Amz-Signature=s", "https://h.example/a?X-Amz-Date=***&X-Amz-Expires=***&X-Amz-Signature=***"),
    ("https://h.example/a?se=2026&sig=s&sp=r", "https://h.example/a?se=***&sig=***&sp=r"),
])
def test_state_key(key: str, expected: str) -> None:
    assert state_key(key) == expected


def test_a_failed_page_whose_url_carries_a_key_backs_off_and_is_cleared(
        site: Site, database_url: str, tmp_path: Path) -> None:
    keyed = f"/pr/keyed?api_key={API_KEY}"
    site.add("/pr/ok", article("ok"))
    site.add(keyed, article("keyed"), fail=[500])
    publish(site, ["/pr/ok", keyed])
    config = config_for(tmp_path, database_url, site)
    outputs = [crawl(config)]
    (state,) = states(database_url)
    assert state.status == "failed" and "api_key=***" in state.url and state.next_attempt is not None
    assert stored_anywhere(database_url, API_KEY) == []

    # The feed changes and still links the page: its backoff runs, so it is not asked for again.
    site.add("/pr/two", article("two"))
    publish(site, ["/pr/two", "/pr/ok", keyed])
    site.reset_counts()
    outputs.append(crawl(config))
    assert site.served("/pr/two", 200) == 1 and site.served("/pr/keyed") == 0
    assert "1 waiting to be retried" in outputs[-1].stdout, outputs[-1].stdout

    # Once due, the next read of the feed fetches it at its real address; stored, its record goes.
    make_due(database_url)
    site.add("/pr/three", article("three"))
    publish(site, ["/pr/three", "/pr/two", "/pr/ok", keyed])
    site.reset_counts()
    outputs.append(crawl(config))
    assert site.served("/pr/keyed", 200) == 1
    urls = {i["url"] for i in items_json(config)}
    assert site.url(keyed) in urls, urls
    assert states(database_url) == []
    for proc in outputs:
        assert API_KEY not in proc.stdout and API_KEY not in proc.stderr


def test_a_signed_page_is_retried_at_the_address_its_source_gives_never_at_a_redacted_one(
        site: Site, sqlite_url: str, tmp_path: Path) -> None:
    first = f"/files/notice?Expires=1893456000&Signature={SIG1}"
    site.add(first, article("signed"), fail=[500])
    publish(site, [first])
    config = config_for(tmp_path, sqlite_url, site)
    crawl(config)
    (state,) = states(sqlite_url)
    assert state.status == "failed" and "Signature=***" in state.url
    assert stored_anywhere(sqlite_url, SIG1) == []

    # Due, the feed unchanged (304): the signed address is not kept, so nothing is asked for (above all
    # not the redacted address, which would answer 404 and count a try).
    make_due(sqlite_url)
    site.reset_counts()
    crawl(config)
    assert site.served("/feed", 304) == 1 and site.served("/files/notice") == 0

    # The feed signs its links anew; the old signature has expired. The page is fetched at the new address.
    second = f"/files/notice?Expires=1893459600&Signature={SIG2}"
    site.add(first, "<html><body>Request has expired</body></html>", status=403)
    site.add(second, article("signed"))
    publish(site, [second])
    site.reset_counts()
    proc = crawl(config)
    assert site.served("/files/notice", 200) == 1 and site.served("/files/notice", 403) == 0, proc.stdout
    (item,) = items_json(config)
    assert item["url"] == site.url(second)  # the address that opens
    assert [(r.url, r.status, r.detail) for r in states(sqlite_url)] == []
