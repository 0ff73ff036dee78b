"""Reading the store: item listings, story listings and one item in full (``items``, ``show``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from pipelines.db import Database
from pipelines.models import Item, ItemTopic, Revision, Story
from pipelines.timeutil import as_utc


@dataclass(frozen=True)
class ItemQuery:
    topic: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    limit: int = 50


def _filtered(q: ItemQuery, stmt: Any) -> Any:
    when = func.coalesce(Item.published, Item.first_seen)
    if q.topic:
        stmt = stmt.where(Item.id.in_(select(ItemTopic.item_id).where(ItemTopic.topic == q.topic)))
    if q.source:
        stmt = stmt.where(Item.source == q.source)
    if q.since:
        stmt = stmt.where(when >= q.since)
    if q.until:
        stmt = stmt.where(when < q.until)
    if q.search:
        pattern = f"%{q.search}%"
        stmt = stmt.where(or_(Item.title.ilike(pattern), Item.text.ilike(pattern)))
    return stmt


def _topics(db: Database, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return out
    with db.read() as s:
        for item_id, topic in s.execute(
            select(ItemTopic.item_id, ItemTopic.topic).where(ItemTopic.item_id.in_(ids)).order_by(
                ItemTopic.item_id, ItemTopic.score.desc())
        ):
            out[item_id].append(topic)
    return out


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value else None


def _human(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def query_items(db: Database, q: ItemQuery) -> list[dict[str, Any]]:
    """Items newest first, as the contract's JSON fields (plus a few more)."""
    when = func.coalesce(Item.published, Item.first_seen)
    stmt = _filtered(q, select(Item)).order_by(when.desc(), Item.id.desc()).limit(q.limit)
    with db.read() as s:
        rows = list(s.scalars(stmt))
    topics = _topics(db, [r.id for r in rows])
    return [
        {
            "id": r.id, "url": r.url, "source": r.source, "title": r.title,
            "published": _utc(r.published), "first_seen": _utc(r.first_seen), "updated": _utc(r.updated),
            "topics": topics.get(r.id, []), "story": r.story_id, "revisions": r.revision_count,
            "text": r.text, "author": r.author, "final_url": r.final_url, "key": r.key, "doj_number": r.doj_number,
            "doj_topics": r.doj_topics or [], "doj_components": r.doj_components or [],
        }
        for r in rows
    ]


def query_stories(db: Database, q: ItemQuery) -> list[dict[str, Any]]:
    """One row per story (newest first) with its copies."""
    when = func.coalesce(Item.published, Item.first_seen)
    latest = (
        _filtered(q, select(Item.story_id, func.max(when).label("latest")))
        .where(Item.story_id.is_not(None))
        .group_by(Item.story_id)
        .order_by(func.max(when).desc())
        .limit(q.limit)
    )
    with db.read() as s:
        picked = [(sid, latest_) for sid, latest_ in s.execute(latest)]
        ids = [sid for sid, _ in picked]
        members = list(s.scalars(select(Item).where(Item.story_id.in_(ids)).order_by(Item.first_seen)))
        titles = dict(s.execute(select(Story.id, Story.title).where(Story.id.in_(ids))).tuples().all())
    topics = _topics(db, [m.id for m in members])
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
            "published": _utc(latest_), "copies": len(copies), "topics": story_topics,
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
    lines = [
        f"#{item.id}  {item.title}",
        f"url:        {item.url}",
        f"source:     {item.source}",
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
    lines.append("")
    if topics:
        lines.append("topics:")
        for t in topics:
            lines.append(f"  {t.topic}  score {t.score:.2f}")
            for e in t.evidence:
                lines.append(f"    [{e.get('where')}] \"{e.get('phrase')}\" — {e.get('sentence')}")
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
