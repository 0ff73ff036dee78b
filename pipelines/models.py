"""The stored model: items and their revisions, stories, topics, passes, per-URL state and the alert outbox.

Times are stored as UTC and read back as aware UTC datetimes (``UTCDateTime``), whatever the database: SQLite
hands them back naive, PostgreSQL in its session's zone; no reader repairs them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from pipelines.canonical import canonical_url
from pipelines.timeutil import as_utc

# Stable constraint names so Alembic migrations work the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A ``DateTime(timezone=True)`` column that takes and gives aware UTC datetimes.

    Written as UTC (a naive value is taken to be UTC, as the code has always meant it), as before; read back
    aware in UTC, on SQLite (which stores no zone) as on PostgreSQL. The schema is unchanged.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON,
    }


class Story(Base):
    """Copies of one story across outlets share a story (the DOJ release, the USAO copy, a reprint…)."""

    __tablename__ = "stories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime]
    first_item_id: Mapped[int | None] = mapped_column(Integer)


def _key_of(context: Any) -> str:
    """An item written without its key gets the dedup key of its ``url``."""
    return canonical_url(context.get_current_parameters()["url"])


class Item(Base):
    """One article or press release: ``key`` (its canonical URL) dedupes, ``url`` is the address people open."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The dedup key (pipelines.canonical.canonical_url): the seen-check, the store and revisits use it.
    key: Mapped[str] = mapped_column(String(2048), unique=True, default=_key_of)
    # What readers see and click: the page's same-site canonical link, else the final URL, untracked.
    url: Mapped[str] = mapped_column(String(2048))
    source: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    published: Mapped[datetime | None] = mapped_column(index=True)
    first_seen: Mapped[datetime]
    updated: Mapped[datetime] = mapped_column(index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"), index=True)
    author: Mapped[str | None] = mapped_column(String(500))
    # The publisher's own name (og:site_name, application-name, the feed's title): alerts show it.
    site_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    final_url: Mapped[str | None] = mapped_column(String(2048))  # where the page was, after redirects
    link: Mapped[str | None] = mapped_column(String(2048), index=True)  # the found link's key, if it redirected
    # DOJ metadata as DOJ gives it (API records): release number, uuid, its own topics and components.
    doj_uuid: Mapped[str | None] = mapped_column(String(64), index=True)
    doj_number: Mapped[str | None] = mapped_column(String(64), index=True)
    doj_topics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    doj_components: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Conditional GET state, and when the page was last looked at.
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_checked: Mapped[datetime | None]
    source_changed: Mapped[str | None] = mapped_column(String(64))  # the API's own "changed" stamp
    revision_count: Mapped[int] = mapped_column(Integer, default=0)
    # How complete the text is: 1 a feed summary, 2 an extracted page, 3 a full API body.
    authority: Mapped[int] = mapped_column(Integer, default=2)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)  # MinHash of the text, for stories
    story_features: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # names/numbers, for stories


class Revision(Base):
    """An earlier text of an item, kept when the item changed."""

    __tablename__ = "revisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime]
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    material: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(Text, default="")


class ItemTopic(Base):
    """A topic decision with its score and the evidence behind it."""

    __tablename__ = "item_topics"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)
    classified_at: Mapped[datetime]


class SearchKey(Base):
    """What search filters and sorts an item by, one narrow row per item (``pipelines.search``): written only by
    the database's triggers on ``items`` (migration ``0013_search_keys``), never by the code."""

    __tablename__ = "search_keys"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    sort_at: Mapped[datetime]  # coalesce(published, first_seen)
    source: Mapped[str] = mapped_column(String(200))
    lang: Mapped[str | None] = mapped_column(String(16))  # lower(language)
    story_id: Mapped[int | None] = mapped_column(Integer)


Index("ix_search_keys_sort_at", SearchKey.sort_at, SearchKey.item_id)
Index("ix_search_keys_source", SearchKey.source, SearchKey.sort_at)
Index("ix_search_keys_story_id", SearchKey.story_id)


def topics_of(session: Session, ids: list[int]) -> dict[int, list[str]]:
    """The topic ids of each of these items, strongest first (items without a topic are absent)."""
    out: dict[int, list[str]] = defaultdict(list)
    if ids:
        for item_id, topic in session.execute(
            select(ItemTopic.item_id, ItemTopic.topic).where(ItemTopic.item_id.in_(ids))
            .order_by(ItemTopic.item_id, ItemTopic.score.desc())
        ):
            out[item_id].append(topic)
    return out


class TopicChange(Base):
    """What a re-classification changed (``borderwatch reclassify``): an audit trail of topic decisions."""

    __tablename__ = "topic_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str] = mapped_column(String(64))
    change: Mapped[str] = mapped_column(String(10))  # added|removed
    old_score: Mapped[float | None] = mapped_column(Float)
    new_score: Mapped[float | None] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(index=True)


