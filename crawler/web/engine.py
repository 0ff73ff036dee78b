"""Searching for the web: a page of hits (or stories) for a query in the grammar, facets, a timeline.

One adapter over the read side, so pages, API, exports and feeds all page, filter and rank the same way.
Cursors are opaque to clients (base64 of the sort key of the last row shown).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from crawler.read.query import ItemQuery, _filtered
from pipelines.db import Database
from pipelines.models import Item, ItemTopic
from pipelines.timeutil import as_utc, parse_when

# At most this many rows in one page of the API or the UI.
MAX_LIMIT = 200
# A query longer than this is refused (no one types it).
MAX_QUERY = 1000


class QueryError(ValueError):
    """A query that cannot be read: the message says which part, in one line."""


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next: str | None
    total: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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


_FIELDS = ("topic", "source", "lang", "since", "until", "story")


def parse(text: str) -> ItemQuery:
    """The query's filters and words (an interim reader of the grammar: filters, then words as text)."""
    if len(text) > MAX_QUERY:
        raise QueryError(f"q: too long ({len(text):,} characters; at most {MAX_QUERY:,})")
    words: list[str] = []
    filters: dict[str, str] = {}
    for token in text.split():
        name, sep, value = token.partition(":")
        if sep and name.lower() in _FIELDS and value:
            filters[name.lower()] = value
        else:
            words.append(token)
    since = until = None
    try:
        if "since" in filters:
            since = parse_when(filters["since"])
        if "until" in filters:
            until = parse_when(filters["until"])
    except (ValueError, OverflowError) as exc:
        raise QueryError(f"since/until: {exc}") from None
    search = " ".join(w.strip('"') for w in words) or None
    return ItemQuery(topic=filters.get("topic"), source=filters.get("source"), since=since, until=until,
                     search=search, limit=None)


def _when() -> Any:
    return func.coalesce(Item.published, Item.first_seen)


def _extra_filters(text: str, stmt: Any) -> Any:
    for token in text.split():
        name, sep, value = token.partition(":")
        if not sep or not value:
            continue
        if name.lower() == "lang":
            stmt = stmt.where(Item.language == value.lower())
        elif name.lower() == "story":
            if not value.isdigit():
                raise QueryError(f"story:{value}: a story id is a number")
            stmt = stmt.where(Item.story_id == int(value))
    return stmt


