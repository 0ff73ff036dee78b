"""What every source spider shares: the seen-check, conditional GETs, bot-wall detection, error records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import DNSLookupError, TCPTimedOutError, TimeoutError
from twisted.python.failure import Failure

from crawler.config import SourceConfig
from crawler.fetch.botwall import UNREACHABLE, wall_of
from crawler.fetch.policy import RefusedRequest, scheme_refusal
from crawler.passes.context import PassContext, PassServices
from pipelines import items as outcome
from pipelines.canonical import canonical_url, strip_tracking
from pipelines.items import Article, Outcome, RetryState
from pipelines.redact import redact_url
from pipelines.tally import Count

try:  # the name changed across Twisted/Scrapy versions
    from twisted.web._newclient import ResponseNeverReceived
except ImportError:  # pragma: no cover
    ResponseNeverReceived = Exception  # type: ignore[misc,assignment]


class SourceSpider(scrapy.Spider):
    """A spider for one configured source. Subclasses implement ``start`` and their parsing."""

    kind = ""

    def __init__(self, source: SourceConfig, context: PassContext, services: PassServices | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name=source.name, **kwargs)
        self.source = source
        self.ctx = context
        # What the item stages use (crawler.fetch.stages); None when the spider runs without them
        # (``sources check`` collects what it yields instead).
        self.services = services
        self._retries_scheduled = False

    @classmethod
    def settings_for(cls, source: SourceConfig, delay: float) -> dict[str, Any]:
        """Scrapy settings this kind of source requires beyond the source's own (its delay, its networks)."""
        return {}

    async def start(self) -> AsyncIterator[Any]:  # pragma: no cover - every kind overrides it
        raise NotImplementedError
        yield

    # -- article pages -------------------------------------------------------------------------------
    def page_request(self, url: str, meta: dict[str, Any] | None = None) -> scrapy.Request | Outcome:
        """A request for an article page, or an Outcome when the seen-check says not to fetch it."""
        refusal = scheme_refusal(url)
        if refusal:  # file:, data:, ftp:, javascript:… are never fetched: recorded, not requested
            return Outcome(record_key(url), self.source.name, outcome.REFUSED, refusal)
        key = canonical_url(url)
        headers: dict[str, str] = {}
        if key in self.ctx.queued:  # the same article under another link variant (tracking, www…)
            return Outcome(key, self.source.name, outcome.KNOWN, "already requested in this pass")
        if self.ctx.read_unmatched(key) and key not in self.ctx.known:
            return Outcome(key, self.source.name, outcome.KNOWN, "read before; matched no topic")
        retry = self.ctx.retry_state(key) if key not in self.ctx.known else None
        if retry is not None:  # failed or blocked before: tried again once its backoff has run out
            wait = self.ctx.retry_wait(key)
            if wait is not None:
                return Outcome(key, self.source.name, outcome.GIVEN_UP if "given up" in wait else outcome.WAITING,
                               wait)
            if retry.etag:
                headers["If-None-Match"] = retry.etag
            if retry.last_modified:
                headers["If-Modified-Since"] = retry.last_modified
        self.ctx.queued.add(key)
        if key in self.ctx.known:  # stored under this URL, or redirected from it
            page = self.ctx.revisit_due(key)
            if page is None:
                return Outcome(key, self.source.name, outcome.KNOWN, "stored; not due a revisit")
            if page.etag:
                headers["If-None-Match"] = page.etag
            if page.last_modified:
                headers["If-Modified-Since"] = page.last_modified
        return scrapy.Request(
            url,
            callback=self.parse_page,
            errback=self.on_error,
            headers=headers,
            meta={**(meta or {}), "key": key, "fetch_url": url, "retry": retry},
            dont_filter=False,
        )

    def parse_page(self, response: Response) -> Iterator[Article | Outcome]:
        key: str = response.meta["key"]
        fetch_url: str = response.meta.get("fetch_url") or response.url
        retry: RetryState | None = response.meta.get("retry")
        if response.status == 304:
            if retry is not None:  # the bot wall (or error page) it answered last time, unchanged
                yield Outcome(key, self.source.name, retry.status, "unchanged since the last try (HTTP 304)", 304,
                              fetch_url=fetch_url, etag=retry.etag, last_modified=retry.last_modified)
                return
            yield Outcome(key, self.source.name, outcome.NOT_MODIFIED, http_status=304)
            return
        wall = wall_of(response)
        if wall:
            # Its validators, so the next try is a conditional request that costs the site nothing.
            yield Outcome(key, self.source.name, outcome.BLOCKED, wall, response.status, fetch_url=fetch_url,
                          etag=_header(response, b"ETag"), last_modified=_header(response, b"Last-Modified"))
            return
        if response.status >= 400:
            yield Outcome(key, self.source.name, outcome.FAILED, f"HTTP {response.status}", response.status,
                          fetch_url=fetch_url)
            return
        if not isinstance(response, TextResponse):
            yield Outcome(key, self.source.name, outcome.NO_TEXT, "not an HTML page", response.status)
            return
        hints: dict[str, Any] = response.meta.get("hints", {})
        if self.source.language and not hints.get("language"):
            hints = {**hints, "language": self.source.language}
        final = canonical_url(response.url)
        yield Article(
            # The address that opens (refined by the page's own canonical link at extraction); the
            # key dedupes. Neither is the other: a key need not answer on the web.
            url=strip_tracking(response.url),
            key=final,
            link=key if final != key else None,
            source=self.source.name,
            html=response.text,
            final_url=response.url,
            content=self.source.content,
            keep=self.source.keep,
            etag=_header(response, b"ETag"),
            last_modified=_header(response, b"Last-Modified"),
            **hints,
        )

    def revisit_known(self) -> Iterator[scrapy.Request | Outcome]:
        """Conditional requests for this source's recent pages: an edit shows even if the feed did not change."""
        for url in self.ctx.due_revisits(self.source.name):
            yield self.page_request(url)

    # -- failures -------------------------------------------------------------------------------------
    def on_error(self, failure: Failure) -> Outcome:
        request = failure.request  # type: ignore[attr-defined]
        key = request.meta.get("key") or record_key(request.url)
        status, detail, http = describe_failure(failure)
        return Outcome(key, self.source.name, status, detail, http, fetch_url=request.meta.get("fetch_url"))

    # -- retries of failed and blocked pages ----------------------------------------------------------
    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SourceSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.retry_due_pages, signal=signals.spider_idle)
        return spider  # type: ignore[no-any-return]

    def retry_due_pages(self) -> None:
        """Once the source's own walk is done: the failed and blocked pages whose backoff has run out are tried
        again, whether or not the feed still lists them or answered 304."""
        if self._retries_scheduled or self.crawler.engine is None:
            return
        self._retries_scheduled = True
        scheduled = 0
        for url in self.ctx.due_retries(self.source.name):
            request = self.page_request(url)
            if isinstance(request, scrapy.Request):
                self.crawler.engine.crawl(request)
                scheduled += 1
        if scheduled:
            self.ctx.tally.add(Count.RETRIED, scheduled)
            raise DontCloseSpider