class Pass(Base):
    """One pass over one source, with what it counted."""

    __tablename__ = "passes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200), index=True)
    started: Mapped[datetime]
    finished: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")  # running|ok|failed|crashed|timeout
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # skip reasons, bytes, requests…
    error: Mapped[str | None] = mapped_column(Text)


class SourceState(Base):
    """What a source remembers between passes: its watermark and its health."""

    __tablename__ = "source_states"
    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    watermark: Mapped[str | None] = mapped_column(String(200))  # e.g. the API's newest "changed"
    feed_etag: Mapped[str | None] = mapped_column(String(500))
    feed_last_modified: Mapped[str | None] = mapped_column(String(100))
    last_pass: Mapped[datetime | None]
    last_success: Mapped[datetime | None]
    last_new_item: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    health: Mapped[str] = mapped_column(String(20), default="ok")  # ok|failing|blocked|quiet
    health_since: Mapped[datetime | None]


class UrlState(Base):
    """A URL that could not be stored: blocked by a bot wall, failed, too large, disallowed by robots.

    A failed or blocked URL is tried again once ``next_attempt`` has come (a backoff doubling from its
    source's interval), conditionally when its validators are known; ``next_attempt`` is None when it is
    not retried (another status, or it used up its attempts: given up).
    """

    __tablename__ = "url_states"
    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    source: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20))  # an outcome status (pipelines.items): blocked, failed…
    detail: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime]
    last_attempt: Mapped[datetime]
    next_attempt: Mapped[datetime | None] = mapped_column(index=True)
    fetch_url: Mapped[str | None] = mapped_column(String(2048))  # the address last asked for
    etag: Mapped[str | None] = mapped_column(String(500))  # validators of the last answer, if it gave any
    last_modified: Mapped[str | None] = mapped_column(String(100))


class AlertEvent(Base):
    """Something worth telling: a new story, a material update, a source-health change.

    Written by the store in the same transaction as the item (an outbox); ``alerts/`` delivers it.
    """

    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)  # new|update|health|recovery
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    story_id: Mapped[int | None] = mapped_column(Integer, index=True)
    revision_id: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(index=True)
    dispatched: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Delivery(Base):
    """One (watcher, event) to deliver: exactly once per (watcher, dedup key)."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("watcher", "dedup_key", name="uq_deliveries_watcher_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watcher: Mapped[str] = mapped_column(String(200), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"), index=True)
    dedup_key: Mapped[str] = mapped_column(String(300))  # new:story:12 / update:item:7:rev:3 / health:src:…
    # pending|sending|sent|failed|uncertain (alerts.deliver); shown as `orphaned` while its watcher is not configured
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime | None]
    created: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # When a dispatcher marked it `sending` (a lease): a crashed sender's rows go back to pending once stale.
    claimed: Mapped[datetime | None]


class DeliveryAttempt(Base):
    """Each try at sending, with the channel (credentials hidden) and what came of it."""

    __tablename__ = "delivery_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(Text)
    ok: Mapped[bool] = mapped_column(Boolean)
    # sent | failed | uncertain (no answer after the message went out: it may have arrived; never retried blindly)
    outcome: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)


class Lock(Base):
    """A lease on a source (or the daemon) so two writers never pass over one source at once."""

    __tablename__ = "locks"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    acquired: Mapped[datetime]
    expires: Mapped[datetime]


class Worker(Base):
    """A ``borderwatch worker`` process using this database (``crawler.daemon.registry``): where it runs, its
    heartbeat and the sources it is passing over now. Its row goes when it stops; a row whose heartbeat stopped
    is a worker that died."""

    __tablename__ = "workers"
    name: Mapped[str] = mapped_column(String(300), primary_key=True)  # host:pid
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    started: Mapped[datetime]
    heartbeat: Mapped[datetime]
    passing: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Triage(Base):
    """One web user's marks on one item (``borderwatch serve``): read, starred, a note. Never the crawl's."""

    __tablename__ = "triage"
    user: Mapped[str] = mapped_column(String(200), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True)
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    starred: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    updated: Mapped[datetime]


class LearnedRule(Base):
    """A main-content selector learned for a host's template (``pipelines.learn``); dropped when a check of
    its text against the whole page's fails. Never stored for a host a person's rule covers."""

    __tablename__ = "learned_rules"
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    selector: Mapped[str] = mapped_column(String(1000), primary_key=True)
    learned: Mapped[datetime]
    pages: Mapped[int] = mapped_column(Integer, default=0)  # pages extracted through it
    checks: Mapped[int] = mapped_column(Integer, default=0)  # checks against the whole page it passed
    updated: Mapped[datetime]


Index("ix_items_story_published", Item.story_id, Item.published)