def _topics(s: Any, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    if ids:
        for item_id, topic in s.execute(select(ItemTopic.item_id, ItemTopic.topic)
                                        .where(ItemTopic.item_id.in_(ids))
                                        .order_by(ItemTopic.item_id, ItemTopic.score.desc())):
            out[item_id].append(topic)
    return out


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def _snippet(text: str, q: ItemQuery, width: int = 240) -> str:
    from markupsafe import escape

    lowered = text.lower()
    at = lowered.find(q.search.lower()) if q.search else -1
    start = max(0, at - width // 3) if at >= 0 else 0
    part = text[start:start + width]
    if q.search and at >= 0:
        i = part.lower().find(q.search.lower())
        out = (escape(part[:i]) + "<mark>" + escape(part[i:i + len(q.search)]) + "</mark>"
               + escape(part[i + len(q.search):]))
    else:
        out = escape(part)
    return ("…" if start else "") + str(out) + ("…" if start + width < len(text) else "")


class Engine:
    """Search over one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def items(self, text: str, limit: int, cursor: str | None = None) -> Page:
        q = parse(text)
        when = _when()
        stmt = _extra_filters(text, _filtered(q, select(Item))).order_by(when.desc(), Item.id.desc())
        if cursor:
            key = decode_cursor(cursor)
            try:
                at, last = datetime.fromisoformat(str(key[0])), int(key[1])
            except (IndexError, ValueError, TypeError):
                raise QueryError("cursor: not a cursor this server gave") from None
            stmt = stmt.where((when < at) | ((when == at) & (Item.id < last)))
        with self.db.read() as s:
            found = list(s.scalars(stmt.limit(limit + 1)))
            more = len(found) > limit
            found = found[:limit]
            topics = _topics(s, [i.id for i in found])
            total = int(s.scalar(_extra_filters(text, _filtered(q, select(func.count(Item.id))))) or 0)
        rows = []
        for i in found:
            rows.append({
                "id": i.id, "url": i.url, "source": i.source, "title": i.title,
                "published": as_utc(i.published) if i.published else None, "first_seen": as_utc(i.first_seen),
                "updated": as_utc(i.updated), "topics": topics.get(i.id, []), "story": i.story_id,
                "lang": i.language, "text": i.text, "snippet": _snippet(i.text, q),
            })
        nxt = None
        if more and found:
            last_item = found[-1]
            nxt = encode_cursor([_iso(last_item.published or last_item.first_seen), last_item.id])
        return Page(rows, nxt, total)

    def iter_items(self, text: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Every match (or the first ``limit``), a page at a time: an export never sits in memory whole."""
        cursor: str | None = None
        sent = 0
        while True:
            size = MAX_LIMIT if limit is None else min(MAX_LIMIT, limit - sent)
            if size <= 0:
                return
            page = self.items(text, size, cursor)
            yield from page.rows
            sent += len(page.rows)
            if page.next is None:
                return
            cursor = page.next

    def stories(self, text: str, limit: int, cursor: str | None = None) -> Page:
        q = parse(text)
        when = _when()
        latest = func.max(when)
        stmt = (_extra_filters(text, _filtered(q, select(Item.story_id, latest.label("latest"))))
                .where(Item.story_id.is_not(None)).group_by(Item.story_id)
                .order_by(latest.desc(), Item.story_id.desc()))
        if cursor:
            key = decode_cursor(cursor)
            try:
                at, last = datetime.fromisoformat(str(key[0])), int(key[1])
            except (IndexError, ValueError, TypeError):
                raise QueryError("cursor: not a cursor this server gave") from None
            stmt = stmt.having((latest < at) | ((latest == at) & (Item.story_id < last)))
        with self.db.read() as s:
            picked = list(s.execute(stmt.limit(limit + 1)))
            more = len(picked) > limit
            picked = picked[:limit]
            ids = [p[0] for p in picked]
            members = list(s.scalars(select(Item).where(Item.story_id.in_(ids))
                                     .order_by(Item.first_seen, Item.id))) if ids else []
            topics = _topics(s, [m.id for m in members])
        by_story: dict[int, list[Item]] = defaultdict(list)
        for m in members:
            by_story[m.story_id or 0].append(m)
        rows = []
        for sid, latest_at in picked:
            copies = by_story.get(sid, [])
            first = min(copies, key=lambda m: (as_utc(m.published or m.first_seen), m.id)) if copies else None
            rows.append({
                "story": sid, "title": first.title if first else "", "published": as_utc(latest_at),
                "first": first.id if first else None,
                "topics": sorted({t for c in copies for t in topics.get(c.id, [])}),
                "sources": sorted({c.source for c in copies}),
                "copies": [{"id": c.id, "source": c.source, "url": c.url, "title": c.title, "lang": c.language,
                            "published": as_utc(c.published) if c.published else None,
                            "first_seen": as_utc(c.first_seen)} for c in copies],
            })
        nxt = encode_cursor([_iso(picked[-1][1]), picked[-1][0]]) if more and picked else None
        return Page(rows, nxt)

    def facets(self, text: str) -> dict[str, list[tuple[str, int]]]:
        q = parse(text)
        base = _extra_filters(text, _filtered(q, select(Item.id))).subquery()
        out: dict[str, list[tuple[str, int]]] = {}
        with self.db.read() as s:
            out["topic"] = [(t, n) for t, n in s.execute(
                select(ItemTopic.topic, func.count()).where(ItemTopic.item_id.in_(select(base.c.id)))
                .group_by(ItemTopic.topic).order_by(func.count().desc(), ItemTopic.topic))]
            for name, col in (("source", Item.source), ("lang", Item.language)):
                out[name] = [(str(v), n) for v, n in s.execute(
                    select(col, func.count()).where(Item.id.in_(select(base.c.id)), col.is_not(None))
                    .group_by(col).order_by(func.count().desc(), col))]
            months: Counter[str] = Counter()
            for (when,) in s.execute(select(_when()).where(Item.id.in_(select(base.c.id)))):
                months[as_utc(when).strftime("%Y-%m")] += 1
        out["month"] = sorted(months.items(), reverse=True)
        return out

    def timeline(self, text: str) -> dict[str, list[tuple[str, int]]]:
        """Matching items per topic per month: {topic: [(YYYY-MM, n), ...]} oldest first."""
        q = parse(text)
        base = _extra_filters(text, _filtered(q, select(Item.id))).subquery()
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        with self.db.read() as s:
            for topic, when in s.execute(select(ItemTopic.topic, _when()).join(Item, Item.id == ItemTopic.item_id)
                                         .where(Item.id.in_(select(base.c.id)))):
                counts[topic][as_utc(when).strftime("%Y-%m")] += 1
        return {t: sorted(c.items()) for t, c in sorted(counts.items())}