def describe_failure(failure: Failure) -> tuple[str, str, int | None]:
    """(outcome status, detail, HTTP status) for a failed request."""
    if failure.check(HttpError):
        resp = failure.value.response  # type: ignore[union-attr]
        return outcome.FAILED, f"HTTP {resp.status}", resp.status
    if failure.check(RefusedRequest):
        return outcome.REFUSED, str(failure.value), None
    if failure.check(IgnoreRequest):
        msg = str(failure.value)
        if "robots.txt" in msg:
            return outcome.ROBOTS, "disallowed by robots.txt", None
        if "DOWNLOAD_MAXSIZE" in msg:  # a compressed body that grew past the limit while decompressed
            return outcome.TOO_LARGE, "larger than the page size limit (crawl.max_page_size) once decompressed", None
        return outcome.FAILED, msg or "ignored", None
    text = str(failure.value)
    if "larger than download max size" in text or "max size" in text or failure.check(
        _cancelled_errors()
    ):
        return outcome.TOO_LARGE, "larger than the page size limit (crawl.max_page_size)", None
    if failure.check(TimeoutError, TCPTimedOutError, *_scrapy_errors("DownloadTimeoutError")):
        request = getattr(failure, "request", None)  # Scrapy sets it on a download's failure
        tries = 1 + int(request.meta.get("retry_times", 0) if request is not None else 0)
        if tries >= 2:
            # No answer on any try: the host stalls this client (www.canada.ca's firewall does so to every
            # client whose TLS fingerprint is not a browser's). Recorded as what it is, never got around.
            return outcome.BLOCKED, (f"{UNREACHABLE}: no answer to {tries} tries (the connection or TLS "
                                     "handshake hangs until the timeout)"), None
        return outcome.FAILED, "timed out", None
    if failure.check(DNSLookupError, *_scrapy_errors("CannotResolveHostError")):
        return outcome.FAILED, "DNS lookup failed", None
    if failure.check(ResponseNeverReceived):
        return outcome.FAILED, "connection lost before a response", None
    name = failure.type.__name__ if failure.type else "error"
    return outcome.FAILED, f"{name}: {text}"[:300], None


