"""DOJ News API v1 (``/api/v1/press_releases.json``): full bodies, DOJ's own topics and components.

Read newest-changed first (``sort=changed&direction=DESC``) and stop at the last pass's watermark, or
at ``since`` on a first pass. Both field formats are read: 2020 (epoch strings, ``null``, sometimes
Python-repr lists) and 2024 (``<time datetime=…>`` strings, ``""`` for empty values). A record that
cannot be read (a date out of range, a field of the wrong type, malformed JSON within an otherwise good
page, ``null`` in place of a record) is skipped and recorded as failed with the reason; the rest of its
page is read, and the watermark moves on (an edit to the record changes its ``changed`` stamp, so the next
pass reads it again).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import scrapy
from scrapy.http import Response

from crawler.config import DojApiSource, SourceConfig
from crawler.fetch.spiders.base import SourceSpider, check_source_response, source_request
from pipelines import items as outcome
from pipelines.canonical import canonical_url, strip_tracking
from pipelines.extract import html_to_text
from pipelines.items import API_TEXT, Article, Outcome
from pipelines.tally import Count
from pipelines.timeutil import as_utc

_DATETIME_ATTR = re.compile(r'datetime="([^"]+)"')
_EMPTY = {"", "none", "null", "[]"}
# Every record of the API is published by the Department itself: its name, for alerts.
DOJ_NAME = "U.S. Department of Justice"


class BadRecord(ValueError):
    """An API record with a value that cannot be read (the message names the field and the value)."""


def _from_epoch(seconds: float, raw: Any) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadRecord(f"timestamp out of range: {str(raw)[:40]!r}") from exc


def parse_time(value: Any) -> datetime | None:
    """``1723032000``, ``"1723032000"``, or ``<time datetime="2024-08-07T22:06:46+00:00">…</time>``.

    None when empty or not a date; BadRecord for an epoch no calendar holds (``9999999999999``).
    """
    if value is None:
        return None
    if isinstance(value, int | float):
        return _from_epoch(value, value)
    s = str(value).strip()
    m = _DATETIME_ATTR.search(s)
    if m:
        try:
            return as_utc(datetime.fromisoformat(m.group(1).replace("Z", "+00:00")))
        except ValueError:
            pass
    digits = re.sub(r"<[^>]+>", "", s).strip()
    if digits.isdigit():
        return _from_epoch(int(digits), digits)
    try:
        return as_utc(datetime.fromisoformat(s.replace("Z", "+00:00")))
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return None if s.lower() in _EMPTY else s


def parse_names(value: Any) -> list[str]:
    """Topic / component lists: a list of {uuid, name}, its JSON or Python repr, or empty."""
    if value is None:
        return []
    if isinstance(value, str):
        s = value.strip()
        if s.lower() in _EMPTY:
            return []
        try:
            value = json.loads(s)
        except ValueError:
            try:
                value = ast.literal_eval(s)
            except (ValueError, SyntaxError):
                return [s]
    if isinstance(value, dict):
        value = [value]
    names: list[str] = []
    if isinstance(value, list):
        for entry in value:
            if isinstance(entry, dict) and entry.get("name"):
                names.append(str(entry["name"]).strip())
            elif isinstance(entry, str) and entry.strip():
                names.append(entry.strip())
    return names


def parse_record(record: dict[str, Any], source: str) -> Article | None:
    """One API record → an Article (None when it has no URL)."""
    url = _text(record.get("url"))
    if not url:
        return None
    body = record.get("body") or ""
    try:
        published = parse_time(record.get("date"))
    except BadRecord as exc:
        raise BadRecord(f"date: {exc}") from None
    return Article(
        url=strip_tracking(url),  # the API's own address (www. and all): it opens
        key=canonical_url(url),
        source=source,
        title=_text(record.get("title")),
        published=published,
        text=html_to_text(body if isinstance(body, str) else ""),
        final_url=url,
        authority=API_TEXT,
        site_name=DOJ_NAME,
        doj_uuid=_text(record.get("uuid")),
        doj_number=_text(record.get("number")),
        doj_topics=parse_names(record.get("topic")),
        doj_components=parse_names(record.get("component")),
        source_changed=_stamp(parse_time(record.get("changed"))),
        extra={"teaser": _text(record.get("teaser"))} if _text(record.get("teaser")) else {},
    )


def _stamp(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


@dataclass(frozen=True)
class Unreadable:
    """A record of an API page that is not valid JSON, in place of the record (its URL when one can be read)."""

    reason: str
    url: str | None


_RESULTS = re.compile(r'"results"\s*:\s*\[')
_RECORD_URL = re.compile(r'"url"\s*:\s*"((?:[^"\\]|\\.)*)"')
_WS_AT = re.compile(r"\s*")


def read_results(body: bytes) -> list[Any]:
    """The records of an API page. A page that is valid JSON is read as it is; in one that is not, each record
    that parses is kept and each that does not is an ``Unreadable`` in its place, so one malformed record never
    costs the others. ValueError when there is no list of results to read at all."""
    try:
        data = json.loads(body)
    except ValueError:
        return _salvage(body.decode("utf-8", "replace"))
    results = data.get("results") if isinstance(data, dict) else None
    if results is None and isinstance(data, dict):
        return []
    if not isinstance(results, list):
        raise ValueError("results is not a list")
    return results


def _salvage(text: str) -> list[Any]:
    start = _RESULTS.search(text)
    if start is None:
        raise ValueError("no results in the page")
    decoder = json.JSONDecoder()
    records: list[Any] = []
    pos = _WS_AT.match(text, start.end()).end()  # type: ignore[union-attr]
    while pos < len(text) and text[pos] != "]":
        try:
            record, pos = decoder.raw_decode(text, pos)
            records.append(record)
        except json.JSONDecodeError as exc:
            end = _element_end(text, pos)
            chunk = text[pos:end]
            url = _RECORD_URL.search(chunk)
            where = f"character {exc.pos - pos} of the record" if exc.pos < end else "the page ends inside it"
            records.append(Unreadable(f"invalid JSON: {exc.msg} ({where})", url.group(1) if url else None))
            if end >= len(text):
                break  # the rest of the page cannot be told apart: what was read is kept
            pos = end
        pos = _WS_AT.match(text, pos).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == ",":
            pos = _WS_AT.match(text, pos + 1).end()  # type: ignore[union-attr]
    return records


def _element_end(text: str, pos: int) -> int:
    """Where the array element starting at ``pos`` ends: after its closing bracket (strings and escapes
    skipped), or at the next top-level ``,`` / ``]``; the end of the text when it never closes."""
    depth, i, in_string = 0, pos, False
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            if depth == 0:
                return i  # the end of the results list
            depth -= 1
            if depth == 0:
                return i + 1
        elif ch == "," and depth == 0:
            return i
        i += 1
    return len(text)


def page_url(base: str, page: int, pagesize: int) -> str:
    parts = urlsplit(base)
    query = urlencode({"pagesize": pagesize, "page": page, "sort": "changed", "direction": "DESC"})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class DojApiSpider(SourceSpider):
    kind = "doj_api"
    source: DojApiSource

    @classmethod
    def settings_for(cls, source: SourceConfig, delay: float) -> dict[str, Any]:
        # The API's documented limit is a hard ceiling: no jitter below it.
        assert isinstance(source, DojApiSource)
        return {"DOWNLOAD_DELAY": max(delay, 1.0 / source.rate), "DOWNLOAD_DELAY_JITTER": 0.0}

    async def start(self) -> AsyncIterator[Any]:
        yield self._page(0)

    def _page(self, page: int) -> scrapy.Request:
        url = page_url(self.source.url, page, self.source.pagesize)
        # The API is not a page crawl: its documented rate, not robots.txt's crawl-delay, applies.
        return source_request(self, url, self.parse_api, page=page, api=True)

    def parse_api(self, response: Response) -> Iterator[Article | Outcome | scrapy.Request]:
        bad = check_source_response(self, response)
        if bad:
            yield bad
            return
        page: int = response.meta["page"]
        try:
            results = read_results(response.body)
        except ValueError:
            self.ctx.start_error = f"{response.url}: not a DOJ API response (invalid JSON)"
            yield Outcome(canonical_url(response.url), self.source.name, outcome.FAILED, "invalid JSON")
            return
        reached_end = len(results) < self.source.pagesize
        for record in results:
            try:
                if isinstance(record, Unreadable):
                    raise BadRecord(record.reason)
                if not isinstance(record, dict):
                    raise BadRecord(f"not an object but {type(record).__name__}: {str(record)[:60]!r}")
                produced, stop = self._read(record, response)
            except Exception as exc:  # one bad record must not cost its page (and every page after it)
                self.ctx.tally.add(Count.BAD_RECORD)
                fields = {"url": record.url} if isinstance(record, Unreadable) else record
                yield Outcome(_record_key(fields if isinstance(fields, dict) else {}, response), self.source.name,
                              outcome.FAILED, f"unreadable API record: {type(exc).__name__}: {exc}"[:500])
                continue
            reached_end = reached_end or stop
            yield from produced
        if reached_end:
            self.ctx.walk_complete = True
        elif page + 1 >= self.source.max_pages:
            self.ctx.max_pages_reached = True
            # stopped early: keep the old watermark so the next pass reads what this one did not
            self.ctx.new_watermark = self.ctx.watermark
        else:
            yield self._page(page + 1)

    def _read(self, record: dict[str, Any], response: Response) -> tuple[list[Article | Outcome], bool]:
        """What one record yields, and whether the walk may stop after its page."""
        page: int = response.meta["page"]
        watermark = self.ctx.watermark
        try:
            changed = parse_time(record.get("changed"))
        except BadRecord as exc:
            raise BadRecord(f"changed: {exc}") from None
        stamp = _stamp(changed)
        if page == 0 and stamp and (self.ctx.new_watermark is None or stamp > self.ctx.new_watermark):
            self.ctx.new_watermark = stamp
        if watermark and stamp and stamp < watermark:
            # Everything from here on was read by an earlier pass. (A record stamped exactly at the
            # watermark is read again: one changed in that same second after the last pass must
            # not be lost; the store finds the others unchanged.)
            self.ctx.tally.add(Count.BELOW_WATERMARK)
            return [], True
        if changed and changed < self.ctx.since and self.ctx.first_pass:
            # sorted by `changed`: everything after this is older still
            url = _text(record.get("url")) or response.url
            return [Outcome(canonical_url(url), self.source.name, outcome.OLD, "changed before `since`")], True
        article = parse_record(record, self.source.name)
        if article is None:
            no_url = Outcome(canonical_url(response.url), self.source.name, outcome.NO_LINK, "record without url")
            return [no_url], False
        if article.published and article.published < self.ctx.since and article.key not in self.ctx.known:
            return [Outcome(article.key, self.source.name, outcome.OLD, "published before `since`")], False
        article.language = article.language or self.source.language
        article.keep = self.source.keep
        return [article], False


def _record_key(record: dict[str, Any], response: Response) -> str:
    """Where a bad record is recorded: its own URL when it has a usable one, else the API page's."""
    url = _text(record.get("url"))
    try:
        return canonical_url(url) if url and url.startswith(("http://", "https://")) else canonical_url(response.url)
    except Exception:
        return canonical_url(response.url)
