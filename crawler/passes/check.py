"""``borderwatch sources check``: read one source now (or a saved page) and show what a pass would store —
the links found, then one article's title, date, language, first lines and topics with evidence — while
storing nothing. This is how a user comes to trust a new source.

Reading the source now runs the source's own spider (same settings, robots.txt, fetch policy, bot-wall
detection) with one difference: of the article links it finds, only the first is fetched, and what the
spider yields goes to a collecting stage instead of the store. The database is never opened.
A saved file is read as what it holds: the source's own document (a feed, a listing page, a sitemap, an
API response) when the source's parser finds entries in it, else an article page.
"""

from __future__ import annotations

import gzip
import io
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from crawler.config import Config
from crawler.fetch.botwall import detect_bot_wall
from pipelines import items as outcome
from pipelines.canonical import canonical_url, host_of, page_address
from pipelines.classify import Classifier, TopicResult
from pipelines.extract import extract
from pipelines.items import Article, Outcome
from pipelines.language import decide_language, primary_tag
from pipelines.timeutil import utcnow
from pipelines.worker import classifier_meta

log = logging.getLogger("borderwatch.check")

# A saved file larger than this (once decompressed) is not a page or a feed.
MAX_FILE = 50 * 1024 * 1024
NOT_FETCHED = "not fetched by sources check (only the first link is)"


class CheckError(Exception):
    """The check cannot start (a file that cannot be read): one line, exit 2."""


@dataclass
class FoundLink:
    url: str
    title: str | None = None
    published: datetime | None = None
    note: str = ""  # why a pass would not store it (older than `since`, refused…)


@dataclass
class Preview:
    """One article as a pass would store it."""

    url: str
    title: str
    published: datetime | None
    language: str | None
    language_from: str  # page | feed | config | detected | unknown
    text: str
    text_from: str  # page | feed | API
    topics: list[TopicResult] = field(default_factory=list)


@dataclass
class CheckReport:
    source: str
    kind: str
    read: str  # the URL read, or the file
    read_as: str = ""  # feed | listing page | sitemap | API response | article page
    links: list[FoundLink] = field(default_factory=list)
    article: Preview | None = None
    problem: str | None = None  # the source itself could not be read (a wall, a failure)
    article_problem: str | None = None  # the article could not be read
    note: str | None = None
    keep: str = "all"  # the source's `keep`: with `matching`, an article without a topic is not stored


# -- one article -----------------------------------------------------------------------------------------
def _language(page: str | None, feed: str | None, hint: str | None, title: str, text: str) -> tuple[str | None, str]:
    return decide_language([(page, "page"), (feed, "feed"), (hint, "config")], title, text)


def preview_page(html: str, url: str, source: Any, classifier: Classifier, *, title: str | None = None,
                 published: datetime | None = None, language: str | None = None, saved: bool = False) -> Preview | str:
    """What a pass stores of an article page (``title``, ``published``, ``language``: the feed's, when
    a feed gave them; ``saved``: a saved file, whose address is only what it says of itself); a string
    says why nothing would be stored."""
    wall = detect_bot_wall(200, html.encode("utf-8", "replace"))
    if wall:
        return f"blocked: {wall}"
    doc = extract(html, url, source.content)
    canonical = doc.canonical if doc.canonical and doc.canonical.startswith(("http://", "https://")) else None
    if canonical and host_of(canonical) != host_of(url):
        # A saved page names its own address: its site's rules apply, whatever host the source reads.
        doc = extract(html, canonical, source.content)
    # The address a pass would store: the page's own canonical link on its site (a saved file has no
    # other address than the one it gives itself).
    url = canonical if saved and canonical else page_address(url, doc.canonical)
    if not doc.text:
        return "no article text on the page"
    final_title = (title or doc.title or "").strip()
    lang, where = _language(doc.language, language, source.language, final_title, doc.text)
    meta = classifier_meta(list(doc.topics), list(doc.components), source.name)
    return Preview(url, final_title, published or doc.published, lang, where, doc.text, "page",
                   classifier.matched(final_title, doc.text, meta))


