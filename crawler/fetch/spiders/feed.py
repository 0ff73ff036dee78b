"""RSS and Atom feeds (feedparser): each entry's page is fetched and extracted."""

from __future__ import annotations

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
from crawler.passes.tally import Count
from pipelines import items as outcome
from pipelines.canonical import canonical_url, strip_tracking
from pipelines.extract import html_to_text
from pipelines.items import FEED_TEXT, Article, Outcome


def _entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            y, mo, d, h, mi, s = value[:6]
            return datetime(y, mo, d, h, mi, s, tzinfo=UTC)  # feedparser normalises to UTC
    return None


def parse_feed(body: bytes) -> tuple[list[tuple[str, dict[str, Any], str]], int, str | None]:
    """Entries of a feed as (link, hints, summary text), the number without a link, and a parse problem."""
    parsed = feedparser.parse(body)
    problem = None
    if not parsed.entries and (parsed.get("bozo") or not parsed.get("version")):
        why = parsed.get("bozo_exception") or "no RSS or Atom content"
        problem = f"not a readable feed: {why!s:.200}"
    entries: list[tuple[str, dict[str, Any], str]] = []
    no_link = 0
    # The channel's title names the publisher (alerts show it when the config gives no `label`).
    site_name = " ".join(str(parsed.feed.get("title") or "").split())[:200] or None
    for entry in parsed.entries:
        link = (entry.get("link") or "").strip()
        if not link:
            no_link += 1
            continue  # (a link that is not http(s) is kept: the spider records it as refused)
        summary = entry.get("summary") or ""
        hints: dict[str, Any] = {
            "title": (entry.get("title") or "").strip() or None,
            "published": _entry_time(entry),
            "author": entry.get("author") or None,
            "site_name": site_name,
        }
        entries.append((link, hints, html_to_text(summary)))
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
        entries, no_link, problem = parse_feed(response.body)
        if problem:
            self.ctx.start_error = f"{response.url}: {problem}"
            yield Outcome(canonical_url(response.url), self.source.name, outcome.FAILED, problem)
            return
        remember_validators(self, response)
        if no_link:
            self.ctx.tally.add(Count.NO_LINK, no_link)
        for link, hints, summary in entries:
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
                if key in self.ctx.known:
                    yield Outcome(key, self.source.name, outcome.KNOWN, "stored already")
                    continue
                yield Article(url=strip_tracking(link), key=key, source=self.source.name, text=summary, final_url=link,
                              authority=FEED_TEXT, **hints)
                continue
            yield self.page_request(link, meta={"hints": {k: v for k, v in hints.items() if v}})
