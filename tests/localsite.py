"""A real local web site for crawl tests and benchmarks: an HTTP server on an ephemeral port.

Pages can be changed between passes; the server honours ETag / If-None-Match and Last-Modified /
If-Modified-Since, counts what it served per path and status, can fail a page N times, redirect,
hang, and serve robots.txt. Page builders model the real justice.gov template (from the corpus).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    validators: bool = True  # send ETag and Last-Modified, answer conditional requests with 304
    fail: list[int] = field(default_factory=list)  # statuses to answer first, one per request
    redirect: str | None = None
    hang: float = 0.0
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'


class Site:
    """The pages of a local site, changeable while it runs."""

    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.hits: Counter[tuple[str, int]] = Counter()  # (path, status) → count
        self.log: list[tuple[float, str, int, str]] = []  # (time, path, status, User-Agent)
        self.api_records: list[dict[str, Any]] = []
        self.api_path: str | None = None
        self.posts: list[tuple[str, str]] = []  # (path, form body) of every POST
        self.lock = threading.Lock()
        self.base = ""

    # -- building ------------------------------------------------------------------------------------------
    def add(self, path: str, body: str | bytes, **kw: Any) -> Page:
        data = body.encode("utf-8") if isinstance(body, str) else body
        page = Page(data, **kw)
        with self.lock:
            self.pages[path] = page
        return page

    def add_post(self, path: str, form: dict[str, str], body: str | bytes, **kw: Any) -> Page:
        """What a POST of ``form`` (application/x-www-form-urlencoded, any order) to ``path`` answers."""
        return self.add(post_key(path, urlencode(form)), body, **kw)

    def change(self, path: str, body: str | bytes) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self.lock:
            page = self.pages[path]
            page.body = data
            page.modified = datetime.now(UTC)

    def url(self, path: str) -> str:
        return self.base + path

    def served(self, path: str, status: int | None = None) -> int:
        return sum(n for (p, s), n in self.hits.items() if p == path and (status is None or s == status))

    def served_prefix(self, prefix: str, status: int) -> int:
        return sum(n for (p, s), n in self.hits.items() if p.startswith(prefix) and s == status)

    def reset_counts(self) -> None:
        with self.lock:
            self.hits.clear()
            self.log.clear()


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str], path: str) -> None:
            with site.lock:
                site.hits[(path, status)] += 1
                site.log.append((time.monotonic(), path, status, self.headers.get("User-Agent", "")))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and status != 304:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            if site.api_path and path == site.api_path:
                self._api(parse_qs(parts.query), path)
                return
            with site.lock:
                page = (site.pages.get(path + "?" + parts.query) if parts.query else None) or site.pages.get(path)
                fail = page.fail.pop(0) if page and page.fail else None
            if page is None:
                self._send(404, b"<html><body><h1>Not found</h1></body></html>",
                           {"Content-Type": "text/html"}, path)
                return
            if page.hang:
                time.sleep(page.hang)
            if fail is not None:
                self._send(fail, b"<html><body>Server error</body></html>", {"Content-Type": "text/html"}, path)
                return
            if page.redirect:
                self._send(301, b"", {"Location": page.redirect}, path)
                return
            headers = {"Content-Type": page.content_type, **page.headers}
            if page.validators:
                lm = format_datetime(page.modified.replace(microsecond=0), usegmt=True)
                headers["ETag"] = page.etag
                headers["Last-Modified"] = lm
                inm = self.headers.get("If-None-Match")
                if inm is not None and inm == page.etag:
                    self._send(304, b"", {"ETag": page.etag}, path)
                    return
            self._send(page.status, page.body, headers, path)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            path = urlsplit(self.path).path
            with site.lock:
                site.posts.append((path, form))
                page = site.pages.get(post_key(path, form))
            if page is None:
                self._send(404, b'{"error": "no such view page"}', {"Content-Type": "application/json"}, path)
                return
            self._send(page.status, page.body, {"Content-Type": page.content_type, **page.headers}, path)

        def _api(self, query: dict[str, list[str]], path: str) -> None:
            page = int(query.get("page", ["0"])[0])
            size = min(50, int(query.get("pagesize", ["20"])[0]))
            with site.lock:
                records = sorted(site.api_records, key=lambda r: _epoch(r.get("changed")), reverse=True)
            chunk = records[page * size:(page + 1) * size]
            body = json.dumps({
                "metadata": {"responseInfo": {"status": 200}, "resultset": {
                    "count": str(len(records)), "pagesize": str(size), "page": page}},
                "results": chunk,
            }).encode()
            self._send(200, body, {"Content-Type": "application/json"}, path)

    return Handler


def post_key(path: str, form: str) -> str:
    """A POST's page key: its path and its form fields, sorted (the order a client sends them in is its own)."""
    return "POST " + path + "?" + urlencode(sorted(parse_qsl(form, keep_blank_values=True)))