def preview_text(article: Article, source: Any, classifier: Classifier, text_from: str) -> Preview | str:
    """What a pass stores of an item whose text the feed or the API gave."""
    text = (article.text or "").strip()
    if not text:
        return "no text in the entry"
    title = (article.title or "").strip()
    # A spider fills in the source's `language` itself where the feed or API declares none: say so.
    declared = article.language if primary_tag(article.language) != source.language else None
    lang, where = _language(None, declared, source.language, title, text)
    meta = classifier_meta(article.doj_topics, article.doj_components, source.name)
    return Preview(article.url, title, article.published, lang, where, text, text_from,
                   classifier.matched(title, text, meta))


# -- a saved file ----------------------------------------------------------------------------------------
def read_file(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (``.html.gz`` as saved by crawlers)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckError(f"--file: {path}: no such file") from None
    except OSError as exc:
        raise CheckError(f"--file: {path}: cannot read: {exc.strerror or exc}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(MAX_FILE + 1)
        except (OSError, EOFError) as exc:
            raise CheckError(f"--file: {path}: not a readable gzip file ({exc})") from None
    if len(data) > MAX_FILE:
        raise CheckError(f"--file: {path}: larger than {MAX_FILE // (1024 * 1024)} MB")
    return data


def _decode(data: bytes) -> str:
    """A saved page's text: UTF-8 when it decodes as such (crawlers save pages re-encoded as UTF-8 while
    their meta tag still names the original charset), else what the page declares or w3lib sniffs."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        from w3lib.encoding import html_to_unicode

        return html_to_unicode(None, data)[1]


def check_file(config: Config, source: Any, path: Path, classifier: Classifier) -> CheckReport:
    """Read a saved file as ``source`` would read what it holds, storing nothing: the source's own document
    when its spider finds entries in it (read by the spider's own callback), else an article page."""
    data = read_file(path)
    report = CheckReport(source.name, source.kind, str(path), keep=getattr(source, "keep", "all"))
    if _as_source_document(report, config, source, data, classifier):
        return report
    report.read_as = "article page"
    text = _decode(data)
    if not _looks_like_html(text):
        report.article_problem = (f"neither a {_READ_AS.get(source.kind, source.kind)} this source reads nor an "
                                  "HTML page")
        return report
    result = preview_page(text, source.url, source, classifier, saved=True)
    if isinstance(result, str):
        report.article_problem = result
    else:
        report.article = result
        report.links = [FoundLink(result.url, result.title, result.published)]
    return report


_READ_AS = {"doj_api": "API response", "feed": "feed", "listing": "listing page", "sitemap": "sitemap",
            "gc_news": "GC News API answer", "drupal_views": "Drupal views answer",
            "embedded_json": "listing page with embedded JSON"}


def _looks_like_html(text: str) -> bool:
    head = text[:4096].lower()
    return "<html" in head or "<body" in head or "<p" in head or "<div" in head or "<article" in head


def _spider(config: Config, source: Any, *, offline: bool = False) -> Any:
    """The source's own spider class, made a check spider, and its bounded source and context.
    ``offline`` (a saved file): every entry is shown, however old (`since` bounds what a pass fetches)."""
    from crawler.passes.context import PassContext
    from crawler.passes.run import _spider_class

    # One listing page, one API page: a check shows what the source gives, it does not backfill.
    bounded = source.model_copy(update={"max_pages": 1}) if "max_pages" in type(source).model_fields else source
    if offline:
        bounded = bounded.model_copy(update={"since": datetime(1970, 1, 1, tzinfo=UTC)})
    ctx = PassContext(source=source.name, now=utcnow(), since=bounded.since, revisit=config.crawl.revisit,
                      first_pass=True, page_attempts=config.crawl.page_attempts)
    return _check_spider(_spider_class(bounded, config)), bounded, ctx


async def _first_request(spider: Any) -> Any:
    async for request in spider.start():
        return request
    return None


def _as_source_document(report: CheckReport, config: Config, source: Any, data: bytes,
                        classifier: Classifier) -> bool:
    """Fill ``report`` when ``data`` is the source's own document: the spider's callback for the source's
    first request, given the file as its answer, finds entries in it. Else False (nothing is fetched)."""
    import asyncio

    from scrapy.http import TextResponse

    cls, bounded, ctx = _spider(config, source, offline=True)
    spider = cls(source=bounded, context=ctx)
    spider.offline = True
    try:
        request = asyncio.run(_first_request(spider))
    except Exception:  # a kind whose start needs more than its config
        log.debug("sources check: no first request", exc_info=True)
        return False
    if request is None or request.callback is None:
        return False
    try:
        data.decode("utf-8")
        encoding: str | None = "utf-8"
    except UnicodeDecodeError:
        encoding = None
    response = TextResponse(url=request.url, body=data, request=request, encoding=encoding,
                            headers={"Content-Type": "text/html"} if encoding is None else None)
    try:
        spider.collected = [i for i in (request.callback(response) or []) if not hasattr(i, "callback")]
    except Exception:  # what the spider cannot read is not its document
        log.debug("sources check: the source's callback refused the file", exc_info=True)
        return False
    if ctx.start_error:
        return False
    _gather(report, spider)
    if not report.links:
        return False
    report.read_as = _READ_AS.get(source.kind, source.kind)
    articles = [i for i in spider.collected if isinstance(i, Article)]
    if articles:
        _preview_first_text(report, articles, source, classifier, "API" if source.kind == "doj_api" else "feed")
    else:
        report.note = "article pages are read only when the source is checked live (without --file)"
    return True


def _gather(report: CheckReport, spider: Any) -> None:
    """The links a spider found: the pages it would fetch, the items it gave with their text, the links it
    would not store (older than `since`, refused)."""
    links = list(spider.links)
    listed = {canonical_url(link.url) for link in links}
    for item in spider.collected:
        if isinstance(item, Article) and item.key not in listed:
            links.append(FoundLink(item.url, item.title, item.published))
            listed.add(item.key)
        elif isinstance(item, Outcome) and item.status in (outcome.OLD, outcome.REFUSED) and item.url not in listed:
            links.append(FoundLink(item.url, note=item.detail or item.status))
            listed.add(item.url)
    report.links = links


def _preview_first_text(report: CheckReport, articles: list[Article], source: Any, classifier: Classifier,
                        text_from: str) -> None:
    for article in articles:
        result = preview_text(article, source, classifier, text_from)
        if isinstance(result, Preview):
            report.article = result
            return
    if articles:
        report.article_problem = f"no entry carries text of its own ({text_from})"


# -- the source, now ---------------------------------------------------------------------------------------
class CollectStage:
    """The check's only item stage: keeps what the spider yields. Nothing is extracted here, nothing stored."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> CollectStage:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        self.crawler.spider.collected.append(item)
        return item


def _check_spider(base: type[Any]) -> type[Any]:
    """``base`` (a source's spider class) that fetches only the first article link it finds."""
    import scrapy

    class CheckSpider(base):  # type: ignore[misc,valid-type]
        custom_settings: ClassVar[dict[str, Any]] = {
            **(base.custom_settings or {}), "ITEM_PIPELINES": {"crawler.passes.check.CollectStage": 100}}

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.collected: list[Any] = []
            self.links: list[FoundLink] = []
            self.fetching: str | None = None
            self.offline = False  # reading a saved file: no page is requested at all

        def page_request(self, url: str, meta: dict[str, Any] | None = None) -> Any:
            hints = (meta or {}).get("hints", {})
            self.links.append(FoundLink(url, hints.get("title"), hints.get("published")))
            if self.fetching is None and not self.offline:
                request = super().page_request(url, meta)
                if isinstance(request, scrapy.Request):
                    self.fetching = request.meta["key"]
                return request
            return Outcome(canonical_url(url), self.source.name, outcome.KNOWN, NOT_FETCHED)

    CheckSpider.__name__ = f"Check{base.__name__}"
    return CheckSpider


def check_live(config: Config, source: Any, classifier: Classifier, log_level: str = "WARNING") -> CheckReport:
    """Read ``source`` now with its own spider, fetching one article page; nothing is stored."""
    from scrapy.crawler import CrawlerProcess

    from crawler.passes.run import scrapy_settings

    cls, bounded, ctx = _spider(config, source)
    report = CheckReport(source.name, source.kind, source.url, _READ_AS.get(source.kind, source.kind),
                         keep=getattr(source, "keep", "all"))
    process = CrawlerProcess(scrapy_settings(config, log_level))
    for name in ("scrapy", "twisted", "py.warnings", "protego", "filelock"):
        logging.getLogger(name).setLevel("DEBUG" if log_level == "DEBUG" else "CRITICAL")
    crawler = process.create_crawler(cls)
    process.crawl(crawler, source=bounded, context=ctx)
    process.start()
    spider: Any = crawler.spider
    if ctx.start_error:
        report.problem = ctx.start_error
    _gather(report, spider)
    articles = [i for i in spider.collected if isinstance(i, Article)]
    page = next((a for a in articles if a.html is not None), None)
    if page is not None:
        result = preview_page(page.html or "", page.final_url or page.url, source, classifier,
                              title=page.title, published=page.published, language=page.language)
        if isinstance(result, str):
            report.article_problem = result
        else:
            report.article = result
        return report
    if articles:
        _preview_first_text(report, articles, source, classifier, "API" if source.kind == "doj_api" else "feed")
        return report
    fetched = next((i for i in spider.collected if isinstance(i, Outcome) and i.url == spider.fetching), None)
    if fetched is not None:
        report.article_problem = f"{fetched.status}: {fetched.detail}".rstrip(": ")
    return report


# -- the report ------------------------------------------------------------------------------------------
LINKS_SHOWN = 20
TEXT_LINES = 8
LINE_WIDTH = 200


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


_FROM = {"page": "declared by the page", "feed": "declared by the feed", "config": "the source's `language`",
         "detected": "detected from the text", "unknown": "not declared, too little text to detect"}


def _language_from(where: str) -> str:
    if where.startswith("detected ("):  # detected (the page says en)
        return f"detected from the text; {where.removeprefix('detected (').rstrip(')')}"
    return _FROM.get(where, where)


def render(report: CheckReport, label: str | None = None) -> list[str]:
    lines = [f"source:    {report.source} ({report.kind}){f' — {label}' if label else ''}",
             f"read:      {report.read}" + (f" (as {report.read_as})" if report.read_as else "")]
    if report.problem:
        lines.append(f"problem:   {report.problem}")
    lines.append(f"links:     {len(report.links)} found")
    for i, link in enumerate(report.links[:LINKS_SHOWN], 1):
        when = link.published.strftime("%Y-%m-%d %H:%M") if link.published else ""
        title = f"  {link.title}" if link.title else ""
        note = f"  [{link.note}]" if link.note and link.note != NOT_FETCHED else ""
        lines.append(f"  {i:>2}. {when:16}{title}  <{link.url}>{note}".rstrip())
    if len(report.links) > LINKS_SHOWN:
        lines.append(f"      … and {len(report.links) - LINKS_SHOWN} more")
    if report.note:
        lines.append(f"note:      {report.note}")
    a = report.article
    if a is not None:
        text_lines = a.text.splitlines()
        lines += [
            f"article:   <{a.url}> (text from the {a.text_from})",
            f"  title:     {a.title or '(none)'}",
            f"  published: {_when(a.published)}",
            f"  language:  {a.language or 'unknown'} ({_language_from(a.language_from)})",
            f"  text:      {len(a.text):,} characters, {len(text_lines)} lines; the first lines:",
        ]
        for line in text_lines[:TEXT_LINES]:
            lines.append(f"    | {line if len(line) <= LINE_WIDTH else line[:LINE_WIDTH - 1] + '…'}")
        if a.topics:
            lines.append("  topics:")
            for t in a.topics:
                lines.append(f"    {t.topic}  score {t.score:.2f}")
                for e in t.evidence:
                    lines.append(f"      [{e.where}] \"{e.phrase}\" — {e.sentence}")
        elif report.keep == "matching":
            lines.append("  topics:    none (this source keeps only items that match a topic: a pass counts "
                         "this one as unmatched and does not store it)")
        else:
            lines.append("  topics:    none")
    elif report.article_problem:
        lines.append(f"article:   {report.article_problem}")
    lines.append("nothing was stored (sources check never writes to the database)")
    return lines
