"""Reading the store: item listings, story listings and one item in full (``items``, ``show``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipelines.canonical import host_of
from pipelines.db import Database
from pipelines.language import primary_tag
from pipelines.models import Item, ItemTopic, LearnedRule, Revision, Story, topics_of
from pipelines.search import RANK_WINDOW, Filter, Query, narrow, search


@dataclass(frozen=True)
class ItemQuery:
    topic: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: Query | None = None  # the search grammar (pipelines.search.parse): ranked when it has words
    limit: int | None = 50  # None: every match


# Rows read from the database at a time when streaming an export.
BATCH = 500


def _filtered(q: ItemQuery, stmt: Any, db: Database, *, ranked: bool = False) -> tuple[Any, Any]:
    """``stmt`` narrowed to ``q``; with ``ranked`` (and words searched), the search score to order by."""
    when = func.coalesce(Item.published, Item.first_seen)
    if q.topic:
        stmt = stmt.where(Item.id.in_(select(ItemTopic.item_id).where(ItemTopic.topic == q.topic)))
    if q.source:
        stmt = stmt.where(Item.source == q.source)
    if q.since:
        stmt = stmt.where(when >= q.since)
    if q.until:
        stmt = stmt.where(when < q.until)
    if q.search is not None and not q.search.is_empty:
        return narrow(stmt, q.search, postgresql=not db.is_sqlite, ranked=ranked)
    return stmt, None



def _human(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def count_items(db: Database, q: ItemQuery) -> int:
    """How many items match ``q`` (its limit aside)."""
    with db.read() as s:
        return int(s.scalar(_filtered(q, select(func.count(Item.id)), db)[0]) or 0)


def stored_sources(db: Database) -> list[str]:
    """The source names that have items in the store."""
    with db.read() as s:
        return sorted(s.scalars(select(Item.source).distinct()))


def query_items(db: Database, q: ItemQuery) -> list[dict[str, Any]]:
    """Items newest first, as the contract's JSON fields (plus a few more)."""
    return list(iter_items(db, q))


def iter_items(db: Database, q: ItemQuery) -> Iterator[dict[str, Any]]:
    """``query_items`` a batch at a time: an export of the whole store never sits in memory at once.

    Newest first; best first (relevance and recency) when ``q.search`` has words — a page of at most
    ``RANK_WINDOW`` rows ranked as the web UI ranks it (``pipelines.search.search``), an export every match.
    """
    if q.search is not None and q.search.has_text and q.limit is not None and q.limit <= RANK_WINDOW:
        yield from _ranked_page(db, q, q.search, q.limit)
        return
    when = func.coalesce(Item.published, Item.first_seen)
    # Plain rows (the table's columns, named as the model's attributes), not ORM objects: nothing
    # accumulates in a session's identity map while a large export streams.
    stmt, score = _filtered(q, select(*Item.__table__.columns), db, ranked=True)
    stmt = stmt.order_by(*([score.desc()] if score is not None else []), when.desc(), Item.id.desc())
    if q.limit is not None:
        stmt = stmt.limit(q.limit)
    with db.read() as s:
        for batch in s.execute(stmt.execution_options(yield_per=BATCH)).partitions():
            topics = topics_of(s, [r.id for r in batch])
            yield from _item_rows(batch, topics)


def _ranked_page(db: Database, q: ItemQuery, query: Query, limit: int) -> Iterator[dict[str, Any]]:
    """The best ``limit`` matches, in the engine's order, with the command's own filters added to the query."""
    extra = [Filter(name, (value,)) for name, value in (("topic", q.topic), ("source", q.source)) if value]
    since = max((w for w in (query.since, q.since) if w is not None), default=None)
    until = min((w for w in (query.until, q.until) if w is not None), default=None)
    full = replace(query, filters=(*query.filters, *extra), since=since, until=until)
    with db.read() as s:
        ids = [h.id for h in search(s, full, limit=limit, count=False).hits]
        rows = {r.id: r for r in s.execute(select(*Item.__table__.columns).where(Item.id.in_(ids)))}
        topics = topics_of(s, ids)
    yield from _item_rows([rows[i] for i in ids if i in rows], topics)


def _item_rows(rows: Sequence[Any], topics: dict[int, list[str]]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id, "url": r.url, "source": r.source, "title": r.title,
            "published": r.published, "first_seen": r.first_seen, "updated": r.updated,
            "topics": topics.get(r.id, []), "story": r.story_id, "revisions": r.revision_count,
            "text": r.text, "lang": primary_tag(r.language), "author": r.author, "final_url": r.final_url, "key": r.key,
            "doj_number": r.doj_number,
            "doj_topics": r.doj_topics or [], "doj_components": r.doj_components or [],
        }
        for r in rows
    ]


