"""A Drupal view's listing read through ``/views/ajax``: what the page's "load more" button POSTs.

The Prime Minister of Canada's news (pm.gc.ca) is listed this way: ``POST /views/ajax`` with
``view_name=news&view_display_id=page_1&page=N`` answers Drupal AJAX commands (a JSON array), whose ``insert``
commands carry the view's HTML. In it, ``items`` selects one listed item, ``links`` its article link and
``dates`` its ``time[datetime]``. The walk goes on to the next page while a page brings something new (and
within ``since`` on the first pass), ``max_pages`` at most; article pages are fetched and extracted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from parsel import Selector
from scrapy.http import Response

from crawler.config import DrupalViewsSource
from crawler.fetch.spiders.base import SourceSpider, _start_failed, check_source_response, without_userinfo
from pipelines import items as outcome
from pipelines.canonical import canonical_url
from pipelines.extract import parse_datetime
from pipelines.items import Outcome
from pipelines.tally import Count


def view_html(body: bytes) -> str | None:
    """The HTML of a views/ajax answer: its ``insert`` commands' data joined (or the body, if it is HTML)."""
    text = body.decode("utf-8", "replace")
    stripped = text.lstrip()
    if not stripped.startswith(("[", "{")):
        return text if "<" in text else None
    try:
        data = json.loads(stripped)
    except ValueError:
        return None
    commands = data if isinstance(data, list) else [data]
    parts = [c["data"] for c in commands
             if isinstance(c, dict) and isinstance(c.get("data"), str) and c.get("command") in ("insert", None)]
    return "".join(parts) if parts else ""


def view_items(html: str, items: str, links: str, dates: str | None) -> list[tuple[str, str | None, str | None]]:
    """(href, datetime attribute, title) of each listed item that has a link."""
    out = []
    for row in Selector(text=html).css(items):
        link = row.css(links)
        href = link.attrib.get("href") if link else None
        if not href:
            continue
        when = row.css(dates).attrib.get("datetime") if dates and row.css(dates) else None
        title = " ".join(" ".join(link.css("::text").getall()).split()) or None
        out.append((href, when, title))
    return out


class DrupalViewsSpider(SourceSpider):
    kind = "drupal_views"
    source: DrupalViewsSource

    def _request(self, page: int, first: bool) -> scrapy.FormRequest:
        s = self.source
        return scrapy.FormRequest(
            without_userinfo(s.url),
            formdata={"view_name": s.view_name, "view_display_id": s.view_display_id, "page": str(page)},
            headers={"X-Requested-With": "XMLHttpRequest", "Accept": "application/json, text/javascript, */*"},
            callback=self.parse_view, errback=self._failed if first else self.on_error,
            meta={"source_url": first, "page": page}, dont_filter=True,
        )

    def _failed(self, failure: Any) -> Outcome:
        return _start_failed(self, failure)

    async def start(self) -> AsyncIterator[Any]:
        yield self._request(0, True)

    def parse_view(self, response: Response) -> Iterator[scrapy.Request | Outcome]:
        page: int = response.meta["page"]
        if page == 0:
            bad = check_source_response(self, response)
            if bad:
                yield bad
                return
        elif response.status >= 400:
            yield Outcome(canonical_url(response.url), self.source.name, outcome.FAILED, f"HTTP {response.status}",
                          response.status)
            return
        html = view_html(response.body)
        if html is None:
            if page == 0:
                self.ctx.start_error = f"{response.url}: not a Drupal views/ajax answer"
            return
        rows = view_items(html, self.source.items, self.source.links, self.source.dates)
        if not rows and page == 0:
            self.ctx.tally.add(Count.LISTING_WITHOUT_LINKS)
        fresh = 0
        for href, when, _title in rows:
            url = response.urljoin(href)
            published = parse_datetime(when)
            key = canonical_url(url)
            if self.ctx.first_pass and published and published < self.ctx.since:
                yield Outcome(key, self.source.name, outcome.OLD, "published before `since`")
                continue
            if key not in self.ctx.known and not self.ctx.read_unmatched(key):
                fresh += 1
            # The date is the listing's; the title is the page's own (a listing may shorten it).
            yield self.page_request(url, meta={"hints": {"published": published} if published else {}})
        if rows and fresh and page + 1 < self.source.max_pages:
            yield self._request(page + 1, False)
