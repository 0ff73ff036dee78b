"""Planning: the outbox's undispatched events become deliveries, at most one per (watcher, dedup key).

Who is told what:

- ``new`` (a new item matching a topic, or a query a watcher follows): every watcher whose ``topics`` (empty:
  all) meet the item's topics — or, for a watcher with a ``query``, whose query the item matches (through the
  search engine; with ``topics`` too, both must hold: an item without a topic can be alerted this way) —
  whose ``sources`` (if set) include the item's source, and whose ``max_age`` covers the item's date
  (``published``, else ``first_seen``; a ``published`` more than a day after ``first_seen`` is not trusted).
  Key ``new:story:<story>``: a reprint of a story already alerted finds its key taken and sends nothing.
- ``update`` (a material change): key ``update:item:<item>:rev:<revision>``, to watchers with
  ``updates: true`` who already have the story's ``new`` delivery, when the changed item is the one they were
  told about or passes their topic and source filters. A watcher never told about the story gets the update
  as the story's ``new`` alert if the item now matches.
- ``health`` / ``recovery``: ``admin: true`` watchers (limited to their ``sources`` if set), one delivery per
  event, sent at once even to digest watchers.

The unique constraint on (watcher, dedup_key) and ``INSERT … ON CONFLICT DO NOTHING`` make this safe against
two planners racing; events are marked dispatched in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from alerts.config import WatcherConfig
from pipelines.db import Database
from pipelines.models import AlertEvent, Delivery, Item, ItemTopic
from pipelines.search import QueryError, matches, parse
from pipelines.timeutil import as_utc, item_date, utcnow

log = logging.getLogger(__name__)

# Events per transaction: big enough to amortise the lookups, small enough to keep SQLite's write lock short.
EVENT_BATCH = 500
# Rows per INSERT statement: 7 columns x 500 stays far below SQLite's 32,766 bound parameters.
INSERT_CHUNK = 500


@dataclass(frozen=True)
class _Item:
    id: int
    source: str
    story_id: int | None
    when: datetime  # published, else first_seen
    topics: frozenset[str]


def story_key(item: _Item) -> str:
    return f"new:story:{item.story_id}" if item.story_id is not None else f"new:item:{item.id}"


def update_key(item_id: int, revision_id: int | None, event_id: int) -> str:
    return f"update:item:{item_id}:rev:{revision_id}" if revision_id is not None else (
        f"update:item:{item_id}:event:{event_id}"
    )


def kind_of(dedup_key: str) -> str:
    """``new``, ``update``, ``health`` or ``recovery``: what a delivery is, from its key."""
    return dedup_key.split(":", 1)[0]


def _follows(w: WatcherConfig, item: _Item, queried: dict[str, set[int]]) -> bool:
    """Topic, query and source filters (not age). ``queried``: watcher name → the ids matching its query."""
    if w.query is not None:
        if item.id not in queried.get(w.name, set()):
            return False
    elif not item.topics:
        return False
    if w.topics and not item.topics.intersection(w.topics):
        return False
    return not (w.sources and item.source not in w.sources)


def _queried(session: Session, watchers: Sequence[WatcherConfig], ids: list[int]) -> dict[str, set[int]]:
    """For each watcher following a query: which of ``ids`` match it (one search per watcher and batch)."""
    out: dict[str, set[int]] = {}
    for w in watchers:
        if w.query is None or not ids:
            continue
        try:
            query = parse(w.query)
        except QueryError as exc:  # checked at start-up; only a date range that has since closed gets here
            log.warning("watcher %s: query not followed: %s", w.name, exc)
            out[w.name] = set()
            continue
        out[w.name] = set()
        for chunk in _chunks(ids, INSERT_CHUNK):
            out[w.name] |= matches(session, query, list(chunk))
    return out


def _fresh(w: WatcherConfig, item: _Item, now: datetime) -> bool:
    return now - item.when <= w.max_age


def plan(db: Database, watchers: Sequence[WatcherConfig], now: datetime | None = None) -> int:
    """Turn every undispatched event into deliveries; returns how many deliveries were created."""
    now = as_utc(now) if now is not None else utcnow()
    created = 0
    while True:
        with db.write() as session:
            events = session.scalars(
                select(AlertEvent)
                .where(AlertEvent.dispatched.is_(False))
                .order_by(AlertEvent.id)
                .limit(EVENT_BATCH)
                # PostgreSQL: a second planner skips the rows this one holds (SQLite: BEGIN IMMEDIATE already
                # serialises writers, and SQLAlchemy renders nothing there).
                .with_for_update(skip_locked=True)
            ).all()
            if not events:
                return created
            rows = _rows_for(session, events, watchers, now)
            created += _insert(session, rows)
            session.execute(
                update(AlertEvent).where(AlertEvent.id.in_([e.id for e in events])).values(dispatched=True)
            )
        if len(events) < EVENT_BATCH:
            return created


def _load_items(session: Session, ids: Iterable[int]) -> dict[int, _Item]:
    ids = list(set(ids))
    if not ids:
        return {}
    topics: dict[int, set[str]] = {}
    for item_id, topic in session.execute(
        select(ItemTopic.item_id, ItemTopic.topic).where(ItemTopic.item_id.in_(ids))
    ):
        topics.setdefault(item_id, set()).add(topic)
    rows = session.execute(
        select(Item.id, Item.source, Item.story_id, Item.published, Item.first_seen).where(Item.id.in_(ids))
    )
    return {
        r.id: _Item(
            r.id, r.source, r.story_id, item_date(r.published, r.first_seen), frozenset(topics.get(r.id, ()))
        )
        for r in rows
    }


def _told(
    session: Session, keys: set[str], watchers: Sequence[WatcherConfig]
) -> dict[tuple[str, str], int | None]:
    """(watcher, story key) → the item each watcher was told about, for stories already alerted."""
    if not keys:
        return {}
    told: dict[tuple[str, str], int | None] = {}
    names = [w.name for w in watchers]
    for chunk in _chunks(sorted(keys), INSERT_CHUNK):
        for watcher, key, item_id in session.execute(
            select(Delivery.watcher, Delivery.dedup_key, AlertEvent.item_id)
            .join(AlertEvent, AlertEvent.id == Delivery.event_id)
            .where(Delivery.dedup_key.in_(chunk), Delivery.watcher.in_(names))
        ):
            told[(watcher, key)] = item_id
    return told


def _rows_for(
    session: Session, events: Sequence[AlertEvent], watchers: Sequence[WatcherConfig], now: datetime
) -> list[dict[str, Any]]:
    items = _load_items(session, (e.item_id for e in events if e.item_id is not None))
    update_stories = {story_key(items[e.item_id]) for e in events
                      if e.kind == "update" and e.item_id in items}
    told = _told(session, update_stories, watchers)
    queried = _queried(session, watchers, sorted(items))
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def add(w: WatcherConfig, key: str, event: AlertEvent, *, digest: bool) -> None:
        rows.setdefault((w.name, key), {
            "watcher": w.name, "event_id": event.id, "dedup_key": key, "state": "pending",
            "digest": digest, "attempts": 0, "created": now,
        })

    for event in events:
        if event.kind in ("health", "recovery"):
            for w in watchers:
                if w.admin and (not w.sources or event.source in w.sources):
                    add(w, f"{event.kind}:event:{event.id}", event, digest=False)
            continue
        item = items.get(event.item_id) if event.item_id is not None else None
        if item is None or event.kind not in ("new", "update"):
            log.warning("alert event %s (%s): no item or an unknown kind, not alerted", event.id, event.kind)
            continue
        key = story_key(item)
        for w in watchers:
            digest = w.mode == "digest"
            if event.kind == "update" and (w.name, key) in told:
                if w.updates and (told[(w.name, key)] == item.id or _follows(w, item, queried)):
                    add(w, update_key(item.id, event.revision_id, event.id), event, digest=digest)
            elif _follows(w, item, queried) and _fresh(w, item, now):
                add(w, key, event, digest=digest)
                told.setdefault((w.name, key), item.id)
    return list(rows.values())


def _insert(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert deliveries, skipping (watcher, dedup_key) pairs that exist; returns how many were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    created = 0
    for chunk in _chunks(rows, INSERT_CHUNK):
        stmt = (
            insert(Delivery)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=["watcher", "dedup_key"])
            .returning(Delivery.id)
        )
        created += len(session.execute(stmt).all())
    return created


def _chunks(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]
