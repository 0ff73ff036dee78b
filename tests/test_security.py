"""Nothing read that should not be, no secret shown (issue 10, points 1–3).

Crawls run the real CLI against local sites. Other loopback addresses (127.0.0.2…) stand for internal
services next to the crawler; no test touches a private-range or public address.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import re
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from alert_support import Webhook
from helpers import bw, items_json, write_config
from localsite import Site, justice_page, rss, serve
from scrapy import Request, Spider
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler
from sqlalchemy import inspect, select, text

from crawler.config import ConfigError, load_config
from crawler.daemon.logs import RedactingFilter, fields, setup_logging
from crawler.fetch.policy import (
    ConnectedAddressMiddleware,
    FetchPolicy,
    FetchPolicyMiddleware,
    RefusedRequest,
    is_public,
    scheme_refusal,
)
from pipelines.db import Database
from pipelines.models import Pass, UrlState
from pipelines.redact import forget_secrets, redact_text, register_secret

NOW = time.time()
FENTANYL = [
    "A Texas man was sentenced today to 20 years in prison for distributing fentanyl that caused the "
    "fatal overdose of a 19-year-old in Austin.",
    "According to court documents, Juan Ortega, 34, sold counterfeit oxycodone pills containing "
    "fentanyl to the victim in March 2025.",
    "The DEA Austin Resident Office investigated the case.",
]


def rfc822(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def crawl_config(tmp_path: Path, database: str, sources: list[dict[str, Any]], name: str = "bw.yaml",
                 **extra: Any) -> Path:
    data: dict[str, Any] = {
        "database": database,
        "crawl": {"download_delay": 0, "retries": 0, "timeout": 10, "extract_workers": 1,
                  **extra.pop("crawl", {})},
        "sources": sources,
        **extra,
    }
    return write_config(tmp_path / name, data)


def url_states(database: str) -> dict[str, UrlState]:
    db = Database(database)
    try:
        with db.read() as s:
            rows = list(s.scalars(select(UrlState)))
            for r in rows:
                s.expunge(r)
            return {r.url: r for r in rows}
    finally:
        db.engine.dispose()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        yield s


@pytest.fixture
def internal() -> Iterator[Site]:
    """Another machine's service (an admin console, a metadata endpoint), on 127.0.0.2."""
    s = Site()
    with serve(s, host="127.0.0.2"):
        s.add("/admin/secret", justice_page("Internal Admin Console", ["INTERNALSECRET database password list."]))
        s.add("/admin/other", justice_page("Internal Metrics", ["INTERNALSECRET metrics of the cluster."]))
        yield s


# -- 1. only http(s) ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "refused"), [
    ("http://example.org/a", False),
    ("HTTPS://example.org/a", False),
    ("file:///etc/passwd", True),
    ("data:text/html,<p>x</p>", True),
    ("ftp://127.0.0.1/x", True),
    ("s3://bucket/key", True),
    ("javascript:void(0)", True),
    ("gopher://127.0.0.1:70/", True),
])
def test_scheme_refusal(url: str, refused: bool) -> None:
    assert (scheme_refusal(url) is not None) == refused


