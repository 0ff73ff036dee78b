"""Nothing lost on a bad day (issue 10, points 5–9), end to end with the real CLI on a local site:
a DOJ record no calendar holds, an exception in a spider callback, an extraction worker killed mid-pass,
a pathological page, binary bodies served as text/html, and a crawl killed with ``kill -9``."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import bw, bw_here, items_json, write_config
from localsite import Site, api_record_2024, justice_page, rss, serve
from sqlalchemy import select
from test_worker import alive, pathological_page

from pipelines.db import Database
from pipelines.models import Pass, SourceState, UrlState

NOW = int(time.time())
DAY = 86400
PARAGRAPHS = [
    "A Texas man was sentenced today to 20 years in prison for distributing fentanyl that caused a fatal overdose.",
    "According to court documents, the defendant sold counterfeit oxycodone pills containing fentanyl.",
    "The DEA Austin Resident Office investigated the case with the Austin Police Department.",
]


def rfc822(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        s.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        yield s


def feed(site: Site, paths: list[str]) -> None:
    site.add("/news/rss", rss([{"title": f"Release {p}", "link": site.url(p), "pubDate": rfc822(NOW - 3600)}
                               for p in paths]), content_type="application/rss+xml")


def config_for(site: Site, database: str, tmp_path: Path, *, crawl: dict[str, Any] | None = None,
               sources: list[dict[str, Any]] | None = None) -> Path:
    data: dict[str, Any] = {
        "database": database,
        "crawl": {"download_delay": 0, "retries": 0, "timeout": 60, "extract_workers": 1, **(crawl or {})},
        "sources": sources or [{"name": "news", "kind": "feed", "url": site.url("/news/rss")}],
    }
    return write_config(tmp_path / "borderwatch.yaml", data)


def rows(database: str, model: Any) -> list[Any]:
    db = Database(database)
    try:
        with db.read() as s:
            return list(s.scalars(select(model)))
    finally:
        db.dispose()


def url_states(database: str) -> dict[str, UrlState]:
    return {u.url.rsplit("/", 1)[1]: u for u in rows(database, UrlState)}


# -- #5 a bad DOJ record; an exception in a callback ---------------------------------------------------------
def test_a_doj_record_with_an_impossible_date_is_skipped_and_recorded_and_its_page_kept(
        site: Site, database_url: str, tmp_path: Path) -> None:
    site.api_path = "/api/v1/press_releases.json"
    good = [api_record_2024(f"Release number {n}", site.url(f"/opa/pr/good-{n}"), PARAGRAPHS,
                            date=NOW - n * 3600, changed=NOW - n * 3600) for n in (1, 3)]
    bad = api_record_2024("A record from the year 318857", site.url("/opa/pr/bad-date"), PARAGRAPHS,
                          date=NOW, changed=NOW - 2 * 3600)
    bad["date"] = "9999999999999"
    site.api_records = [good[0], bad, good[1]]
    config = config_for(site, database_url, tmp_path, sources=[
        {"name": "doj-api", "kind": "doj_api", "url": site.url(site.api_path), "since": "30d"}])

    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(i["url"].rsplit("/", 1)[1] for i in items_json(config)) == ["good-1", "good-3"]
    state = url_states(database_url)["bad-date"]
    assert state.status == "failed"
    assert state.detail == "unreadable API record: BadRecord: date: timestamp out of range: '9999999999999'"
    (p,) = rows(database_url, Pass)
    assert p.status == "ok" and p.stats["bad_record"] == 1 and p.failed == 1
    (source_state,) = rows(database_url, SourceState)
    assert source_state.watermark is not None  # the walk completed: the next pass starts from here


def test_a_malformed_doj_record_is_recorded_and_the_rest_of_its_page_stored(
        site: Site, database_url: str, tmp_path: Path) -> None:
    """Malformed JSON inside one record (a missing comma), and a null in place of a record: the page's other
    records are stored, each bad one is recorded as failed with its reason, and the pass is ok."""
    records = [api_record_2024(f"Release number {n}", site.url(f"/opa/pr/{name}"), PARAGRAPHS,
                               date=NOW - n * 3600, changed=NOW - n * 3600)
               for n, name in ((1, "good-1"), (2, "bad-json"), (3, "good-3"))]
    bad = json.dumps(records[1]).replace('"title": ', '"title" ', 1)  # no longer JSON
    page = ('{"metadata": {"resultset": {"count": "4"}}, "results": ['
            + ", ".join([json.dumps(records[0]), bad, json.dumps(records[2]), "null"]) + "]}")
    site.add("/api/v1/press_releases.json", page, content_type="application/json")
    config = config_for(site, database_url, tmp_path, sources=[
        {"name": "doj-api", "kind": "doj_api", "url": site.url("/api/v1/press_releases.json"), "since": "30d"}])

    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(i["url"].rsplit("/", 1)[1] for i in items_json(config)) == ["good-1", "good-3"]
    states = url_states(database_url)
    assert states["bad-json"].status == "failed"
    assert re.fullmatch(r"unreadable API record: BadRecord: invalid JSON: Expecting ':' delimiter "
                        r"\(character \d+ of the record\)", states["bad-json"].detail), states["bad-json"].detail
    (null,) = [s for key, s in states.items() if key.startswith("press_releases.json")]
    assert null.detail == "unreadable API record: BadRecord: not an object but NoneType: 'None'"
    (p,) = rows(database_url, Pass)
    assert p.status == "ok" and p.new == 2 and p.stats["bad_record"] == 2 and p.failed == 2
    assert "doj-api: ok: 2 new, 0 updated, 0 unchanged, 2 failed (2 unreadable API records)" in proc.stdout, \
        proc.stdout
    (source_state,) = rows(database_url, SourceState)
    assert source_state.watermark is not None


BOOM_SPIDER = """
import sys
from crawler.passes import run as runner
from crawler.config import load_config
from crawler.fetch.spiders import SPIDERS
from crawler.fetch.spiders.feed import FeedSpider

