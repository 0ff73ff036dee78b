"""The Government of Canada's news API (``api.io.canada.ca/io-server/gc/news/{en,fr}/v2``).

One request per pass, its query built from the source's ``dept``, ``topic``, ``type`` and ``pick``; the answer is
JSON (``{"feed": {"entry": [{link, title, teaser, publishedDate}]}}``) or Atom, both read. The items' pages are
on www.canada.ca, which hangs for non-browser TLS clients: by default the API's title and teaser are stored and
the page is not fetched (``fetch_pages: true`` asks for it anyway, for a mirror that answers). The language is
the API path's (``/en/``, ``/fr/``) unless the source sets one.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import scrapy
from scrapy.http import Response

from crawler.config import GcNewsSource
from crawler.fetch.spiders.base import SourceSpider, check_source_response, source_request
from crawler.fetch.spiders.feed import read_feed
from pipelines import items as outcome
from pipelines.canonical import canonical_url, strip_tracking
from pipelines.extract import html_to_text, parse_datetime
from pipelines.items import FEED_TEXT, Article, Outcome
from pipelines.tally import Count

SITE_NAME = "Government of Canada"


def api_url(base: str, *, dept: list[str], topic: list[str], types: list[str], pick: int) -> str:
    """The API request: the source URL's own query parameters, then the source's filters (which win)."""
    parts = urlsplit(base)
    query = dict(parse_qsl(parts.query))
    if dept:
        query["dept"] = ",".join(dept)
    if topic:
        query["topic"] = ",".join(topic)
    if types:
        query["type"] = ",".join(types)
    query.setdefault("sort", "publishedDate")
    query.setdefault("orderBy", "desc")
    query["pick"] = str(pick)
    query.setdefault("format", "json")
    return urlunsplit(parts._replace(query=urlencode(query, safe=",")))


def path_language(url: str) -> str | None:
    """``…/gc/news/fr/v2`` → ``fr``."""
    m = re.search(r"/(en|fr)(?:/|$)", urlsplit(url).path)
    return m.group(1) if m else None


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    # "2026-11-20 10:30:00" and "2026-11-20T10:30:00-05:00" both occur in GC feeds.
    return parse_datetime(value.strip().replace(" ", "T", 1) if re.match(r"^\d{4}-\d\d-\d\d \d", value) else value)


def _text(value: Any) -> str:
    if isinstance(value, dict):  # Atom-as-JSON shapes: {"#text": …} / {"value": …}
        value = value.get("#text") or value.get("value") or value.get("href") or ""
    return " ".join(str(value or "").split())


def parse_gc_news(body: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """The API's entries as {link, title, teaser, published}, and a problem when the body is neither form."""
    head = body.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            data = json.loads(body)
        except ValueError as exc:
            return [], f"not readable JSON: {exc}"[:200]
        feed = data.get("feed") if isinstance(data, dict) else None
        entries = feed.get("entry") if isinstance(feed, dict) else None
        if isinstance(entries, dict):  # a single entry is sometimes not wrapped in a list
            entries = [entries]
        if not isinstance(entries, list):
            return [], "JSON without feed.entry"
        out = []
        for e in entries:
            if not isinstance(e, dict):
                continue
            out.append({"link": _text(e.get("link")), "title": _text(e.get("title")) or None,
                        "teaser": html_to_text(_text(e.get("teaser") or e.get("summary"))),
                        "published": _date(e.get("publishedDate") or e.get("published") or e.get("updated"))})
        return out, None
    parsed, _, problem = read_feed(body)
    if problem:
        return [], problem
    return [{"link": link, "title": hints.get("title"), "teaser": summary, "published": hints.get("published")}
            for link, hints, summary, _ in parsed], None


class GcNewsSpider(SourceSpider):
    kind = "gc_news"
    source: GcNewsSource

    async def start(self) -> AsyncIterator[Any]:
        s = self.source
        url = api_url(s.url, dept=s.dept, topic=s.topic, types=s.type, pick=s.pick)
        yield source_request(self, url, self.parse_api)

    def parse_api(self, response: Response) -> Iterator[Article | Outcome | scrapy.Request]:
        bad = check_source_response(self, response)
        if bad:
            yield bad
            return
        entries, problem = parse_gc_news(response.body)
        if problem:
            self.ctx.start_error = f"{response.url}: {problem}"
            yield Outcome(canonical_url(response.url), self.source.name, outcome.FAILED, problem)
            return
        language = self.source.language or path_language(self.source.url)
        for e in entries:
            link = e["link"]
            if not link:
                self.ctx.tally.add(Count.NO_LINK)
                continue
            key = canonical_url(link)
            if self.ctx.first_pass and e["published"] and e["published"] < self.ctx.since:
                yield Outcome(key, self.source.name, outcome.OLD, "published before `since`")
                continue
            hints = {"title": e["title"], "published": e["published"], "language": language, "site_name": SITE_NAME}
            if self.source.fetch_pages:
                yield self.page_request(link, meta={"hints": {k: v for k, v in hints.items() if v}})
                continue
            if key in self.ctx.known or self.ctx.read_unmatched(key):
                yield Outcome(key, self.source.name, outcome.KNOWN, "stored already")
                continue
            text = e["teaser"] or e["title"] or ""  # the API's teaser: the page behind it is walled
            yield Article(url=strip_tracking(link), key=key, source=self.source.name, text=text, final_url=link,
                          authority=FEED_TEXT, keep=self.source.keep, **hints)
