"""Bot walls detected and reported, never got around: Cloudflare's challenge pages (by marker and by its
``cf-mitigated: challenge`` header, with 403 or 503) and a host that accepts connections and never answers a
plain client (the www.canada.ca pattern), each recorded as what it is, with a health alert that says what the
admin can do."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import bw, write_config
from localsite import Site, news_page, rss, serve, silent_server
from sqlalchemy import select

from crawler.daemon import health
from crawler.fetch.botwall import UNREACHABLE, detect_bot_wall
from crawler.passes.ledger import update_health
from pipelines.db import Database
from pipelines.models import AlertEvent, Item, Pass, UrlState
from pipelines.timeutil import utcnow

# A Cloudflare managed-challenge page as non-browser clients get it, written from its documented structure
# (title "Just a moment...", the /cdn-cgi/challenge-platform script, the window._cf_chl_opt settings).
CF_CHALLENGE = (
    "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>"
    "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\">"
    "<meta name=\"robots\" content=\"noindex,nofollow\"></head><body><div class=\"main-wrapper\" role=\"main\">"
    "<div class=\"main-content\"><noscript><div class=\"h2\">Enable JavaScript and cookies to continue</div>"
    "</noscript></div></div><script>(function(){window._cf_chl_opt={cvId: '3',cZone: 'www.gob.mx',"
    "cType: 'managed'};var a = document.createElement('script');"
    "a.src = '/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=8f0';"
    "document.getElementsByTagName('head')[0].appendChild(a);}());</script></body></html>"
)


@pytest.mark.parametrize(("status", "body", "headers", "expected"), [
    (403, CF_CHALLENGE, {}, "Cloudflare challenge page"),
    (503, CF_CHALLENGE, {}, "Cloudflare challenge page"),
    (200, "<html><body><div id='cf-chl-widget'></div></body></html>", {}, "Cloudflare challenge page"),
    (403, "<html><title>Attention Required! | Cloudflare</title></html>", {}, "Cloudflare challenge page"),
    # The header alone says it, whatever the page looks like.
    (403, "<html><body><p>Please wait.</p></body></html>", {"cf-mitigated": "challenge"},
     "Cloudflare challenge (cf-mitigated: challenge), HTTP 403"),
    (200, "<html><body><p>x</p></body></html>" + " " * 100_000, {"cf-mitigated": "challenge"},
     "Cloudflare challenge (cf-mitigated: challenge), HTTP 200"),
    (200, '<div class="bm-verify"></div>', {}, "Akamai bot-check page"),
    # Content that mentions Cloudflare in a long real article is not a wall.
    (200, "<html><body><p>" + "Cloudflare said the outage is over. " * 2000 + "</p></body></html>", {}, None),
    (200, "<html><body><article><p>A short real release.</p></article></body></html>", {"cf-ray": "8f0"}, None),
])
def test_wall_table(status: int, body: str, headers: dict[str, str], expected: str | None) -> None:
    found = detect_bot_wall(status, body.encode(), headers)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found.startswith(expected), found


def _config(tmp_path: Path, sources: list[dict[str, object]], **crawl: object) -> Path:
    return write_config(tmp_path / "c.yaml", {
        "database": f"sqlite:///{tmp_path / 'bw.db'}",
        "crawl": {"download_delay": 0, "extract_workers": 1, **crawl},
        "sources": sources,
    })


def _passes(tmp_path: Path, source: str) -> list[Pass]:
    db = Database(f"sqlite:///{tmp_path / 'bw.db'}")
    try:
        with db.read() as s:
            return list(s.scalars(select(Pass).where(Pass.source == source).order_by(Pass.id)))
    finally:
        db.dispose()


def test_cloudflare_challenges_are_recorded_as_blocked_and_not_retried(tmp_path: Path) -> None:
    site = Site()
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    with serve(site):
        # The listing itself is walled (gob.mx's archives), with the header and a 403.
        site.add("/archivo/prensa", CF_CHALLENGE, status=403, headers={"cf-mitigated": "challenge"})
        # A feed whose article pages answer the challenge with 503 (a status Scrapy would retry).
        site.add("/feed.xml", rss([{"title": "Walled", "link": site.url("/walled/1")},
                                   {"title": "Open", "link": site.url("/open/1")}]),
                 content_type="application/rss+xml")
        site.add("/walled/1", CF_CHALLENGE, status=503, headers={"cf-mitigated": "challenge"})
        site.add("/open/1", news_page("Open page", ["A page that any client may read, about fentanyl "
                                                    "seizures at the border crossing in Nogales."]))
        config = _config(tmp_path, [
            {"name": "sspc", "kind": "listing", "url": site.url("/archivo/prensa"), "links": "a.small-link"},
            {"name": "news", "kind": "feed", "url": site.url("/feed.xml")},
        ], retries=3)
        proc = bw(config, "crawl", "--no-alerts")
        assert proc.returncode == 0, proc.stderr
        assert "sspc: blocked" in proc.stderr and "Cloudflare challenge" in proc.stderr
        assert site.served("/walled/1") == 1  # the wall is not asked again within the pass
        assert site.served("/archivo/prensa") == 1
    (listing,) = _passes(tmp_path, "sspc")
    assert listing.status == "blocked" and "Cloudflare challenge" in (listing.error or "")
    (feed,) = _passes(tmp_path, "news")
    assert feed.status == "ok" and feed.blocked == 1 and feed.new == 1
    db = Database(f"sqlite:///{tmp_path / 'bw.db'}")
    try:
        with db.read() as s:
            walled = s.scalar(select(UrlState).where(UrlState.url.like("%/walled/1")))
            assert walled is not None and walled.status == "blocked"
            assert (walled.detail or "").startswith("Cloudflare challenge")
            assert [i.url.removeprefix(site.base) for i in s.scalars(select(Item))] == ["/open/1"]
    finally:
        db.dispose()


def test_a_host_that_never_answers_is_unreachable_from_a_non_browser_client(tmp_path: Path) -> None:
    with silent_server() as base:
        config = _config(tmp_path, [{"name": "canada-ca", "kind": "feed", "url": f"{base}/en/news.atom"}],
                         timeout=1, retries=1, obey_robots=False)
        started = time.monotonic()
        for _ in range(2):
            proc = bw(config, "crawl", "--no-alerts")
            assert proc.returncode == 0, proc.stderr
            assert "canada-ca: blocked" in proc.stderr and UNREACHABLE in proc.stderr
        assert time.monotonic() - started < 60
    passes = _passes(tmp_path, "canada-ca")
    assert [p.status for p in passes] == ["blocked", "blocked"]
    assert all(UNREACHABLE in (p.error or "") and "2 tries" in (p.error or "") for p in passes)
    # The health alert after `failures_alert` such passes says what it is and what the admin can do.
    db = Database(f"sqlite:///{tmp_path / 'bw.db'}")
    try:
        change = update_health(db, "canada-ca", every=timedelta(hours=1), failures_alert=2,
                               rule=health.QuietRule(), now=utcnow())
        assert change is not None and change.state == health.BLOCKED and change.event == "health"
        assert change.message == f"{UNREACHABLE}: 2 passes in a row got no answer"
        assert "API or feed instead" in change.detail and "GC News API" in change.detail
        with db.read() as s:
            event = s.scalar(select(AlertEvent).where(AlertEvent.kind == "health"))
            assert event is not None and event.payload["message"] == change.message
    finally:
        db.dispose()


def test_one_timeout_is_a_failure_not_a_wall(tmp_path: Path) -> None:
    """With no retry there is one try: a single timeout is not yet a host that never answers."""
    with silent_server() as base:
        config = _config(tmp_path, [{"name": "slow", "kind": "feed", "url": f"{base}/feed"}],
                         timeout=1, retries=0, obey_robots=False)
        proc = bw(config, "crawl", "--no-alerts")
        assert proc.returncode == 0, proc.stderr
    (p,) = _passes(tmp_path, "slow")
    assert p.status == "failed" and "timed out" in (p.error or "") and UNREACHABLE not in (p.error or "")


@pytest.mark.parametrize(("error", "message", "advice"), [
    ("https://www.gob.mx/sspc/archivo/prensa: Cloudflare challenge page (cf_chl_opt), HTTP 403",
     "blocked: 3 passes in a row met a Cloudflare challenge", "API or feed instead"),
    (f"https://www.canada.ca/x: {UNREACHABLE}: no answer to 4 tries",
     f"{UNREACHABLE}: 3 passes in a row got no answer", "GC News API"),
    ("https://www.justice.gov/x: Akamai bot-check page (bm-verify), HTTP 200",
     "blocked: 3 passes in a row met only bot walls", "DOJ News API"),
    (None, "blocked: 3 passes in a row met only bot walls", "API or feed instead"),
])
def test_blocked_verdicts_say_what_to_do(error: str | None, message: str, advice: str) -> None:
    v = health.assess(["blocked"] * 3, 3, first_seen=[], now=utcnow(), every=timedelta(hours=1),
                      rule=health.QuietRule(), last_error=error)
    assert v.state == health.BLOCKED and v.message == message and advice in v.detail
    assert "does not" in v.detail  # never got around
