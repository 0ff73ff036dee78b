"""RSS and Atom feeds (feedparser): each entry's page is fetched and extracted, unless the entry carries the
whole article (``content:encoded``, as the White House's feeds do): then it is stored from the feed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import feedparser
import scrapy
from scrapy.http import Response

from crawler.config import FeedSource
from crawler.fetch.policy import scheme_refusal
from crawler.fetch.spiders.base import (
    SourceSpider,
    check_source_response,
    record_key,
    remember_validators,
    source_request,
)
from pipelines import items as outcome
from pipelines.canonical import canonical_url, strip_tracking
from pipelines.extract import html_to_text
from pipelines.items import FEED_TEXT, PAGE_TEXT, Article, Outcome
from pipelines.language import primary_tag
from pipelines.tally import Count

# A feed's full-content entry shorter than this is a teaser, not an article.
FULL_TEXT_MIN_CHARS = 400
# How a cut-off entry ends: an ellipsis, a bracketed one, a "read more" link (en, es, fr).
_CUT = re.compile(
    r"(\.\.\.|…|\[…\]|\[\.\.\.\]|\b(read more|continue reading|keep reading|leer más|seguir leyendo|"
    r"lire la suite|en savoir plus)\W*)$", re.IGNORECASE)
# WordPress appends this line to every complete post in its feeds: not part of the article.
_WP_FOOTER = re.compile(r"\n?The post .{1,400} appeared first on .{1,200}\.?$")


def full_text(entry: Any) -> str | None:
    """The entry's whole article from its ``content:encoded`` (Atom ``content``), or None when it has none or
    what it has is cut short."""
    best = ""
    for content in entry.get("content") or []:
        if str(content.get("type", "text/html")).startswith(("text/html", "application/xhtml", "text/plain")):
            value = str(content.get("value") or "")
            if len(value) > len(best):
                best = value
    if not best:
        return None
    text = _WP_FOOTER.sub("", html_to_text(best)).strip()
    if len(text) < FULL_TEXT_MIN_CHARS or _CUT.search(text):
        return None
    return text



def _entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            y, mo, d, h, mi, s = value[:6]
            return datetime(y, mo, d, h, mi, s, tzinfo=UTC)  # feedparser normalises to UTC
    return None


def parse_feed(body: bytes) -> tuple[list[tuple[str, dict[str, Any], str]], int, str | None]:
    """Entries of a feed as (link, hints, summary text), the number without a link, and a parse problem."""
    entries, no_link, problem = read_feed(body)
    return [(link, hints, summary) for link, hints, summary, _ in entries], no_link, problem


def read_feed(body: bytes) -> tuple[list[tuple[str, dict[str, Any], str, str | None]], int, str | None]:
    """Entries of a feed as (link, hints, summary text, full article text or None), the number without a
    link, and a parse problem."""
    parsed = feedparser.parse(body)
    problem = None
    if not parsed.entries and (parsed.get("bozo") or not parsed.get("version")):
        why = parsed.get("bozo_exception") or "no RSS or Atom content"
        problem = f"not a readable feed: {why!s:.200}"
    entries: list[tuple[str, dict[str, Any], str, str | None]] = []
    no_link = 0
    # The channel's title names the publisher (alerts show it when the config gives no `label`).
    site_name = " ".join(str(parsed.feed.get("title") or "").split())[:200] or None
    for entry in parsed.entries:
        link = (entry.get("link") or "").strip()
        if not link:
            no_link += 1
            continue  # (a link that is not http(s) is kept: the spider records it as refused)
        summary = entry.get("summary") or ""
        # An entry's own xml:lang (Atom), else the channel's <language> / xml:lang.
        declared = [(entry.get(k) or {}).get("language") for k in ("title_detail", "summary_detail")]
        language = next((tag for v in [*declared, parsed.feed.get("language")] if (tag := primary_tag(v))), None)
        hints: dict[str, Any] = {
            "title": (entry.get("title") or "").strip() or None,
            "published": _entry_time(entry),
            "author": entry.get("author") or None,
            "site_name": site_name,
            "language": language,
        }
        entries.append((link, hints, html_to_text(summary), full_text(entry)))
    return entries, no_link, problem


class FeedSpider(SourceSpider):
    kind = "feed"
    source: FeedSource

    async def start(self) -> AsyncIterator[Any]:
        yield source_request(self, self.source.url, self.parse_feed, conditional=True)

    def parse_feed(self, response: Response) -> Iterator[Article | Outcome | scrapy.Request]:
        if response.status == 304:
            self.ctx.tally.add(Count.FEED_NOT_MODIFIED)
            if self.source.fetch_pages:
                yield from self.revisit_known()
            return
        bad = check_source_response(self, response)
        if bad:
            yield bad
            return
        entries, no_link, problem = read_feed(response.body)
        if problem:
            self.ctx.start_error = f"{response.url}: {problem}"
            yield Outcome(canonical_url(response.url), self.source.name, outcome.FAILED, problem)
            return
        remember_validators(self, response)
        if no_link:
            self.ctx.tally.add(Count.NO_LINK, no_link)
        for link, hints, summary, article in entries:
            if self.source.language and not hints.get("language"):
                hints["language"] = self.source.language
            refusal = scheme_refusal(link)
            if refusal:  # file:, data:, javascript:… never fetched nor kept, but recorded
                yield Outcome(record_key(link), self.source.name, outcome.REFUSED, refusal)
                continue
            key = canonical_url(link)
            published = hints.get("published")
            if self.ctx.first_pass and published and published < self.ctx.since:
                yield Outcome(key, self.source.name, outcome.OLD, "published before `since`")
                continue
            if not self.source.fetch_pages:
                if key in self.ctx.known or self.ctx.read_unmatched(key):
                    yield Outcome(key, self.source.name, outcome.KNOWN, "stored already")
                    continue
                yield Article(url=strip_tracking(link), key=key, source=self.source.name, text=article or summary,
                              final_url=link, authority=PAGE_TEXT if article else FEED_TEXT, keep=self.source.keep,
                              **hints)
                continue
            if article and self.source.full_text:
                # The feed carries the whole article: stored from it, the page not fetched. A stored one goes
                # to the store again, which compares it (an edit in the feed is a revision, like a page's).
                if self.ctx.read_unmatched(key) and key not in self.ctx.known:
                    yield Outcome(key, self.source.name, outcome.KNOWN, "read before; matched no topic")
                    continue
                if key in self.ctx.queued:
                    continue
                self.ctx.queued.add(key)
                if key not in self.ctx.known:
                    self.ctx.tally.add(Count.FROM_FEED)
                yield Article(url=strip_tracking(link), key=key, source=self.source.name, text=article, final_url=link,
                              authority=PAGE_TEXT, keep=self.source.keep, **hints)
                continue
            yield self.page_request(link, meta={"hints": {k: v for k, v in hints.items() if v}})
