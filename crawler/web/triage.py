"""Per-user triage of items: read or unread, starred, a note. Its own table; the crawl's are never written."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from pipelines.db import Database
from pipelines.models import Item, Triage
from pipelines.timeutil import utcnow

# Longer notes are refused (a note is a line or two, not a document).
MAX_NOTE = 4000
ACTIONS = ("read", "unread", "star", "unstar", "note")


class TriageError(ValueError):
    """A mark that cannot be made: the message says why, in one line."""


@dataclass(frozen=True)
class Marks:
    read: bool = False
    starred: bool = False
    note: str = ""

    def as_json(self) -> dict[str, object]:
        return {"read": self.read, "starred": self.starred, "note": self.note}


def marks(db: Database, user: str, item_ids: list[int]) -> dict[int, Marks]:
    if not item_ids:
        return {}
    with db.read() as s:
        rows = s.scalars(select(Triage).where(Triage.user == user, Triage.item_id.in_(item_ids)))
        return {r.item_id: Marks(r.read, r.starred, r.note) for r in rows}


def mark(db: Database, user: str, item_id: int, action: str, note: str | None = None) -> Marks:
    """Apply one action; returns the item's marks after it. Raises TriageError (no such item, bad action)."""
    if action not in ACTIONS:
        raise TriageError(f"action: {action!r} is not one of {', '.join(ACTIONS)}")
    if action == "note" and note is not None and len(note) > MAX_NOTE:
        raise TriageError(f"note: too long ({len(note):,} characters; at most {MAX_NOTE:,})")
    with db.write() as s:
        if s.get(Item, item_id) is None:
            raise TriageError(f"no item with id {item_id}")
        row = s.get(Triage, (user, item_id))
        if row is None:
            row = Triage(user=user, item_id=item_id, read=False, starred=False, note="", updated=utcnow())
            s.add(row)
        if action in ("read", "unread"):
            row.read = action == "read"
        elif action in ("star", "unstar"):
            row.starred = action == "star"
        else:
            row.note = (note or "").replace("\x00", "").strip()
        row.updated = utcnow()
        return Marks(row.read, row.starred, row.note)


def starred_ids(db: Database, user: str) -> set[int]:
    with db.read() as s:
        return set(s.scalars(select(Triage.item_id).where(Triage.user == user, Triage.starred.is_(True))))


def marked_items(db: Database, user: str, limit: int = 500) -> list[dict[str, object]]:
    """The user's starred or annotated items, the most recently marked first."""
    with db.read() as s:
        rows = s.execute(
            select(Triage, Item.title, Item.source, Item.url, Item.published, Item.first_seen, Item.story_id)
            .join(Item, Item.id == Triage.item_id)
            .where(Triage.user == user, (Triage.starred.is_(True)) | (Triage.note != ""))
            .order_by(Triage.updated.desc(), Triage.item_id.desc()).limit(limit))
        return [{
            "id": t.item_id, "title": title, "source": source, "url": url, "published": published or first_seen,
            "story": story, "read": t.read, "starred": t.starred, "note": t.note, "marked": t.updated,
        } for t, title, source, url, published, first_seen, story in rows]
