"""What a delivery is about, read from the database into ``alerts.views`` values (one query per table)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.plan import kind_of
from alerts.render import excerpt
from alerts.views import Alert, HealthAlert, StoryAlert, StoryCopy, TopicEvidence
from pipelines.models import AlertEvent, Delivery, Item, ItemTopic, Revision

COPIES_LOADED = 20  # other outlets' copies read per story; the message shows the first few and a count
_ITEM_COLUMNS = (
    Item.id, Item.source, Item.title, Item.url, Item.published, Item.first_seen, Item.story_id, Item.site_name
)
# The excerpt is cut from the start of the text: this much is read, whatever the article's length.
EXCERPT_READ = 2000
_SPACES = re.compile(r"\s+")


def _same_text(a: str, b: str) -> bool:
    return _SPACES.sub(" ", a).strip(" .").casefold() == _SPACES.sub(" ", b).strip(" .").casefold()


def best_evidence(evidence: Any, title: str = "", shown: str = "") -> tuple[str, str]:
    """The (sentence, phrase) that best shows a topic: the heaviest evidence entry that has a sentence,
    taken from the body when the body has any (the title is already the message's headline), and one the
    excerpt (``shown``) does not already show when there is such a sentence; metadata (``where: meta``, a DOJ
    topic tag) only when no sentence of the article shows the topic."""
    best: tuple[tuple[bool, bool, bool, float], str, str] | None = None
    seen = _SPACES.sub(" ", shown).casefold()
    for entry in evidence if isinstance(evidence, list) else []:
        if not isinstance(entry, Mapping):
            continue
        sentence = str(entry.get("sentence") or "").strip()
        if not sentence:
            continue
        try:
            weight = float(entry.get("weight") or 0.0)
        except (TypeError, ValueError):
            weight = 0.0
        # Metadata (a DOJ topic tag) decides too, but reads badly as "the sentence that shows it": any
        # sentence of the article goes first, even one the excerpt already shows.
        textual = entry.get("where") != "meta"
        in_body = textual and entry.get("where") != "title" and weight > 0 and not (
            title and _same_text(sentence, title))
        fresh = not seen or _SPACES.sub(" ", sentence).strip().casefold() not in seen
        rank = (in_body, fresh, textual, weight)
        if best is None or rank > best[0]:
            best = (rank, sentence, str(entry.get("phrase") or ""))
    return (best[1], best[2]) if best else ("", "")


def load_alerts(session: Session, delivery_ids: Iterable[int]) -> dict[int, Alert]:
    """delivery id → what its message says. Deliveries whose item has gone are left out.

    Sources carry the site's own name where one was found (``source_label``); ``alerts.render`` prefers the
    config's ``sources[].label`` over it."""
    ids = list(delivery_ids)
    if not ids:
        return {}
    pairs = session.execute(
        select(Delivery.id, Delivery.dedup_key, AlertEvent)
        .join(AlertEvent, AlertEvent.id == Delivery.event_id)
        .where(Delivery.id.in_(ids))
    ).all()
    item_ids = {ev.item_id for _, _, ev in pairs if ev.item_id is not None}
    items: dict[int, Any] = {}
    if item_ids:
        lead = func.substr(Item.text, 1, EXCERPT_READ).label("lead")  # the excerpt's source, not the whole text
        query = select(*_ITEM_COLUMNS, lead).where(Item.id.in_(item_ids))
        items = {r.id: r for r in session.execute(query)}
    topics: dict[int, list[TopicEvidence]] = {}
    if item_ids:
        for t in session.scalars(select(ItemTopic).where(ItemTopic.item_id.in_(item_ids))):
            row = items.get(t.item_id)
            title = row.title if row is not None else ""
            shown = excerpt(row.lead or "", title) if row is not None else ""
            sentence, phrase = best_evidence(t.evidence, title, shown)
            topics.setdefault(t.item_id, []).append(TopicEvidence(t.topic, t.score, sentence, phrase))
    story_ids = {i.story_id for i in items.values() if i.story_id is not None}
    copies: dict[int, list[Any]] = {}
    if story_ids:
        for other in session.execute(
            select(*_ITEM_COLUMNS).where(Item.story_id.in_(story_ids)).order_by(Item.published, Item.id)
        ):
            copies.setdefault(other.story_id or 0, []).append(other)
    rev_ids = {ev.revision_id for _, _, ev in pairs if ev.revision_id is not None}
    reasons: dict[int, str] = {}
    if rev_ids:
        query = select(Revision.id, Revision.reason).where(Revision.id.in_(rev_ids))
        reasons = {rev_id: reason for rev_id, reason in session.execute(query)}

    out: dict[int, Alert] = {}
    for delivery_id, key, ev in pairs:
        kind = kind_of(key)
        if kind in ("health", "recovery"):
            payload = ev.payload or {}
            out[delivery_id] = HealthAlert(
                kind="recovery" if kind == "recovery" else "health",
                source=ev.source or "",
                message=str(payload.get("message") or ("recovered" if kind == "recovery" else "failing")),
                detail=str(payload.get("detail") or ""),
                at=ev.created,
            )
            continue
        item = items.get(ev.item_id) if ev.item_id is not None else None
        if item is None:
            continue
        others = [c for c in copies.get(item.story_id or -1, []) if c.id != item.id][:COPIES_LOADED]
        out[delivery_id] = StoryAlert(
            kind="update" if kind == "update" else "new",
            title=item.title,
            url=item.url,
            source=item.source,
            published=item.published or item.first_seen,
            topics=tuple(sorted(topics.get(item.id, []), key=lambda t: -t.score)),
            copies=tuple(
                StoryCopy(c.source, c.title, c.url, c.published,
                          c.site_name or "")
                for c in others
            ),
            reason=reasons.get(ev.revision_id, "") if kind == "update" and ev.revision_id is not None else "",
            item_id=item.id,
            story_id=item.story_id,
            source_label=item.site_name or "",
            excerpt=item.lead or "",
        )
    return out
