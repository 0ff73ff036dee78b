"""Searching for the web: a page of hits (or stories) for a query in the grammar, facets, a timeline.

One adapter over the read side, so pages, API, exports and feeds all page, filter and rank the same way.
Cursors are opaque to clients (base64 of the sort key of the last row shown).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from time import monotonic
from typing import Any

from sqlalchemy import func, select

from crawler.read import search as engine
from crawler.read.search import Query, QueryError
from pipelines.db import Database
from pipelines.models import Item, Triage, topics_of
from pipelines.timeutil import as_utc

# At most this many rows in one page of the API or the UI.
MAX_LIMIT = 200


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next: str | None
    total: int | None = None


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise QueryError("cursor: not a cursor this server gave") from None
    if not isinstance(key, list):
        raise QueryError("cursor: not a cursor this server gave")
    return key


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


# Facets and timelines of recent queries are kept this long, and only while no item was added or changed:
# the home page (no query) counts every item, which on a large store takes longer than the page's budget.
# (A relative `since:7d` or a reclassification is thus at most this late in the counts.)
SUMMARY_TTL = 60.0
SUMMARY_CACHE = 128


class Engine:
    """Search over one database, with the topic ids in force (an unknown ``topic:`` is a clear error)."""

    def __init__(self, db: Database, topics: list[str] | None = None, *, clock: Callable[[], float] = monotonic
                 ) -> None:
        self.db = db
        self.topics = topics
        self.clock = clock
        self.count_limit = engine.COUNT_LIMIT
        self._summaries: OrderedDict[tuple[str, str, Any], tuple[float, Any]] = OrderedDict()
        self._lock = Lock()

    def _stamp(self, q: Query) -> Any:
        """What changes whenever an item is stored or changed (two index lookups), and for a query reading
        the user's marks (``is:``), whenever the user marks an item."""
        with self.db.read() as s:
            stamp = tuple(s.execute(select(func.max(Item.id), func.max(Item.updated))).one())
            if any(f.field == "is" for f in q.filters):
                marked = s.execute(select(func.count(), func.max(Triage.updated)).where(Triage.user == q.user))
                stamp += (q.user, *marked.one())
            return stamp

    def _summary(self, kind: str, q: Query, compute: Callable[[], Any]) -> Any:
        key = (kind, q.text, self._stamp(q))
        now = self.clock()
        with self._lock:
            hit = self._summaries.get(key)
            if hit is not None and now - hit[0] < SUMMARY_TTL:
                self._summaries.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._summaries[key] = (now, value)
            while len(self._summaries) > SUMMARY_CACHE:
                self._summaries.popitem(last=False)
        return value

    def parse(self, text: str, user: str | None = None) -> Query:
        """``text`` in the grammar; ``is:`` reads ``user``'s marks (refused without a user)."""
        return engine.parse(text, topics=self.topics, user=user)

    def items(self, text: str, limit: int, cursor: str | None = None, *, count: bool = True,
              user: str | None = None) -> Page:
        """A page of hits, best first, with the contract's item fields (text included) and a snippet."""
        q = self.parse(text, user)
        with self.db.read() as s:
            found = engine.search(s, q, limit=limit, cursor=cursor, count=False)
            ids = [h.id for h in found.hits]
            texts = {i: t for i, t in s.execute(select(Item.id, Item.text).where(Item.id.in_(ids)))} if ids else {}
        rows = [{
            "id": h.id, "url": h.url, "source": h.source, "title": h.title, "published": h.published,
            "first_seen": h.first_seen, "updated": h.updated, "topics": h.topics, "story": h.story_id,
            "lang": h.language, "text": texts.get(h.id, ""), "snippet": h.snippet, "title_html": h.title_html,
            "rank": h.rank,
        } for h in found.hits]
        total = self._summary("count", q, lambda: self._count(q)) if count else None
        return Page(rows, found.next_cursor, total)

    def _count(self, q: Query) -> int | None:
        """The number of matches up to ``COUNT_LIMIT``; None for more, or not counted (see
        ``pipelines.search.count_at_most``)."""
        with self.db.read() as s:
            return engine.count_at_most(s, q, self.count_limit)

    def iter_items(self, text: str, limit: int | None = None, *, user: str | None = None
                   ) -> Iterator[dict[str, Any]]:
        """Every match (or the first ``limit``), a page at a time: an export never sits in memory whole.
        The query is read before the first row, so a bad one raises before anything is sent."""
        self.parse(text, user)
        return self._pages(text, limit, user)

    def _pages(self, text: str, limit: int | None, user: str | None) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        sent = 0
        while True:
            size = MAX_LIMIT if limit is None else min(MAX_LIMIT, limit - sent)
            if size <= 0:
                return
            page = self.items(text, size, cursor, count=False, user=user)
            yield from page.rows
            sent += len(page.rows)
            if page.next is None:
                return
            cursor = page.next

    def stories(self, text: str, limit: int, cursor: str | None = None, *, user: str | None = None) -> Page:
        """Stories with an item matching the query, the most recently active first, with every copy."""
        q = self.parse(text, user)
        when = func.coalesce(Item.published, Item.first_seen)
        latest = func.max(when)
        with self.db.read() as s:
            ids = engine.matching_ids(q, s).subquery()
            stmt = (select(Item.story_id, latest.label("latest"))
                    .where(Item.id.in_(select(ids.c.id)), Item.story_id.is_not(None))
                    .group_by(Item.story_id).order_by(latest.desc(), Item.story_id.desc()))
            if cursor:
                key = decode_cursor(cursor)
                try:
                    at, last = as_utc(datetime.fromisoformat(str(key[0]))), int(key[1])
                except (IndexError, ValueError, TypeError):
                    raise QueryError("cursor: not a cursor this server gave") from None
                stmt = stmt.having((latest < at) | ((latest == at) & (Item.story_id < last)))
            picked = list(s.execute(stmt.limit(limit + 1)))
            more = len(picked) > limit
            picked = picked[:limit]
            story_ids = [p[0] for p in picked]
            members = list(s.scalars(select(Item).where(Item.story_id.in_(story_ids))
                                     .order_by(Item.first_seen, Item.id))) if story_ids else []
            topics = topics_of(s, [m.id for m in members])
        by_story: dict[int, list[Item]] = defaultdict(list)
        for m in members:
            by_story[m.story_id or 0].append(m)
        rows = []
        for sid, latest_at in picked:
            copies = by_story.get(sid or 0, [])
            first = min(copies, key=lambda m: (as_utc(m.published or m.first_seen), m.id)) if copies else None
            rows.append({
                "story": sid, "title": first.title if first else "", "published": _as_datetime(latest_at),
                "first": first.id if first else None,
                "topics": sorted({t for c in copies for t in topics.get(c.id, [])}),
                "sources": sorted({c.source for c in copies}),
                "copies": [{"id": c.id, "source": c.source, "url": c.url, "title": c.title, "lang": c.language,
                            "published": as_utc(c.published) if c.published else None,
                            "first_seen": as_utc(c.first_seen)} for c in copies],
            })
        nxt = None
        if more and picked:
            nxt = encode_cursor([_iso(_as_datetime(picked[-1][1])), picked[-1][0]])
        return Page(rows, nxt)

    def facets(self, text: str, user: str | None = None) -> dict[str, list[tuple[str, int]]]:
        q = self.parse(text, user)

        def compute() -> dict[str, list[tuple[str, int]]]:
            with self.db.read() as s:
                return engine.facets(s, q)

        found: dict[str, list[tuple[str, int]]] = self._summary("facets", q, compute)
        return found

    def timeline(self, text: str, user: str | None = None) -> engine.Timeline:
        q = self.parse(text, user)

        def compute() -> engine.Timeline:
            with self.db.read() as s:
                return engine.timeline(s, q)

        found: engine.Timeline = self._summary("timeline", q, compute)
        return found


def _as_datetime(value: Any) -> datetime:
    """A max() of dates: a datetime on PostgreSQL, a string on SQLite."""
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value)))