class BoomSpider(FeedSpider):  # a parser bug no input of ours triggers any more
    def parse_feed(self, response):
        yield from super().parse_feed(response)
        raise RuntimeError("boom after the feed's entries")

if __name__ == "__main__":  # (extraction workers are spawned: they import this module too)
    SPIDERS["feed"] = BoomSpider
    for result in runner.run_pass(load_config(sys.argv[1])):
        print(result.line())
"""


def test_an_exception_in_a_spider_callback_fails_the_pass(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    site.add("/opa/pr/a", justice_page("Release A", PARAGRAPHS))
    feed(site, ["/opa/pr/a"])
    config = config_for(site, sqlite_url, tmp_path)
    script = tmp_path / "boom.py"
    script.write_text(BOOM_SPIDER)
    proc = subprocess.run([sys.executable, str(script), str(config)], capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("news: failed: 1 new"), proc.stdout
    (p,) = rows(sqlite_url, Pass)
    assert p.status == "failed"
    assert p.error.startswith(f"spider error at {site.url('/news/rss')}: RuntimeError: boom after the feed's entries")
    assert p.stats["spider_error"] == 1
    (state,) = rows(sqlite_url, SourceState)
    assert state.feed_etag is None  # not remembered: the next pass reads the feed again in full


# -- #8 binary bodies ----------------------------------------------------------------------------------------
def fake_pdf() -> bytes:
    stream = zlib.compress(os.urandom(4000))
    return (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length " + str(len(stream)).encode()
            + b" /Filter /FlateDecode >>\nstream\n" + stream + b"\nendstream\nendobj\ntrailer\n<< >>\n%%EOF\n")


def test_binary_bodies_served_as_html_are_recorded_as_no_text(site: Site, database_url: str, tmp_path: Path) -> None:
    page = justice_page("A Real Release", PARAGRAPHS)
    site.add("/opa/pr/real", page)
    site.add("/opa/pr/gzipped", gzip.compress(page.encode()), content_type="text/html; charset=utf-8")
    site.add("/opa/pr/pdf", fake_pdf(), content_type="text/html")
    site.add("/opa/pr/noise", os.urandom(20_000), content_type="text/html; charset=iso-8859-1")
    feed(site, ["/opa/pr/real", "/opa/pr/gzipped", "/opa/pr/pdf", "/opa/pr/noise"])
    config = config_for(site, database_url, tmp_path)

    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    items = items_json(config)
    assert [i["url"].rsplit("/", 1)[1] for i in items] == ["real"]
    assert "\ufffd" not in items[0]["text"]
    states = url_states(database_url)
    assert {k: (v.status, v.detail) for k, v in states.items()} == {
        "gzipped": ("no_text", "binary body (gzip data) served as a page"),
        "pdf": ("no_text", "binary body (a PDF document) served as a page"),
        "noise": ("no_text", "binary body (binary data) served as a page"),
    }


# -- #6 a worker killed mid-pass; #7 a pathological page -----------------------------------------------------
def children(pid: int) -> list[int]:
    """Extraction workers of process ``pid`` (spawned by multiprocessing)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry))
    return found


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def crawl_process(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(config), "crawl", "--no-alerts"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_worker_killed_mid_pass_loses_no_page(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    paths = [f"/opa/pr/r{n}" for n in range(12)]
    site.add(paths[0], pathological_page(30_000))  # keeps the worker busy a few seconds
    for n, path in enumerate(paths[1:], 1):
        site.add(path, justice_page(f"Release {n}", PARAGRAPHS), hang=0.2)
    feed(site, paths)
    config = config_for(site, sqlite_url, tmp_path, crawl={"max_page_size": 8 * 1024 * 1024})

    crawl = crawl_process(config)
    try:
        (worker, *_) = wait_for(lambda: children(crawl.pid), 120, "an extraction worker")
        time.sleep(1.5)
        os.kill(worker, signal.SIGKILL)  # as the OOM killer would
        out, err = crawl.communicate(timeout=300)
    finally:
        crawl.kill()
    assert crawl.returncode == 0, err
    assert "news: ok: 12 new" in err + out, err + out
    assert len(items_json(config)) == 12
    assert url_states(sqlite_url) == {}


def test_a_pathological_page_is_given_up_as_too_complex_and_the_pass_goes_on(
        site: Site, sqlite_url: str, tmp_path: Path) -> None:
    site.add("/opa/pr/endless", pathological_page(60_000))  # ~3 MB of paragraphs: many seconds of trafilatura
    for n in range(3):
        site.add(f"/opa/pr/r{n}", justice_page(f"Release {n}", PARAGRAPHS))
    feed(site, ["/opa/pr/endless", "/opa/pr/r0", "/opa/pr/r1", "/opa/pr/r2"])
    config = config_for(site, sqlite_url, tmp_path, crawl={"extract_timeout": 1, "max_page_size": 8 * 1024 * 1024})

    started = time.monotonic()
    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 120
    assert sorted(i["url"].rsplit("/", 1)[1] for i in items_json(config)) == ["r0", "r1", "r2"]
    endless = url_states(sqlite_url)["endless"]
    assert (endless.status, endless.detail, endless.next_attempt) == (
        "too_complex", "too complex: extraction ran over 1s (crawl.extract_timeout)", None)
    (p,) = rows(sqlite_url, Pass)
    assert p.status == "ok" and p.new == 3 and p.failed == 1
    assert "3 new, 0 updated, 0 unchanged, 1 too complex to extract (given up)," in proc.stdout, proc.stdout

    # Given up at once: the feed changes and still links it, and it is not fetched (nor extracted) again.
    site.add("/opa/pr/r3", justice_page("Release 3", PARAGRAPHS))
    feed(site, ["/opa/pr/r3", "/opa/pr/endless", "/opa/pr/r0", "/opa/pr/r1", "/opa/pr/r2"])
    site.reset_counts()
    again = bw(config, "crawl", "--no-alerts")
    assert again.returncode == 0, again.stderr
    assert site.served("/opa/pr/r3", 200) == 1 and site.served("/opa/pr/endless") == 0
    assert "1 new," in again.stdout and "1 given up" in again.stdout, again.stdout
    status = bw_here(config, "status")
    assert status.returncode == 0, status.stderr
    assert "news: 1 page too complex to extract (given up)" in status.stdout, status.stdout


# -- #9 a crawl killed with kill -9 --------------------------------------------------------------------------
def test_after_a_crawl_is_killed_the_next_runs_at_once_and_nothing_is_left_running(
        site: Site, database_url: str, tmp_path: Path) -> None:
    site.add("/opa/pr/endless", pathological_page(120_000))  # a worker busy for a long time
    site.add("/opa/pr/slow", justice_page("A Slow Release", PARAGRAPHS), hang=60)
    feed(site, ["/opa/pr/endless", "/opa/pr/slow"])
    config = config_for(site, database_url, tmp_path,
                        crawl={"max_page_size": 8 * 1024 * 1024, "extract_timeout": 600})

    crawl = crawl_process(config)
    try:
        workers = wait_for(lambda: children(crawl.pid), 120, "an extraction worker")
        time.sleep(3)  # the worker is in the endless page by now
        os.kill(crawl.pid, signal.SIGKILL)
        crawl.wait(30)
    finally:
        crawl.kill()
        crawl.communicate()
    # The worker dies with its parent instead of living on with PPID 1.
    wait_for(lambda: not any(alive(w) for w in workers), 30, "the orphaned worker to die")

    status = bw_here(config, "status", "--format", "json")
    assert status.returncode == 0, status.stderr
    (news,) = json.loads(status.stdout)["sources"]
    assert news["running_since"] is None
    assert news["last_pass"]["status"] == "crashed" and "a process that is gone" in news["last_pass"]["error"]

    site.add("/opa/pr/endless", justice_page("No Longer Endless", PARAGRAPHS))
    site.add("/opa/pr/slow", justice_page("A Slow Release", PARAGRAPHS))
    started = time.monotonic()
    second = bw(config, "crawl", "--no-alerts")
    assert second.returncode == 0, second.stderr
    assert "locked" not in second.stderr + second.stdout
    assert "news: ok: 2 new" in second.stderr + second.stdout
    assert time.monotonic() - started < 120
    first, again = sorted(rows(database_url, Pass), key=lambda p: p.id)
    assert first.status == "crashed" and first.finished is not None
    assert "a process that is gone" in (first.error or "")
    assert again.status == "ok"
    status = json.loads(bw_here(config, "status", "--format", "json").stdout)
    assert status["sources"][0]["last_pass"]["status"] == "ok" and status["sources"][0]["running_since"] is None
