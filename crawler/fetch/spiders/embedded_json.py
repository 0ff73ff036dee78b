"""An HTML listing page whose items are JSON embedded in the page, not links in its HTML.

RCMP's news listing (``https://rcmp.ca/en/news``) is built this way: the page's Drupal settings script
(``<script type="application/json" data-drupal-selector="drupal-settings-json">``) holds, at
``poweb.all_news.rest_export_all_news``, a JSON-encoded string: a list of records with ``title``, ``view_node``
(the article's URL) and ``field_publish_date`` / ``created``. ``script`` selects the script, ``path`` walks to
the list (a string met on the way is decoded as JSON), ``link_key``, ``title_key`` and ``date_keys`` name the
record's keys. The newest ``max_items`` records within ``since`` are read (on every pass: the list is the whole
archive); their pages are fetched and extracted.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import scrapy
from parsel import Selector
from scrapy.http import Response, TextResponse

from crawler.config import EmbeddedJsonSource
from crawler.fetch.spiders.base import SourceSpider, check_source_response, source_request
from pipelines import items as outcome
from pipelines.canonical import canonical_url
from pipelines.extract import parse_datetime
from pipelines.items import Outcome
from pipelines.tally import Count


@dataclass(frozen=True)
class EmbeddedItem:
    """One record of the embedded list, as read."""

    link: str | None
    title: str | None
    published: datetime | None


def _decoded(value: Any) -> Any:
    """A string that holds JSON (Drupal REST exports are embedded JSON-encoded), decoded; else the value."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def embedded_records(page: str, script: str, path: str) -> tuple[list[dict[str, Any]], str | None]:
    """The records at ``path`` in the JSON of the page's ``script`` element, and a problem when they are not there."""
    texts = [t for t in (el.xpath("string()").get() for el in Selector(text=page).css(script)) if t and t.strip()]
    if not texts:
        return [], f"no {script} element in the page"
    try:
        data: Any = json.loads(texts[0])
    except ValueError as exc:
        return [], f"{script}: not readable JSON ({exc})"[:200]
    for step in path.split("."):
        data = _decoded(data)
        if isinstance(data, dict) and step in data:
            data = data[step]
        elif isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return [], f"no {path} in the page's JSON (stopped at {step!r})"
    data = _decoded(data)
    if isinstance(data, dict):  # a keyed collection ({"12": {...}, "13": {...}})
        data = list(data.values())
    if not isinstance(data, list):
        return [], f"{path} is not a list of items"
    return [r for r in data if isinstance(r, dict)], None


_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""")
_DATETIME = re.compile(r"""datetime\s*=\s*["']([^"']+)["']""")
_TAGS = re.compile(r"<[^>]+>")


def _plain(value: Any) -> str:
    """A field's text: markup removed, entities decoded (REST exports render some fields as HTML)."""
    return " ".join(html.unescape(_TAGS.sub(" ", str(value))).split()) if value is not None else ""


def _link(value: Any) -> str | None:
    """A URL field (a plain URL, or a rendered ``<a href>``); ``#`` and empty are no link."""
    if isinstance(value, dict):
        value = value.get("url") or value.get("href") or value.get("value")
    if not isinstance(value, str):
        return None
    m = _HREF.search(value)
    link = html.unescape(m.group(1) if m else value).strip()
    return link if link and not link.startswith("#") else None


def _date(value: Any) -> datetime | None:
    """A date field: ISO 8601 (date only too), a rendered ``<time datetime>``, or Unix seconds (Drupal's raw
    ``created``)."""
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\s*\d{9,11}\s*", value)):
        try:
            return datetime.fromtimestamp(int(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    m = _DATETIME.search(value)
    text = m.group(1) if m else _plain(value)
    return parse_datetime(text.replace(" ", "T", 1) if re.match(r"^\d{4}-\d\d-\d\d \d", text) else text)


def read_items(records: list[dict[str, Any]], source: EmbeddedJsonSource) -> list[EmbeddedItem]:
    """The records as items, newest first (undated ones after, in the page's order)."""
    items = []
    for r in records:
        published = next((d for key in source.date_keys if (d := _date(r.get(key))) is not None), None)
        items.append(EmbeddedItem(_link(r.get(source.link_key)), _plain(r.get(source.title_key)) or None, published))
    floor = datetime.min.replace(tzinfo=UTC)
    return sorted(items, key=lambda i: i.published or floor, reverse=True)


class EmbeddedJsonSpider(SourceSpider):
    kind = "embedded_json"
    source: EmbeddedJsonSource

    async def start(self) -> AsyncIterator[Any]:
        yield source_request(self, self.source.url, self.parse_listing)

    def parse_listing(self, response: Response) -> Iterator[scrapy.Request | Outcome]:
        bad = check_source_response(self, response)
        if bad:
            yield bad
            return
        if not isinstance(response, TextResponse):
            self.ctx.start_error = f"{response.url}: not an HTML listing"
            return
        records, problem = embedded_records(response.text, self.source.script, self.source.path)
        if problem:
            self.ctx.start_error = f"{response.url}: {problem}"
            yield Outcome(canonical_url(response.url), self.source.name, outcome.FAILED, problem)
            return
        items = read_items(records, self.source)
        if not items:
            self.ctx.tally.add(Count.LISTING_WITHOUT_LINKS)
        for item in items[: self.source.max_items]:
            if item.link is None:
                self.ctx.tally.add(Count.NO_LINK)
                continue
            url = response.urljoin(item.link)
            # The listing holds the whole archive: `since` bounds every pass, not only the first (as a sitemap's).
            if item.published and item.published < self.ctx.since:
                yield Outcome(canonical_url(url), self.source.name, outcome.OLD, "published before `since`")
                continue
            # Title and date are the node's own fields (a REST export's, not a listing's shortened text): they
            # win over what generic extraction finds on a page whose template is not known.
            hints = {"title": item.title, "published": item.published}
            yield self.page_request(url, meta={"hints": {k: v for k, v in hints.items() if v}})