def record_key(url: str) -> str:
    """The URL a page's outcome is recorded under: its canonical form, or, for a URL that is not http(s)
    (a refused ``file:`` link), the link itself, credentials hidden and bounded."""
    if scheme_refusal(url) is None:
        return canonical_url(url)
    return redact_url(url.strip())[:500]


def _scrapy_errors(*names: str) -> tuple[type[BaseException], ...]:
    """The download exceptions Scrapy 2.14+ raises in place of Twisted's (absent from older Scrapy)."""
    import scrapy.exceptions

    return tuple(e for n in names if isinstance(e := getattr(scrapy.exceptions, n, None), type))


def _cancelled_errors() -> tuple[type[BaseException], ...]:
    from twisted.internet.defer import CancelledError

    errors: list[type[BaseException]] = [CancelledError]
    try:
        from scrapy.exceptions import DownloadCancelledError

        errors.append(DownloadCancelledError)
    except ImportError:  # pragma: no cover - older Scrapy
        pass
    return tuple(errors)


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def remember_validators(spider: SourceSpider, response: Response) -> None:
    """Keep the source URL's ETag / Last-Modified for the next pass's conditional request."""
    spider.ctx.new_feed_etag = _header(response, b"ETag")
    spider.ctx.new_feed_last_modified = _header(response, b"Last-Modified")


def source_request(
    spider: SourceSpider, url: str, callback: Callable[[Response], Iterator[object]], *, conditional: bool = False,
    **meta: Any,
) -> scrapy.Request:
    """A request for the source's own URL (a feed, an API page, a listing), with start-failure handling."""
    url = without_userinfo(url)  # its credentials travel as HTTP Basic auth (crawler.passes.run)
    headers: dict[str, str] = {}
    if conditional:
        if spider.ctx.feed_etag:
            headers["If-None-Match"] = spider.ctx.feed_etag
        if spider.ctx.feed_last_modified:
            headers["If-Modified-Since"] = spider.ctx.feed_last_modified
    return scrapy.Request(
        url, callback=callback, errback=lambda f: _start_failed(spider, f), headers=headers,
        meta={"source_url": True, **meta}, dont_filter=True,
    )


def without_userinfo(url: str) -> str:
    """``https://user:pass@host/feed`` → ``https://host/feed``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _start_failed(spider: SourceSpider, failure: Failure) -> Outcome:
    status, detail, http = describe_failure(failure)
    request = failure.request  # type: ignore[attr-defined]
    if spider.ctx.start_error is None:
        spider.ctx.start_error = f"{request.url}: {detail}"
        spider.ctx.start_blocked = status == outcome.BLOCKED
    return Outcome(record_key(request.url), spider.source.name, status, detail, http)


def check_source_response(spider: SourceSpider, response: Response) -> Outcome | None:
    """An Outcome when the source's own URL answered with a bot wall or an error (the pass fails)."""
    wall = wall_of(response)
    key = canonical_url(response.url)
    if wall:
        spider.ctx.start_error = f"{response.url}: {wall}"
        spider.ctx.start_blocked = True
        return Outcome(key, spider.source.name, outcome.BLOCKED, wall, response.status)
    if response.status >= 400:
        spider.ctx.start_error = f"{response.url}: HTTP {response.status}"
        return Outcome(key, spider.source.name, outcome.FAILED, f"HTTP {response.status}", response.status)
    return None
