"""Sitemaps and sitemap indexes (news sitemaps included), bounded by ``since`` and ``max_pages``; pages whose URL
matches one of ``exclude`` (a sponsored section) are not fetched."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import scrapy
from scrapy.http import Response
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap

from crawler.config import SitemapSource
from crawler.fetch.botwall import wall_of
from crawler.fetch.spiders.base import SourceSpider, check_source_response, remember_validators, source_request
from pipelines import items as outcome
from pipelines.canonical import canonical_url
from pipelines.extract import parse_datetime
from pipelines.items import Outcome
from pipelines.tally import Count


def _body(response: Response) -> bytes:
    body = response.body
    if body[:2] == b"\x1f\x8b":
        try:
            return gunzip(body, max_size=50 * 1024 * 1024)
        except OSError:
            return b""
    return body


def entry_date(entry: dict[str, Any]) -> datetime | None:
    news = entry.get("news")
    if isinstance(news, dict) and news.get("publication_date"):
        return parse_datetime(str(news["publication_date"]))
    return parse_datetime(entry.get("lastmod"))


class SitemapSpider(SourceSpider):
    kind = "sitemap"
    source: SitemapSource

    async def start(self) -> AsyncIterator[Any]:
        self._queued = 0
        self._exclude = [re.compile(p) for p in self.source.exclude]
        # Conditional, like a feed: an unchanged sitemap (a site bumps lastmod when a page changes)
        # costs one 304.
        yield source_request(self, self.source.url, self.parse_sitemap, conditional=True, root=True)

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request | Outcome]:
        if response.meta.get("root"):
            if response.status == 304:
                self.ctx.tally.add(Count.SITEMAP_NOT_MODIFIED)
                yield from self.revisit_known()
                return
            bad = check_source_response(self, response)
            if bad:
                yield bad
                return
            remember_validators(self, response)
        else:
            wall = wall_of(response)
            if wall or response.status >= 400:  # a child sitemap that is walled or failed
                yield Outcome(canonical_url(response.url), self.source.name,
                              outcome.BLOCKED if wall else outcome.FAILED, wall or f"HTTP {response.status}",
                              response.status)
                return
        try:
            sitemap = Sitemap(_body(response))
        except Exception as exc:  # lxml raises several kinds for a broken document
            if response.meta.get("root"):
                self.ctx.start_error = f"{response.url}: not a readable sitemap ({exc})"
            yield Outcome(canonical_url(response.url), self.source.name, outcome.FAILED, "not a sitemap")
            return
        entries = sorted(sitemap, key=lambda e: str(e.get("lastmod") or ""), reverse=True)
        for entry in entries:
            loc = entry.get("loc")
            if not loc:
                continue
            when = entry_date(entry)
            if when is not None and when < self.ctx.since:
                continue  # older than `since` (and, for an index, a child sitemap not touched since)
            if sitemap.type == "sitemapindex":
                yield scrapy.Request(loc, callback=self.parse_sitemap, errback=self.on_error)
                continue
            if any(p.search(loc) for p in self._exclude):
                self.ctx.tally.add(Count.EXCLUDED)
                continue
            if self._queued >= self.source.max_pages:
                self.ctx.max_pages_reached = True
                return
            request = self.page_request(loc)
            if isinstance(request, scrapy.Request):
                self._queued += 1
                if when is not None:
                    request.meta["hints"] = {"published": when}
            yield request
