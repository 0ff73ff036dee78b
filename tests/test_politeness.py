"""Politeness and feedback: failed and blocked pages back off and are retried (even while the feed answers 304),
listing walks are bounded by default not by a ceiling, oversized gzip bodies are `too_large`, and a pass shows
its progress (a live display on a terminal, log lines elsewhere; -v shows ours, -vv Scrapy's)."""

from __future__ import annotations

import gzip
import json
import os
import pty
import select as selectmod
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import bw, bw_here, items_json, write_config
from localsite import Site, justice_page, rss, serve
from sqlalchemy import create_engine, inspect, select, text, update

from pipelines.db import MIGRATIONS, Database
from pipelines.models import Pass, UrlState

NOW = time.time()
BOT_WALL = (
    '<html><head><script src="/_sec/cp_challenge/ak-challenge-4-3.js"></script></head><body>'
    '<iframe id="sec-cpt-if" class="bm-verify" src="/_sec/cp_challenge/x"></iframe></body></html>'
)


def rfc822(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def article(n: int | str) -> str:
    return justice_page(f"Release number {n} about border enforcement",
                        [f"Release {n}: federal agents seized rifles bound for Mexico at the Laredo port of entry.",
                         f"The defendants in case {n} face up to twenty years in prison."])


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        s.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        yield s


def feed_config(tmp_path: Path, database: str, site: Site, **crawl: Any) -> Path:
    return write_config(tmp_path / "c.yaml", {
        "database": database,
        "crawl": {"download_delay": 0, "extract_workers": 1, "retries": 0, **crawl},
        "sources": [{"name": "news", "kind": "feed", "url": site.url("/feed"), "every": "1h"}],
    })


def publish(site: Site, paths: list[str]) -> None:
    site.add("/feed", rss([{"title": f"Release {p}", "link": site.url(p), "pubDate": rfc822(NOW - 3600)}
                           for p in paths]), content_type="application/rss+xml")


def url_states(database: str) -> dict[str, UrlState]:
    db = Database(database)
    try:
        with db.read() as s:
            return {u.url.rsplit("/", 1)[1]: u for u in s.scalars(select(UrlState))}
    finally:
        db.dispose()


def make_due(database: str) -> None:
    """As if the backoff had run out (rather than waiting an hour in a test)."""
    db = Database(database)
    try:
        with db.write() as s:
            s.execute(update(UrlState).where(UrlState.next_attempt.is_not(None))
                      .values(next_attempt=datetime.now(UTC) - timedelta(seconds=1)))
    finally:
        db.dispose()


def crawl(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = bw(config, "crawl", "--no-alerts", *args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


@pytest.mark.parametrize(("attempts", "expected"), [
    (1, timedelta(hours=1)),  # the first wait: the source's interval
    (2, timedelta(hours=2)),
    (4, timedelta(hours=8)),
    (6, timedelta(days=1)),  # 32 h capped at a day
    (7, timedelta(days=1)),
    (8, None),  # the last try: given up
    (1000, None),
])
def test_retry_policy(attempts: int, expected: timedelta | None) -> None:
    from pipelines.retry import RetryPolicy

    now = datetime(2026, 11, 24, tzinfo=UTC)
    policy = RetryPolicy(attempts=8, cap=timedelta(days=1), every={"news": timedelta(hours=1)})
    got = policy.next_attempt("news", attempts, now)
    assert (got - now if got else None) == expected
    assert RetryPolicy(attempts=100).next_attempt("x", 99, now) == now + timedelta(days=1)  # no overflow


def test_a_failed_page_is_retried_while_the_feed_answers_304(site: Site, database_url: str, tmp_path: Path) -> None:
    """Issue 10 #4: a page that 500s is retried on a later pass with the feed unchanged (304), and stored."""
    site.add("/pr/ok", article("ok"))
    site.add("/pr/flaky", article("flaky"), fail=[500])
    publish(site, ["/pr/ok", "/pr/flaky"])
    config = feed_config(tmp_path, database_url, site)
    crawl(config)
    assert {i["url"].rsplit("/", 1)[1] for i in items_json(config)} == {"ok"}
    state = url_states(database_url)["flaky"]
    assert state.status == "failed" and state.attempts == 1 and state.next_attempt is not None
    # The wait starts at the source's `every` (1h).
    wait = state.next_attempt.replace(tzinfo=UTC) - state.last_attempt.replace(tzinfo=UTC)
    assert wait == timedelta(hours=1)

    # At once: the feed is unchanged and the page's backoff runs: nothing is asked for but the feed.
    site.reset_counts()
    second = crawl(config)
    assert site.served("/feed", 304) == 1 and site.served("/pr/flaky") == 0

    # Once its backoff has run out the page is tried again, although the feed still answers 304.
    make_due(database_url)
    site.reset_counts()
    third = crawl(config)
    assert site.served("/feed", 304) == 1 and site.served("/pr/flaky", 200) == 1
    assert {i["url"].rsplit("/", 1)[1] for i in items_json(config)} == {"ok", "flaky"}
    assert "flaky" not in url_states(database_url)  # stored: no longer failed
    assert "news: ok: 1 new" in third.stdout and "1 retried" in third.stdout, third.stdout
    assert "news: ok: 0 new" in second.stdout


def test_a_bot_walled_page_backs_off_and_is_retried_conditionally(site: Site, sqlite_url: str,
                                                                  tmp_path: Path) -> None:
    """A bot wall is not downloaded again on every pass; its retry is conditional; status shows the wait."""
    site.add("/pr/ok", article("ok"))
    site.add("/pr/walled", BOT_WALL, status=403)
    publish(site, ["/pr/ok", "/pr/walled"])
    config = feed_config(tmp_path, sqlite_url, site)
    crawl(config)
    assert site.served("/pr/walled", 403) == 1
    state = url_states(sqlite_url)["walled"]
    assert state.status == "blocked" and state.etag and state.next_attempt is not None

    # The feed changes (a new entry) and still lists the walled page: it is not asked for again yet.
    site.add("/pr/new", article("new"))
    publish(site, ["/pr/new", "/pr/ok", "/pr/walled"])
    site.reset_counts()
    second = crawl(config)
    assert site.served("/feed", 200) == 1 and site.served("/pr/new", 200) == 1
    assert site.served("/pr/walled") == 0
    assert "1 waiting to be retried" in second.stdout, second.stdout

    status = bw_here(config, "status")
    assert status.returncode == 0, status.stderr
    assert "news: 1 failed or blocked page waiting to be retried (next try in 59m)" in status.stdout \
        or "news: 1 failed or blocked page waiting to be retried (next try in 1h" in status.stdout, status.stdout
    out = json.loads(bw_here(config, "status", "--format", "json").stdout)
    retries = out["sources"][0]["retries"]
    assert retries["waiting"] == 1 and retries["given_up"] == 0
    next_try = datetime.fromisoformat(retries["next_try"])
    assert timedelta(minutes=55) < next_try - datetime.now(UTC) <= timedelta(hours=1)

    # Backoff over: one conditional request; the wall is unchanged (304), so nothing is downloaded in full,
    # and the next wait is twice as long.
    make_due(sqlite_url)
    site.reset_counts()
    crawl(config)
    assert site.served("/pr/walled", 304) == 1 and site.served("/pr/walled", 403) == 0
    state = url_states(sqlite_url)["walled"]
    assert state.status == "blocked" and state.attempts == 2 and state.next_attempt is not None
    assert state.next_attempt - state.last_attempt == timedelta(hours=2)

    # The wall is lifted: the next try stores the article.
    site.add("/pr/walled", article("walled"))
    make_due(sqlite_url)
    crawl(config)
    assert "walled" in {i["url"].rsplit("/", 1)[1] for i in items_json(config)}
    assert "walled" not in url_states(sqlite_url)


def test_a_page_failing_every_try_is_given_up(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    site.add("/pr/broken", article("broken"), fail=[500] * 50)
    publish(site, ["/pr/broken"])
    config = feed_config(tmp_path, sqlite_url, site, page_attempts=2)
    crawl(config)
    make_due(sqlite_url)
    crawl(config)
    state = url_states(sqlite_url)["broken"]
    assert state.attempts == 2 and state.next_attempt is None and state.status == "failed"
    site.reset_counts()
    site.add("/pr/other", article("other"))
    publish(site, ["/pr/other", "/pr/broken"])  # a changed feed that still lists it
    third = crawl(config)
    assert site.served("/pr/broken") == 0
    assert "1 given up" in third.stdout, third.stdout
    out = json.loads(bw_here(config, "status", "--format", "json").stdout)
    assert out["sources"][0]["retries"] == {"waiting": 0, "next_try": None, "given_up": 1, "too_complex": 0}
    assert "1 given up after crawl.page_attempts tries" in bw_here(config, "status").stdout


def test_a_150_page_listing_backfill(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    """`max_pages` bounds a listing walk by default (3) but is no ceiling: 200 walks a 150-page archive."""
    pages = 150
    for n in range(1, pages + 1):
        nxt = f'<a class="next" href="/archive?page={n + 1}">Next</a>' if n < pages else ""
        path = "/archive" if n == 1 else f"/archive?page={n}"
        site.add(path, f'<html><body><h3><a href="/pr/a{n}">Release {n}</a></h3>{nxt}</body></html>')
        site.add(f"/pr/a{n}", article(n))
    listing = {"name": "archive", "kind": "listing", "url": site.url("/archive"), "links": "h3 a", "next": "a.next"}
    config = write_config(tmp_path / "c.yaml", {
        "database": sqlite_url, "crawl": {"download_delay": 0, "extract_workers": 1},
        "sources": [{**listing, "max_pages": 200}],
    })
    crawl(config)
    assert len(items_json(config)) == pages
    assert site.served("/archive") == pages  # every listing page once (the path ignores the query)

    # The default bound is still a bound: 3 listing pages.
    default = write_config(tmp_path / "d.yaml", {
        "database": f"sqlite:///{tmp_path / 'd.db'}", "crawl": {"download_delay": 0, "extract_workers": 1},
        "sources": [listing],
    })
    site.reset_counts()
    crawl(default)
    assert site.served("/archive") == 3 and len(items_json(default)) == 3


def test_an_oversized_gzip_body_is_too_large(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    big = justice_page("Huge", ["Big."], pad_kb=1024).encode()
    assert len(big) > 512 * 1024
    site.add("/pr/bomb", gzip.compress(big), headers={"Content-Encoding": "gzip"})
    site.add("/pr/ok", article("ok"))
    publish(site, ["/pr/bomb", "/pr/ok"])
    config = feed_config(tmp_path, sqlite_url, site, max_page_size=256 * 1024)
    proc = crawl(config)
    state = url_states(sqlite_url)["bomb"]
    assert state.status == "too_large", state.detail
    assert state.next_attempt is None  # the same page would be as large again: not retried
    assert "1 too large" in proc.stdout and "failed" not in proc.stdout, proc.stdout


def slow_config(tmp_path: Path, site: Site, database: str, **crawl: Any) -> Path:
    for n in range(6):
        site.add(f"/pr/s{n}", article(f"s{n}"))
    publish(site, [f"/pr/s{n}" for n in range(6)])
    return write_config(tmp_path / "slow.yaml", {
        "database": database, "crawl": {"download_delay": 0, "extract_workers": 1, **crawl},
        "sources": [{"name": "news", "kind": "feed", "url": site.url("/feed"), "delay": 0.6}],
    })


def test_progress_lines_when_stderr_is_not_a_terminal(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    """A long pass logs one progress line per source every crawl.progress_every, without -v."""
    config = slow_config(tmp_path, site, sqlite_url, progress_every="1s")
    proc = crawl(config)
    lines = [ln for ln in proc.stderr.splitlines() if "borderwatch.progress" in ln]
    assert len(lines) >= 2, proc.stderr
    assert all(" INFO borderwatch.progress: news: running, " in ln for ln in lines)
    assert "pages fetched" in lines[-1] and " new, " in lines[-1] and "elapsed" in lines[-1]
    # Nothing else is chatty without -v: the progress lines, then the pass's summary line (on stdout).
    assert [ln for ln in proc.stderr.splitlines() if ln not in lines] == [], proc.stderr
    assert proc.stdout.startswith("news: ok: 6 new"), proc.stdout


def test_progress_on_a_terminal(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    """On a TTY a live display shows the source, pages fetched of queued, new items and the elapsed time."""
    config = slow_config(tmp_path, site, sqlite_url)
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(config), "crawl", "--no-alerts"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = selectmod.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    out, _ = proc.communicate(timeout=30)
    os.close(leader)
    assert proc.returncode == 0
    shown = screen.decode("utf-8", "replace")
    assert "news" in shown and " new" in shown and "pages" in shown, shown
    assert "0:00:0" in shown  # rich's elapsed-time column
    # Fetched of queued, e.g. "3/7": the numbers grew while the pass ran.
    assert any(f"{n}/7" in shown for n in range(1, 8)), shown
    assert out.decode().startswith("news: ok: 6 new")


def test_verbose_shows_our_lines_not_scrapys(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    site.add("/pr/one", article("one"))
    publish(site, ["/pr/one"])
    config = feed_config(tmp_path, sqlite_url, site)
    one = bw(config, "-v", "crawl", "--no-alerts")
    assert one.returncode == 0, one.stderr
    assert "INFO borderwatch: news: pass 1 started (feed" in one.stderr
    assert " scrapy." not in one.stderr and " twisted" not in one.stderr, one.stderr
    assert " alembic." not in one.stderr
    two = bw(config, "-vv", "crawl", "--no-alerts")
    assert two.returncode == 0, two.stderr
    assert " scrapy." in two.stderr  # Scrapy's internals, at -vv only


def test_migration_0004_upgrades_a_database_made_at_0001(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    engine = create_engine(database_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
            conn.execute(text("INSERT INTO url_states (url, source, status, detail, attempts, first_seen, "
                              "last_attempt) VALUES ('https://x.example/a', 'news', 'failed', 'HTTP 500', 2, "
                              "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        cols = {c["name"] for c in inspect(engine).get_columns("url_states")}
        assert "next_attempt" not in cols
    finally:
        engine.dispose()
    db = Database(database_url)  # brings it to head
    try:
        cols = {c["name"] for c in inspect(db.engine).get_columns("url_states")}
        assert {"next_attempt", "fetch_url", "etag", "last_modified"} <= cols
        with db.read() as s:
            row = s.scalar(select(UrlState))
            assert row is not None and row.attempts == 2 and row.next_attempt is None
            assert s.scalar(select(Pass)) is None
    finally:
        db.dispose()


def test_a_retried_link_that_now_redirects_is_cleared(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    """The failed link's record goes once the page it now redirects to is read (stored under its final URL)."""
    site.add("/pr/moved", "", redirect="/pr/new-home", fail=[500])
    site.add("/pr/new-home", article("new-home"))
    publish(site, ["/pr/moved"])
    config = feed_config(tmp_path, sqlite_url, site)
    crawl(config)
    assert url_states(sqlite_url)["moved"].status == "failed"
    make_due(sqlite_url)
    crawl(config)
    assert [i["url"].rsplit("/", 1)[1] for i in items_json(config)] == ["new-home"]
    assert url_states(sqlite_url) == {}


def test_run_child_passes_on_progress_lines() -> None:
    from crawler.daemon.child import StopRequest, run_child

    script = (
        "import sys, time\n"
        "for n in range(3):\n"
        "    sys.stderr.write(f'2026-11-24 12:00:0{n},000 INFO borderwatch.progress: news: running, {n} of 9 pages "
        "fetched\\n2026-11-24 12:00:0{n},000 INFO borderwatch: other\\n'); sys.stderr.flush(); time.sleep(0.3)\n"
    )
    seen: list[str] = []
    outcome = run_child([sys.executable, "-c", script], timeout=30, stop=StopRequest(), on_progress=seen.append)
    assert outcome.exit_code == 0
    assert seen[:2] == ["news: running, 0 of 9 pages fetched", "news: running, 1 of 9 pages fetched"]
    assert "INFO borderwatch: other" in outcome.stderr  # the child's output is kept whole for its summary


def test_the_daemon_logs_its_passes_progress(site: Site, sqlite_url: str, tmp_path: Path) -> None:
    """`borderwatch run`: a long pass's progress lines (every crawl.progress_every) reach the daemon's log."""
    config = slow_config(tmp_path, site, sqlite_url, progress_every="1s")
    data = config.read_text() + "run:\n  log_format: json\n"
    config.write_text(data)
    log_path = tmp_path / "daemon.log"
    env = {k: v for k, v in os.environ.items() if k != "BORDERWATCH_CONFIG"}
    with open(log_path, "ab") as f:
        proc = subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(config), "run"],
                                stdout=f, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        records: list[dict[str, Any]] = []
        while time.monotonic() < deadline and proc.poll() is None:
            lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
            records = [json.loads(ln) for ln in lines if ln.startswith("{")]
            if any(r.get("event") == "pass" for r in records):
                break
            time.sleep(0.5)
        progress = [r for r in records if r.get("event") == "progress"]
        assert progress, log_path.read_text()
        assert progress[0]["source"] == "news" and progress[0]["logger"] == "borderwatch.progress"
        assert progress[0]["message"].startswith("news: running, ") and "pages fetched" in progress[0]["message"]
    finally:
        proc.send_signal(__import__("signal").SIGTERM)
        proc.wait(60)