def iter_stories(db: Database, q: ItemQuery) -> Iterator[dict[str, Any]]:
    """One row per story (newest first) with its copies, read a batch of stories at a time."""
    when = func.coalesce(Item.published, Item.first_seen)
    latest = (
        _filtered(q, select(Item.story_id, func.max(when).label("latest")), db)[0]
        .where(Item.story_id.is_not(None))
        .group_by(Item.story_id)
        .order_by(func.max(when).desc(), Item.story_id.desc())
    )
    if q.limit is not None:
        latest = latest.limit(q.limit)
    with db.read() as s:
        picked = [(sid, latest_) for sid, latest_ in s.execute(latest)]
        for start in range(0, len(picked), BATCH):
            yield from _story_rows(s, picked[start:start + BATCH])
            s.expunge_all()


def count_stories(db: Database, q: ItemQuery) -> int:
    """How many stories have an item matching ``q`` (its limit aside)."""
    ids = _filtered(q, select(Item.story_id), db)[0].where(Item.story_id.is_not(None)).distinct().subquery()
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(ids)) or 0)


def _story_rows(s: Session, picked: list[tuple[int, datetime]]) -> list[dict[str, Any]]:
    ids = [sid for sid, _ in picked]
    members = list(s.scalars(select(Item).where(Item.story_id.in_(ids)).order_by(Item.first_seen)))
    titles = {sid: title for sid, title in s.execute(select(Story.id, Story.title).where(Story.id.in_(ids)))}
    topics = topics_of(s, [m.id for m in members])
    by_story: dict[int, list[Item]] = defaultdict(list)
    for m in members:
        if m.story_id is not None:
            by_story[m.story_id].append(m)
    rows = []
    for sid, latest_ in picked:
        copies = by_story.get(sid, [])
        story_topics = sorted({t for c in copies for t in topics.get(c.id, [])})
        rows.append({
            "story": sid, "title": titles.get(sid) or (copies[0].title if copies else ""),
            "published": latest_, "copies": len(copies), "topics": story_topics,
            "sources": sorted({c.source for c in copies}),
            "items": [{"id": c.id, "source": c.source, "url": c.url, "title": c.title} for c in copies],
        })
    return rows


def render_item(db: Database, item_id: int) -> str | None:
    """A readable page about one item: fields, topics with evidence, the story, the revisions."""
    from pipelines.revisions import readable_diff

    with db.read() as s:
        item = s.get(Item, item_id)
        if item is None:
            return None
        topics = list(s.scalars(select(ItemTopic).where(ItemTopic.item_id == item_id)
                                .order_by(ItemTopic.score.desc())))
        copies = list(s.scalars(select(Item).where(Item.story_id == item.story_id, Item.id != item.id)
                                .order_by(Item.first_seen))) if item.story_id else []
        revisions = list(s.scalars(select(Revision).where(Revision.item_id == item_id)
                                   .order_by(Revision.seen_at, Revision.id)))
        learned = list(s.scalars(select(LearnedRule).where(LearnedRule.host == host_of(item.url))
                                 .order_by(LearnedRule.learned)))
    lines = [
        f"#{item.id}  {item.title}",
        f"url:        {item.url}",
        f"source:     {item.source}",
        f"language:   {primary_tag(item.language) or 'unknown'}",
        f"published:  {_human(item.published)}",
        f"first seen: {_human(item.first_seen)}",
        f"updated:    {_human(item.updated)}  ({item.revision_count} revision(s))",
    ]
    if item.doj_number:
        lines.append(f"DOJ number: {item.doj_number}")
    if item.doj_topics:
        lines.append(f"DOJ topics: {', '.join(item.doj_topics)}")
    if item.doj_components:
        lines.append(f"components: {', '.join(item.doj_components)}")
    for rule in learned:  # what its site's pages are extracted through (pipelines.learn)
        lines.append(f"learned main content on {rule.host}: {rule.selector} ({rule.pages} page(s), "
                     f"{rule.checks} check(s) passed)")
    lines.append("")
    if topics:
        lines.append("topics:")
        for t in topics:
            lines.append(f"  {t.topic}  score {t.score:.2f}")
            for e in t.evidence:
                note = f" ({e['note']})" if e.get("note") else ""
                lines.append(f"    [{e.get('where')}] \"{e.get('phrase')}\"{note} — {e.get('sentence')}")
    else:
        lines.append("topics: none")
    lines.append("")
    lines.append(f"story {item.story_id}: {len(copies)} other cop{'y' if len(copies) == 1 else 'ies'}")
    for c in copies:
        lines.append(f"  #{c.id} {c.source}: {c.title}  <{c.url}>")
    if revisions:
        lines.append("")
        lines.append("revisions (oldest first):")
        versions = [(r.seen_at, r.title, r.text, r.reason) for r in revisions]
        for i, (seen, title, text, reason) in enumerate(versions):
            nxt_title, nxt_text = (versions[i + 1][1], versions[i + 1][2]) if i + 1 < len(versions) else (
                item.title, item.text)
            lines.append(f"  changed {_human(seen)}: {reason}")
            if title != nxt_title:
                lines.append(f"  - title: {title}")
                lines.append(f"  + title: {nxt_title}")
            diff = readable_diff(text, nxt_text)
            lines.extend("    " + d for d in diff.splitlines())
    lines.append("")
    lines.append(item.text)
    return "\n".join(lines)
