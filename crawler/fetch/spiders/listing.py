"""An HTML listing page: CSS selectors for the article links and the next page, a bounded walk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response, TextResponse

from crawler.config import ListingSource
from crawler.fetch.botwall import wall_of
from crawler.fetch.spiders.base import SourceSpider, check_source_response, source_request
from pipelines import items as outcome
from pipelines.canonical import canonical_url
from pipelines.items import Outcome
from pipelines.tally import Count


class ListingSpider(SourceSpider):
    kind = "listing"
    source: ListingSource

    async def start(self) -> AsyncIterator[Any]:
        yield source_request(self, self.source.url, self.parse_listing, depth=1)

    def parse_listing(self, response: Response) -> Iterator[scrapy.Request | Outcome]:
        depth: int = response.meta["depth"]
        if depth > 1:  # only the first listing page decides whether the source works
            wall = wall_of(response)
            if wall or response.status >= 400:
                yield Outcome(canonical_url(response.url), self.source.name,
                              outcome.BLOCKED if wall else outcome.FAILED, wall or f"HTTP {response.status}",
                              response.status)
                return
        else:
            bad = check_source_response(self, response)
            if bad:
                yield bad
                return
        if not isinstance(response, TextResponse):
            self.ctx.start_error = f"{response.url}: not an HTML listing"
            return
        links = response.css(self.source.links)
        if not links and depth == 1:
            self.ctx.tally.add(Count.LISTING_WITHOUT_LINKS)
        for link in links:
            href = link.attrib.get("href") or link.css("a::attr(href)").get()
            if not href:
                self.ctx.tally.add(Count.NO_LINK)
                continue
            yield self.page_request(response.urljoin(href))
        if self.source.next and depth < self.source.max_pages:
            nxt = response.css(self.source.next)
            href = nxt.attrib.get("href") if nxt else None
            href = href or nxt.css("a::attr(href)").get()
            if href:
                yield scrapy.Request(
                    response.urljoin(href), callback=self.parse_listing, meta={"depth": depth + 1},
                    errback=self.on_error,
                )
