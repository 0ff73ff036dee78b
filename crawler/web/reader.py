"""What the web UI, the API and the feeds read: one item or story in full, the outbox, a story's feed dates.

Searching (the grammar, ranking, facets) is ``crawler.web.engine``'s; this module reads by id. Read-only:
nothing here writes the crawl's tables.
"""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from alerts.config import WatcherConfig
from alerts.dispatch import kind_of, shown_state
from pipelines.db import Database
from pipelines.models import AlertEvent, Delivery, Item, ItemTopic, Revision, Story, topics_of
from pipelines.revisions import readable_diff
from pipelines.timeutil import as_utc

# Diff lines are not wrapped here: the page wraps them to its width.
UNWRAPPED = 1_000_000


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def item_fields(item: Item, topics: list[str]) -> dict[str, Any]:
    """The contract's item fields (``items --format json``), and a few more."""
    return {
        "id": item.id, "url": item.url, "source": item.source, "title": item.title,
        "published": _utc(item.published), "first_seen": _utc(item.first_seen), "updated": _utc(item.updated),
        "topics": topics, "story": item.story_id, "text": item.text, "lang": item.language,
        "author": item.author, "site_name": item.site_name, "revisions": item.revision_count,
        "doj_number": item.doj_number,
    }


def item_detail(db: Database, item_id: int) -> dict[str, Any] | None:
    """One item with its topics (score, evidence), its story's other copies and its revisions (each with a
    readable diff to the text that followed it)."""
    with db.read() as s:
        item = s.get(Item, item_id)
        if item is None:
            return None
        topic_rows = list(s.scalars(select(ItemTopic).where(ItemTopic.item_id == item_id)
                                    .order_by(ItemTopic.score.desc())))
        copies = list(s.scalars(select(Item).where(Item.story_id == item.story_id, Item.id != item.id)
                                .order_by(Item.first_seen, Item.id))) if item.story_id else []
        revisions = list(s.scalars(select(Revision).where(Revision.item_id == item_id)
                                   .order_by(Revision.seen_at, Revision.id)))
        copy_topics = topics_of(s, [c.id for c in copies])
        out = item_fields(item, [t.topic for t in topic_rows])
    out["topic_evidence"] = [
        {"topic": t.topic, "score": round(t.score, 3), "evidence": list(t.evidence or [])} for t in topic_rows
    ]
    out["copies"] = [
        {"id": c.id, "source": c.source, "title": c.title, "url": c.url, "published": _utc(c.published),
         "first_seen": _utc(c.first_seen), "lang": c.language, "topics": copy_topics.get(c.id, [])}
        for c in copies
    ]
    versions = [(r.seen_at, r.title, r.text, r.reason, r.material, r.id) for r in revisions]
    out_revisions = []
    for i, (seen, title, text, reason, material, rid) in enumerate(versions):
        nxt_title, nxt_text = (versions[i + 1][1], versions[i + 1][2]) if i + 1 < len(versions) else (
            item.title, item.text)
        out_revisions.append({
            "id": rid, "seen_at": _utc(seen), "reason": reason, "material": material,
            "title": title, "next_title": nxt_title, "diff": readable_diff(text, nxt_text, width=UNWRAPPED),
        })
    out["revision_list"] = out_revisions
    return out



# A copy whose text shares less than this with the first copy's is called a rewrite; above it, a copy.
COPY_RATIO = 0.6