def _epoch(value: Any) -> int:
    s = str(value or "0")
    digits = "".join(ch for ch in s.split(">")[1] if ch.isdigit()) if ">" in s else s
    return int(digits or 0)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A crawler that stops reading a too-large page resets the connection: expected, not news.
        pass


@contextmanager
def serve(site: Site, host: str = "127.0.0.1") -> Iterator[Site]:
    """Serve ``site`` on an ephemeral port of ``host`` (another loopback address stands for another machine)."""
    server = _QuietServer((host, 0), _handler(site))
    server.daemon_threads = True
    site.base = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


# -- page builders ----------------------------------------------------------------------------------------
_TEMPLATE_CACHE: dict[str, str] = {}


def _template() -> str:
    """The real justice.gov press-release page (corpus), as a full document."""
    if "t" not in _TEMPLATE_CACHE:
        src = FIXTURES / "justice_gov_page_main.html"
        main = src.read_text(encoding="utf-8")
        _TEMPLATE_CACHE["t"] = main
    return _TEMPLATE_CACHE["t"]


def justice_page(title: str, paragraphs: Sequence[str], date: str = "2026-11-20T12:00:00Z",
                 topics: Sequence[str] = ("Drug Trafficking",), updated: str = "November 20, 2026",
                 charset: str = "utf-8", pad_kb: int = 0) -> str:
    """A press-release page in justice.gov's real template: header, sidebar menus, share widget,
    topics, components and a "Related Content" block around the body."""
    t = _template()
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
    topics_html = "".join(f'<div class="field__item">{html.escape(x)}</div>' for x in topics)
    page = (t.replace("{{TITLE}}", html.escape(title)).replace("{{BODY}}", body)
             .replace("{{DATE}}", date).replace("{{UPDATED}}", updated).replace("{{TOPICS}}", topics_html)
             .replace("{{CHARSET}}", charset))
    if pad_kb:
        # About a third of a real page's weight is markup a reader sees around the article (mega
        # menu, footer link farm, related cards), the rest scripts, styles and settings in <head>.
        page = page.replace("</head>", _head_weight(pad_kb * 1024 * 2 // 3) + "</head>")
        page = page.replace("</footer>", _footer_weight(pad_kb * 1024 // 3) + "</footer>")
    return page


def _footer_weight(size: int) -> str:
    """Navigation a government page repeats on every page: menus of links with text, in lists."""
    parts: list[str] = []
    n = 0
    while sum(map(len, parts)) < size:
        links = "".join(
            f'<li class="usa-footer__secondary-link"><a href="/office/{n}/{i}">Office of Programs {n}-{i}: '
            f"grants, reports and resources</a></li>" for i in range(12))
        parts.append(f'<section class="usa-footer__primary-content"><h4 class="usa-footer__primary-link">'
                     f'Component {n}</h4><ul class="usa-list usa-list--unstyled">{links}</ul>'
                     f"<p>Contact the component {n} press office for media inquiries.</p></section>")
        n += 1
    return "".join(parts)


def _head_weight(size: int) -> str:
    """What makes a government page weigh 60–120 KB: inline settings JSON, CSS, scripts, an icon sprite
    and a mega menu (a 2025 justice.gov page: ~95 KB, of which the article is ~15 KB)."""
    menu = "".join(f'<li class="usa-nav__submenu-item"><a href="/topics/{i}"><span>Topic number {i}</span></a></li>'
                   for i in range(60))
    parts = [f'<nav class="usa-megamenu" hidden><ul>{menu}</ul></nav>'.replace("<nav", "<template><nav")
             .replace("</nav>", "</nav></template>")]
    settings = {"path": {"baseUrl": "/", "currentPath": "node/1"}, "ajaxPageState": {"libraries": "x" * 200},
                "gtm": {"tagId": "GTM-XXXX"}, "views": {str(i): {"view_name": f"view_{i}", "args": "a" * 40}
                                                         for i in range(40)}}
    parts.append('<script type="application/json" data-drupal-selector="drupal-settings-json">'
                 + json.dumps(settings) + "</script>")
    css = "".join(f".usa-c{i}{{margin:{i % 7}px;padding:{i % 5}px;color:#1b1b1b;font-family:Source Sans Pro}}\n"
                  for i in range(300))
    js = "".join(f"function f{i}(a,b){{return a*{i}+b;}}\n" for i in range(400))
    block = 0
    while sum(map(len, parts)) < size:
        parts.append(f"<style>{css}</style>" if block % 2 == 0 else f"<script>{js}</script>")
        block += 1
    return "".join(parts)


def rss(items: Sequence[dict[str, str]], title: str = "Justice News") -> str:
    entries = []
    for it in items:
        link = f"<link>{html.escape(it['link'])}</link>" if it.get("link") else ""
        entries.append(
            f"<item><title>{html.escape(it['title'])}</title>{link}"
            f"<description>{html.escape(it.get('description', ''))}</description>"
            f"<pubDate>{it.get('pubDate', 'Fri, 20 Nov 2026 12:00:00 +0000')}</pubDate>"
            f"<guid isPermaLink=\"false\">{html.escape(it.get('guid', it.get('link', it['title'])))}</guid></item>"
        )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>https://example.org/</link><description>news</description>{''.join(entries)}"
            "</channel></rss>")


def api_record_2024(title: str, url: str, body_paragraphs: Sequence[str], *, date: int, changed: int,
                    number: str = "", topics: Sequence[str] = (), components: Sequence[str] = (),
                    uuid: str = "") -> dict[str, Any]:
    """A DOJ API v1 record in the 2024 format (``<time>`` strings, ``""`` for empty)."""
    def stamp(ts: int) -> str:
        iso = datetime.fromtimestamp(ts, UTC).isoformat()
        return f'<time datetime="{iso}">{ts}</time>\n'
    return {
        "attachment": "", "body": "".join(f"<p>{html.escape(p)}</p>\n" for p in body_paragraphs),
        "changed": stamp(changed), "created": stamp(changed), "date": str(date), "image": "",
        "number": number, "teaser": "", "title": title, "url": url,
        "topic": [{"uuid": f"t{i}", "name": n} for i, n in enumerate(topics)],
        "component": [{"uuid": f"c{i}", "name": n} for i, n in enumerate(components)],
        "uuid": uuid or hashlib.md5(url.encode()).hexdigest(),
    }


def api_record_2020(title: str, url: str, body_paragraphs: Sequence[str], *, date: int, changed: int,
                    components: Sequence[str] = ()) -> dict[str, Any]:
    """The 2020 format as the corpus has it: epoch strings, 'None', Python-repr lists."""
    comps = [{"uuid": f"c{i}", "name": n} for i, n in enumerate(components)]
    return {
        "attachment": "[]", "body": "".join(f"<p>{html.escape(p)}</p>" for p in body_paragraphs),
        "changed": str(changed), "created": str(changed), "date": str(date), "image": "[]",
        "number": "None", "teaser": "None", "title": title, "url": url, "topic": "[]",
        "component": repr(comps), "uuid": hashlib.md5(url.encode()).hexdigest(), "vuuid": "x",
    }


def news_page(headline: str, paragraphs: Sequence[str], outlet: str = "Border Report",
              date: str = "2026-11-21T09:30:00Z") -> str:
    """A news outlet's article page: its own header, navigation, sidebar, newsletter box and footer."""
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
    sidebar = "".join(f'<li><a href="/story/{i}">Most read story number {i} about local politics</a></li>'
                      for i in range(8))
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(headline)} | {outlet}</title>'
        f'<meta property="og:title" content="{html.escape(headline)}">'
        f'<meta property="article:published_time" content="{date}"><meta name="author" content="Staff Reporter">'
        f"</head><body><header><a href='/'>{outlet}</a><nav><a href='/news'>News</a> <a href='/border'>Border</a> "
        f"<a href='/opinion'>Opinion</a> <a href='/subscribe'>Subscribe</a></nav></header>"
        f"<main><article><h1>{html.escape(headline)}</h1><div class='byline'>By Staff Reporter</div>"
        f"<div class='article-body'>{body}</div></article>"
        f"<aside><h2>Most read</h2><ul>{sidebar}</ul><div class='newsletter'>Sign up for our newsletter to get "
        f"the border news every morning in your inbox.</div></aside></main>"
        f"<footer><p>© 2026 {outlet}. All rights reserved.</p><a href='/privacy'>Privacy</a></footer></body></html>"
    )


@contextmanager
def silent_server(host: str = "127.0.0.1") -> Iterator[str]:
    """A server that accepts connections and never answers (no TLS handshake, no HTTP response): what a
    firewall that stalls non-browser clients looks like from the client. Yields its base URL."""
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)  # kept open, never read from nor written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        listener.close()