def test_links_to_files_data_ftp_and_javascript_are_refused_and_recorded(
    site: Site, sqlite_url: str, tmp_path: Path
) -> None:
    local = tmp_path / "local-secret.html"
    local.write_text(justice_page("A Local File", ["LOCALFILESECRET root:x:0:0 lives in this file."]))
    data_url = "data:text/html," + quote(justice_page("Data Page", ["DATAURLSECRET stored from a data link."]))
    page = justice_page("A Real Article", ["An article the listing links to, fetched as usual."])
    site.add("/news/ok", page)
    site.add("/news/s-ok", page.replace("A Real Article", "A Sitemap Article"))
    site.add("/loop/a", "", redirect="/loop/b")
    site.add("/loop/b", "", redirect="/loop/a")
    links = [local.as_uri(), data_url, f"ftp://127.0.0.1:{site.url('').rsplit(':', 1)[1]}/x", "javascript:void(0)",
             "/news/ok", "/loop/a"]
    site.add("/listing", "<html><body>" + "".join(f'<h3><a href="{link}">x</a></h3>' for link in links)
             + '<a class="next" href="file:///etc/hostname">next</a></body></html>')
    site.add("/sitemap.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<url><loc>{local.as_uri()}?sitemap=1</loc></url><url><loc>{site.url('/news/s-ok')}</loc></url>"
             "</urlset>", content_type="application/xml")
    site.add("/index.xml", '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<sitemap><loc>{local.as_uri()}?index=1</loc></sitemap></sitemapindex>", content_type="application/xml")
    site.add("/feed", rss([
        {"title": "File", "link": local.as_uri() + "?feed=1", "pubDate": rfc822(NOW - 3600)},
        {"title": "Script", "link": "javascript:feed()", "pubDate": rfc822(NOW - 3600)},
    ]), content_type="application/rss+xml")
    config = crawl_config(tmp_path, sqlite_url, [
        {"name": "feed", "kind": "feed", "url": site.url("/feed"), "fetch_pages": False},
        {"name": "listing", "kind": "listing", "url": site.url("/listing"), "links": "h3 a", "next": "a.next"},
        {"name": "sitemap", "kind": "sitemap", "url": site.url("/sitemap.xml")},
        {"name": "index", "kind": "sitemap", "url": site.url("/index.xml")},
    ])
    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr

    items = items_json(config)
    assert sorted(i["title"] for i in items) == ["A Real Article", "A Sitemap Article"]
    assert not [i for i in items if "SECRET" in (i["text"] or "")]

    states = url_states(sqlite_url)
    refused = {url.split(":", 1)[0]: s for url, s in states.items() if s.status == "refused"}
    assert set(refused) == {"file", "data", "ftp", "javascript"}
    assert "only http and https" in refused["file"].detail
    assert "javascript" in refused["javascript"].detail
    file_rows = [s for url, s in states.items() if url.startswith("file:")]
    # the feed's entry, the listing's link, its next link, the sitemap's entry and the index's child
    # sitemap: all recorded
    assert len(file_rows) == 5 and {s.source for s in file_rows} == {"feed", "listing", "sitemap", "index"}
    assert states["javascript:feed()"].status == "refused"
    loop = [s for url, s in states.items() if "/loop/" in url]
    assert len(loop) == 1 and loop[0].status == "failed" and "redirect loop" in loop[0].detail
    assert "refused" in proc.stdout  # the pass lines count them


# -- 2. no other non-public origin ----------------------------------------------------------------------------
def _policy(allow: tuple[str, ...] = ()) -> FetchPolicy:
    return FetchPolicy.for_source("http://127.0.0.1:8080/feed", list(allow))


@pytest.mark.parametrize(("url", "address", "allow", "refused"), [
    ("http://127.0.0.1:8080/page", "127.0.0.1", (), False),  # the source's own origin
    ("http://127.0.0.1:8081/page", "127.0.0.1", (), True),  # another port: another origin
    ("https://127.0.0.1:8080/page", "127.0.0.1", (), True),  # another scheme: another origin
    ("http://127.0.0.2:8080/page", "127.0.0.2", (), True),
    ("http://127.0.0.2:8080/page", "127.0.0.2", ("127.0.0.0/8",), False),
    ("http://127.0.0.2:8080/page", "127.0.0.2", ("127.0.0.3/32",), True),
    ("http://metadata.internal/latest", "169.254.169.254", (), True),
    ("http://intranet.example/x", "10.1.2.3", (), True),
    ("http://intranet.example/x", "10.1.2.3", ("10.0.0.0/8",), False),
    ("http://[::1]:8080/x", "::1", (), True),
    ("http://mapped.example/x", "::ffff:127.0.0.2", (), True),
    ("http://mapped.example/x", "::ffff:127.0.0.2", ("127.0.0.0/8",), False),
    ("http://news.example/x", "8.8.8.8", (), False),  # a value only: nothing is fetched here
])
def test_address_policy(url: str, address: str, allow: tuple[str, ...], refused: bool) -> None:
    assert (_policy(allow).address_refusal(url, address) is not None) == refused


def test_public_addresses() -> None:
    assert not is_public(ipaddress.ip_address("100.64.0.1"))  # carrier-grade NAT
    assert not is_public(ipaddress.ip_address("fe80::1"))
    assert not is_public(ipaddress.ip_address("0.0.0.0"))


class _SourceSpider(Spider):
    name = "probe"

    def __init__(self, url: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.source = type("Source", (), {"url": url})()


def test_connected_address_is_checked_on_every_response() -> None:
    """DNS rebinding: a name that passed the check before the request, served from a loopback address."""
    crawler = get_crawler(_SourceSpider, {"BORDERWATCH_ALLOW_NETWORKS": ["127.0.0.3/32"]})
    crawler.spider = _SourceSpider("http://127.0.0.1:8080/feed")
    mw = ConnectedAddressMiddleware.from_crawler(crawler)

    def response(url: str, ip: str, status: int = 200, **headers: str) -> tuple[Request, HtmlResponse]:
        req = Request(url)
        return req, HtmlResponse(url, status=status, body=b"<html></html>", headers=headers, request=req,
                                 ip_address=ipaddress.ip_address(ip))

    req, resp = response("http://rebinding.example/page", "127.0.0.2")
    with pytest.raises(RefusedRequest, match=r"127\.0\.0\.2"):
        mw.process_response(req, resp)
    req, resp = response("http://rebinding.example/page", "127.0.0.2", status=302, Location="/next")
    with pytest.raises(RefusedRequest):  # a redirect from there is not followed either
        mw.process_response(req, resp)
    req, resp = response("http://allowed.example/page", "127.0.0.3")
    assert mw.process_response(req, resp) is resp
    req, resp = response("http://127.0.0.1:8080/page", "127.0.0.1")
    assert mw.process_response(req, resp) is resp
    req, resp = response("http://127.0.0.1:8080/a", "127.0.0.1", status=301, Location="/a")
    with pytest.raises(IgnoreRequest, match="redirect loop"):
        mw.process_response(req, resp)


def test_names_are_checked_on_the_addresses_they_resolve_to() -> None:
    """Before any connection: ``localhost`` is a loopback address whatever its name says."""
    crawler = get_crawler(_SourceSpider)
    crawler.spider = _SourceSpider("http://127.0.0.1:8080/feed")
    mw = FetchPolicyMiddleware.from_crawler(crawler)

    async def check(url: str) -> None:
        await mw.process_request(Request(url))

    with pytest.raises(RefusedRequest, match=r"localhost \(127\.0\.0\.1\)"):
        asyncio.run(check("http://localhost:8080/admin"))
    with pytest.raises(RefusedRequest, match="only http and https"):
        asyncio.run(check("file:///etc/passwd"))
    asyncio.run(check("http://127.0.0.1:8080/own-origin"))  # allowed: no exception


def ssrf_site(site: Site, internal: Site) -> None:
    site.add("/news/ok", justice_page("A Public Article", ["An article on the source's own site."]))
    site.add("/go", "", redirect=internal.url("/admin/other"))
    site.add("/feed", rss([
        {"title": "Internal", "link": internal.url("/admin/secret"), "pubDate": rfc822(NOW - 3600)},
        {"title": "Redirected", "link": site.url("/go"), "pubDate": rfc822(NOW - 3600)},
        {"title": "Public", "link": site.url("/news/ok"), "pubDate": rfc822(NOW - 3600)},
    ]), content_type="application/rss+xml")


def test_links_and_redirects_to_another_local_service_are_refused(
    site: Site, internal: Site, sqlite_url: str, tmp_path: Path
) -> None:
    ssrf_site(site, internal)
    config = crawl_config(tmp_path, sqlite_url, [{"name": "feed", "kind": "feed", "url": site.url("/feed")}])
    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr

    assert [i["title"] for i in items_json(config)] == ["Public"]
    assert sum(internal.hits.values()) == 0, internal.hits  # not a request, not even robots.txt
    refused = [s for s in url_states(sqlite_url).values() if s.status == "refused"]
    assert len(refused) == 2
    assert all("non-public address 127.0.0.2" in s.detail and "allow_networks" in s.detail for s in refused)
    db = Database(sqlite_url)
    with db.read() as s:
        stats = s.scalar(select(Pass.stats).where(Pass.source == "feed"))
    db.engine.dispose()
    assert stats is not None and stats.get("refused") == 2


@pytest.mark.parametrize("where", ["source", "crawl"])
def test_allow_networks_lets_an_intranet_source_through(
    site: Site, internal: Site, sqlite_url: str, tmp_path: Path, where: str
) -> None:
    ssrf_site(site, internal)
    source: dict[str, Any] = {"name": "feed", "kind": "feed", "url": site.url("/feed")}
    extra: dict[str, Any] = {}
    if where == "source":
        source["allow_networks"] = ["127.0.0.0/8"]
    else:
        extra["crawl"] = {"allow_networks": ["127.0.0.2"]}
    config = crawl_config(tmp_path, sqlite_url, [source], **extra)
    proc = bw(config, "crawl", "--no-alerts")
    assert proc.returncode == 0, proc.stderr
    titles = sorted(i["title"] for i in items_json(config))
    assert titles == ["Internal", "Public", "Redirected"]  # (the feed's titles)
    assert not [s for s in url_states(sqlite_url).values() if s.status == "refused"]


@pytest.mark.parametrize(("value", "message"), [
    ("10.0.0.0/8", "sources[0].allow_networks: expected a list of networks"),
    (["10.0.0.0/33"], "sources[0].allow_networks: '10.0.0.0/33' is not a network"),
    (["intranet"], "sources[0].allow_networks: 'intranet' is not a network"),
    (["10.1.2.3", "fd00::/8"], None),
])
def test_allow_networks_is_validated(tmp_path: Path, value: Any, message: str | None) -> None:
    config = crawl_config(tmp_path, "sqlite:///x.db", [
        {"name": "feed", "kind": "feed", "url": "http://127.0.0.1:1/feed", "allow_networks": value}])
    if message is None:
        assert load_config(config).sources[0].allow_networks == ["10.1.2.3/32", "fd00::/8"]
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(config)


def test_allow_networks_cli_error_is_one_line(tmp_path: Path) -> None:
    config = crawl_config(tmp_path, "sqlite:///x.db", [], crawl={"allow_networks": ["not-a-net"]})
    proc = bw(config, "crawl")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "crawl.allow_networks" in proc.stderr


# -- 3. secrets ----------------------------------------------------------------------------------------------
@pytest.fixture
def clean_registry() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize(("raw", "shown"), [
    ("https://user:pa55word@host.example/feed", "https://***@host.example/feed"),
    ("https://TOKEN123@host.example/x", "https://***@host.example/x"),
    ("https://h.example/f?token=abc123&page=2", "https://h.example/f?token=***&page=2"),
    ("https://h.example/f?api_key=k1&author=Jo&keyword=x", "https://h.example/f?api_key=***&author=Jo&keyword=x"),
    ("https://h.example/f?X-Amz-Signature=abc&sig=1", "https://h.example/f?X-Amz-Signature=***&sig=***"),
    ('GET /feed?access_token=zz HTTP/1.1" 200', 'GET /feed?access_token=*** HTTP/1.1" 200'),
    ("{'Authorization': 'Bearer abc.def', 'Accept': '*/*'}", "{'Authorization': '***', 'Accept': '*/*'}"),
    ("Authorization: Basic dXNlcjpwYXNz\nAccept: x", "Authorization: ***\nAccept: x"),
    ("{b'X-Api-Key': [b'k-123']}", "{b'X-Api-Key': [b'***']}"),
    ("mailto://desk:hunter2@mail.example/?to=a@b.example", "mailto://***@mail.example/?to=a@b.example"),
    ("error: https://h.example/feed?secret=s%20x: HTTP 404", "error: https://h.example/feed?secret=***: HTTP 404"),
    ("nothing to hide here: page=2 https://h.example/a", "nothing to hide here: page=2 https://h.example/a"),
])
def test_redact_text(raw: str, shown: str, clean_registry: None) -> None:
    assert redact_text(raw) == shown


def test_registered_secrets_are_hidden_in_any_form(clean_registry: None) -> None:
    register_secret("T0kenInPath/1")
    assert redact_text("POST /hook/T0kenInPath/1 and T0kenInPath%2F1") == "POST /hook/*** and ***"


def test_logging_filter_scrubs_message_args_and_traceback(clean_registry: None) -> None:
    register_secret("PathTok3n99")
    record = logging.LogRecord("urllib3", logging.DEBUG, __file__, 1, 'http://h:80 "POST /hook/%s?token=%s"',
                               ("PathTok3n99", "abc"), None)
    try:
        raise ValueError("https://u:pw@h.example/x")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    assert record.getMessage() == 'http://h:80 "POST /hook/***?token=***"'
    assert record.exc_text is not None and "pw@" not in record.exc_text and "***@h.example" in record.exc_text


def test_daemon_logging_is_redacted_in_both_formats(clean_registry: None) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        for fmt in ("text", "json"):
            out = io.StringIO()
            setup_logging(fmt, "DEBUG", stream=out)
            logging.getLogger("urllib3.connectionpool").debug(
                '%s "GET /feed?api_key=%s HTTP/1.1" 200', "http://u:Pw0rd9@h.example", "K3yK3y")
            logging.getLogger("borderwatch").info("pass", extra=fields(error="https://h.example/?token=T0k9"))
            text = out.getvalue()
            assert "Pw0rd9" not in text and "K3yK3y" not in text and "T0k9" not in text, text
            assert "api_key=***" in text
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


SECRETS = {
    "feed password": "Fe3dPassw0rdZ",
    "feed token": "Fe3dT0kenQ",
    "broken password": "Br0kenPassX",
    "broken api key": "Br0kenApiKeyY",
    "hook password": "H00kPassW",
    "hook path token": "H00kPathT0ken7",
    "hook header": "H00kHeaderV4l",
}


def test_secrets_in_urls_appear_nowhere(
    site: Site, database_url: str, tmp_path: Path, clean_registry: None
) -> None:
    s = SECRETS
    site.add("/news/fentanyl", justice_page("Texas Man Sentenced for Fatal Fentanyl Distribution", FENTANYL))
    site.add(f"/feed?token={s['feed token']}", rss([
        {"title": "Texas Man Sentenced for Fatal Fentanyl Distribution", "link": site.url("/news/fentanyl"),
         "pubDate": rfc822(NOW - 3600)}]), content_type="application/rss+xml")
    host = site.url("").split("://", 1)[1]
    with Webhook() as hook:
        notify = (f"json://hookuser:{s['hook password']}@127.0.0.1:{hook.port}/hook/{s['hook path token']}"
                  f"?+X-Api-Key={s['hook header']}")
        config = crawl_config(tmp_path, database_url, [
            {"name": "feed", "kind": "feed", "url": f"http://reader:{s['feed password']}@{host}/feed?token="
                                                    f"{s['feed token']}"},
            {"name": "broken", "kind": "feed",
             "url": f"http://reader:{s['broken password']}@{host}/missing?api_key={s['broken api key']}"},
        ], watchers=[{"name": "desk", "notify": [notify], "topics": [], "max_age": "30d"}])
        outputs = [bw(config, "-vv", "crawl")]
        hook.wait_for(1)
        assert hook.received and hook.received[0].path.endswith(s["hook path token"])  # really sent
        hook.fail_next(1, 500)
        outputs += [bw(config, "-vv", "crawl", "--no-alerts"), bw(config, "-vv", "alerts", "send"),
                    bw(config, "alerts", "list"), bw(config, "status"), bw(config, "status", "--format", "json"),
                    bw(config, "items", "--format", "json"), bw(config, "-vv", "items")]
    first = outputs[0]
    assert first.returncode == 0, first.stderr
    assert "broken: failed" in first.stderr and "***" in first.stderr  # the error is shown, redacted
    assert "DEBUG" in first.stderr  # -vv really logged the debug lines of Scrapy, apprise, urllib3
    assert "Remote control" not in first.stderr  # Scrapy's code-execution endpoint is never opened
    for proc in outputs:
        for name, secret in s.items():
            assert secret not in proc.stdout, (name, proc.args, proc.stdout)
            assert secret not in proc.stderr, (name, proc.args, proc.stderr)

    db = Database(database_url)
    try:
        with db.read() as session:
            assert session.scalar(select(Pass.error).where(Pass.source == "broken")) is not None
            dumped = 0
            for table in inspect(db.engine).get_table_names():  # every column of every row, as text
                for row in session.execute(text(f'SELECT * FROM "{table}"')).mappings():
                    for col, value in row.items():
                        if value is None:
                            continue
                        dumped += 1
                        for name, secret in s.items():
                            assert secret not in str(value), (name, table, col, value)
            assert dumped > 50
    finally:
        db.engine.dispose()