def story_detail(db: Database, story_id: int) -> dict[str, Any] | None:
    """Every copy of a story across outlets, in the order they were seen; which came first (the earliest
    publication date, else the earliest seen), and what each copy changes against it."""
    with db.read() as s:
        story = s.get(Story, story_id)
        members = list(s.scalars(select(Item).where(Item.story_id == story_id).order_by(Item.first_seen, Item.id)))
        if story is None and not members:
            return None
        topics = topics_of(s, [m.id for m in members])
        title = (story.title if story is not None else "") or (members[0].title if members else "")
    if not members:
        return {"story": story_id, "title": title, "first": None, "copies": [], "topics": [], "sources": []}
    first = min(members, key=lambda m: (as_utc(m.published or m.first_seen), m.id))
    copies = []
    for m in members:
        entry: dict[str, Any] = {
            "id": m.id, "source": m.source, "title": m.title, "url": m.url, "lang": m.language,
            "published": _utc(m.published), "first_seen": _utc(m.first_seen), "topics": topics.get(m.id, []),
            "first": m.id == first.id, "words": len(m.text.split()),
        }
        if m.id != first.id:
            ratio = difflib.SequenceMatcher(None, first.text.split(), m.text.split(), autojunk=False).ratio()
            entry["similarity"] = round(ratio, 3)
            entry["title_differs"] = m.title.strip() != first.title.strip()
            entry["kind"] = ("same text" if ratio >= 0.999 else "copy" if ratio >= COPY_RATIO else "rewrite")
            entry["diff"] = readable_diff(first.text, m.text, width=UNWRAPPED) if ratio >= COPY_RATIO else ""
        copies.append(entry)
    return {
        "story": story_id, "title": title, "first": first.id, "copies": copies,
        "topics": sorted({t for m in members for t in topics.get(m.id, [])}),
        "sources": sorted({m.source for m in members}),
    }


def story_updates(db: Database, story_ids: list[int]) -> dict[int, datetime]:
    """When each story last changed materially: its newest copy's first sighting, or a material revision
    of a copy seen later. A feed entry's ``updated`` (minor fixes do not move it)."""
    out: dict[int, datetime] = {}
    if not story_ids:
        return out
    with db.read() as s:
        for sid, first in s.execute(select(Item.story_id, func.max(Item.first_seen))
                                    .where(Item.story_id.in_(story_ids)).group_by(Item.story_id)):
            if sid is not None:
                out[sid] = as_utc(first)
        # A revision keeps the text before a material change, dated when the change was seen.
        material = (select(Item.story_id, func.max(Revision.seen_at))
                    .join(Revision, Revision.item_id == Item.id)
                    .where(Item.story_id.in_(story_ids), Revision.material.is_(True))
                    .group_by(Item.story_id))
        for sid, changed in s.execute(material):
            if sid is not None and changed is not None and (sid not in out or as_utc(changed) > out[sid]):
                out[sid] = as_utc(changed)
    return out


def outbox(db: Database, watchers: list[WatcherConfig], state: str | None, limit: int) -> list[dict[str, Any]]:
    """The alert outbox, newest first (what ``alerts list`` shows)."""
    shown = shown_state(Delivery.watcher, Delivery.state, watchers)
    query = (
        select(Delivery, shown, AlertEvent.source, AlertEvent.payload, Item.id, Item.title, Item.url,
               Item.source, Item.story_id)
        .join(AlertEvent, AlertEvent.id == Delivery.event_id)
        .outerjoin(Item, Item.id == AlertEvent.item_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    if state:
        query = query.where(shown == state)
    out = []
    with db.read() as s:
        for d, state_shown, event_source, payload, item_id, title, url, item_source, story in s.execute(query):
            kind = kind_of(d.dedup_key)
            if kind in ("health", "recovery"):
                title = f"{event_source}: {(payload or {}).get('message', kind)}"
            out.append({
                "id": d.id, "watcher": d.watcher, "kind": kind, "state": state_shown, "digest": d.digest,
                "attempts": d.attempts, "created": _utc(d.created), "next_attempt": _utc(d.next_attempt),
                "sent_at": _utc(d.sent_at), "last_error": d.last_error, "title": title or "", "item": item_id,
                "url": url, "source": item_source or event_source, "story": story,
            })
    return out


def delivery_counts(db: Database, watchers: list[WatcherConfig]) -> dict[str, int]:
    shown = shown_state(Delivery.watcher, Delivery.state, watchers).label("state")
    with db.read() as s:
        return {r.state: r.n for r in s.execute(select(shown, func.count().label("n")).group_by(shown))}
