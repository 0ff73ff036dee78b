"""The store: items, their stories, revisions and topics, and the alert outbox.

``save`` takes a batch of articles (each with the analysis its extraction worker made) and page outcomes:
an article becomes a new item (joining a known story or starting one), a material revision, a fuller text
of another source's item, or nothing (unchanged, a duplicate); an outcome becomes a per-URL record
(``pipelines.urlstates``). One transaction per batch; should a record fail, the batch is written again
with a savepoint per record, so the bad one is recorded as failed and the rest kept. Alert events are
written in the same transaction as the item they are about (the outbox ``alerts/`` reads). What is
counted goes into the pass's ``Tally``; passes and source state are the ledger's
(``crawler.passes.ledger``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pipelines import items as outcome
from pipelines import urlstates
from pipelines.classify import Classifier, TopicResult
from pipelines.db import Database
from pipelines.items import Analysis, Article, KnownPage, Outcome, clean
from pipelines.language import primary_tag, resolve_language
from pipelines.models import (
    AlertEvent,
    Item,
    ItemTopic,
    Revision,
    Story,
    TopicChange,
)
from pipelines.retry import RetryPolicy
from pipelines.revisions import compare, content_hash
from pipelines.search import Query, matches
from pipelines.stories import (
    StoryDoc,
    StoryFeatures,
    StoryIndex,
    features_from_json,
    features_to_json,
    fingerprint,
    story_features,
)
from pipelines.tally import Count, Tally
from pipelines.timeutil import trusted_published, utcnow
from pipelines.worker import analyse, classifier_meta

log = logging.getLogger("borderwatch.store")

# How far back stored items are loaded into the story index: copies of one story appear within days.
STORY_WINDOW = timedelta(days=60)
# How far back pages read and not kept (``keep: matching``) are remembered so they are not fetched again.
UNMATCHED_WINDOW = timedelta(days=60)
EVIDENCE_PER_TOPIC = 5


class NotAnalysed(RuntimeError):
    """An article reached the store without the analysis its pass's extraction worker makes."""


def evidence_json(result: TopicResult) -> list[dict[str, Any]]:
    return [
        {"phrase": e.phrase, "sentence": e.sentence, "weight": round(e.weight, 3), "where": e.where}
        | ({"note": e.note} if e.note else {})
        for e in result.evidence[:EVIDENCE_PER_TOPIC]
    ]


class Store:
    """Saves what spiders found. One per process; ``save`` is called with batches."""

    def __init__(
        self,
        db: Database,
        classifier: Classifier | None,
        *,
        stories: StoryIndex | None = None,
        now: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        queries: Sequence[Query] = (),
        topics_digest: str | None = None,
    ) -> None:
        self.db = db
        # The digest of the topic rules the workers classify with: a page they find no topic in is recorded
        # under it, and read again once the rules change (pipelines.urlstates.load_unmatched).
        self.topics_digest = topics_digest
        # The queries watchers follow: a new item matching one is news even when it carries no topic.
        self.queries = tuple(queries)
        self.retry = retry or RetryPolicy()
        self.rules = classifier
        self.stories = stories if stories is not None else StoryIndex()
        self.now = now
        self._lock = threading.Lock()  # several sources' crawlers share one store in a process
        self._known: dict[str, Item] = {}  # the current batch's items by key and link
        self._stored_urls: list[str] = []  # the current batch's keys read (stored or found unchanged)

    @property
    def classifier(self) -> Classifier:
        """The topic rules, for ``reclassify`` (a pass's store has none: its workers classify)."""
        if self.rules is None:
            raise NotAnalysed("this store was given no topic rules")
        return self.rules

    def _analysis(self, a: Article, title: str, text: str) -> Analysis:
        """The article's analysis, made by the extraction worker. A store given topic rules (tools, tests that
        save text directly) makes it for an article that has none; a pass's store has none, so an article that
        missed the worker fails, recorded as such, rather than being stored as matching no topic."""
        if a.analysis is not None:
            return a.analysis
        if self.rules is None:
            raise NotAnalysed(f"{a.url}: not analysed by an extraction worker")
        return analyse(title, text, classifier_meta(a.doj_topics, a.doj_components, a.source), self.rules)

    # -- loading ---------------------------------------------------------------------------------------
    def load_stories(self, window: timedelta = STORY_WINDOW) -> int:
        """Index recent items so a copy arriving today joins its story."""
        since = self.now() - window
        with self.db.read() as s:
            rows = s.execute(
                select(
                    Item.id, Item.title, Item.text, Item.published, Item.key, Item.doj_number,
                    Item.story_id, Item.signature, Item.story_features,
                ).where((Item.first_seen >= since) | (Item.published >= since))
            ).all()
        for r in rows:
            if r.story_id is None:
                continue
            doc = StoryDoc(r.id, r.title, r.text, r.published, r.key, r.doj_number,
                           features_from_json(r.story_features))
            self.stories.add(doc, r.story_id, r.signature)
        return len(rows)

    def load_known(self) -> dict[str, KnownPage]:
        with self.db.read() as s:
            rows = s.execute(
                select(Item.key, Item.url, Item.link, Item.source, Item.published, Item.first_seen,
                       Item.last_checked, Item.etag, Item.last_modified, Item.final_url)
            ).all()
        known: dict[str, KnownPage] = {}
        for r in rows:
            # A revisit fetches a real address (where the page was fetched), never the key.
            page = KnownPage(r.source, r.published, r.first_seen, r.last_checked,
                             r.etag, r.last_modified, r.final_url or r.url)
            known[r.key] = page
            if r.link:
                # A link that redirected: the conditional GET goes to the link, which redirects on.
                known[r.link] = page
        return known

    def load_unmatched(self, window: timedelta = UNMATCHED_WINDOW) -> set[str]:
        """Pages a ``keep: matching`` source read and left unstored (they matched no topic) within ``window``:
        a feed lists a story for days, not months, so older records need not be held in memory. Those judged
        under other topic rules than this store's are left out: they are read again."""
        return urlstates.load_unmatched(self.db, self.now() - window, self.topics_digest)

    def stale_unmatched_sources(self, window: timedelta = UNMATCHED_WINDOW) -> set[str]:
        """Sources with unmatched pages judged under other topic rules than this store's (none without a digest)."""
        if self.topics_digest is None:
            return set()
        return urlstates.stale_unmatched_sources(self.db, self.now() - window, self.topics_digest)

    def restamp_unmatched(self, source: str, window: timedelta = UNMATCHED_WINDOW) -> None:
        """The source's unmatched pages not met again in a full pass: recorded under this store's rules."""
        if self.topics_digest is not None:
            urlstates.restamp_unmatched(self.db, source, self.now() - window, self.topics_digest)

    # -- saving ----------------------------------------------------------------------------------------
    def save(self, batch: Sequence[Article | Outcome], counts: Tally) -> None:
        if not batch:
            return
        with self._lock:
            self._save(batch, counts)

    def _save(self, batch: Sequence[Article | Outcome], counts: Tally) -> None:
        """One transaction for the batch. Should a record fail, the batch is written again with a
        savepoint per record, so the bad one is recorded as failed and the rest kept. (Savepoints on
        every record cost a flush each: most of the store's time.)"""
        now = self.now()
        done = Tally()
        try:
            self._write(batch, now, done, careful=False)
        except Exception as exc:
            log.info("a batch failed (%s); writing it record by record", str(exc).splitlines()[0][:200])
            self._reload_stories()  # the index must not keep what the rolled-back batch added
            done = Tally()
            try:
                self._write(batch, now, done, careful=True)
            finally:
                # What a rolled-back record added to the index must go: the database is the truth.
                self._reload_stories()
        counts.merge(done)

    def _reload_stories(self) -> None:
        self.stories = StoryIndex(threshold=self.stories.threshold)
        self.load_stories()

    def _write(self, batch: Sequence[Article | Outcome], now: datetime, counts: Tally, *, careful: bool) -> None:
        with self.db.write() as s:
            self._prefetch(s, batch)
            self._stored_urls = []
            for obj in batch:
                if isinstance(obj, Outcome):
                    self._record_outcome(s, obj, now, counts)
                elif not careful:
                    self._save_article(s, obj, now, counts)
                else:
                    try:
                        with s.begin_nested():
                            self._save_article(s, obj, now, counts)
                    except Exception as exc:  # one bad record must not lose the batch
                        self._stored_urls = [u for u in self._stored_urls if u not in (obj.key, obj.link)]
                        log.warning("%s: could not store %s: %s", obj.source, obj.url, exc)
                        counts.add(Count.FAILED)
                        failed = Outcome(obj.key, obj.source, outcome.FAILED, f"store: {exc}"[:500])
                        self._record_outcome(s, failed, now, Tally())
            urlstates.forget(s, self._stored_urls)

    def _record_outcome(self, s: Session, o: Outcome, now: datetime, counts: Tally) -> None:
        counts.add(o.status)
        if o.status == outcome.NOT_MODIFIED:
            item = s.scalar(select(Item).where((Item.key == o.url) | (Item.link == o.url)))
            if item is not None:
                item.last_checked = now
            return
        urlstates.record(s, o, now, self.retry)

    def _prefetch(self, s: Session, batch: Sequence[Article | Outcome]) -> None:
        """Load the batch's known items in one query (a lookup per article cost more than the insert)."""
        keys = {a.key for a in batch if isinstance(a, Article)} | {
            a.link for a in batch if isinstance(a, Article) and a.link
        }
        self._known = {}
        if keys:
            for item in s.scalars(select(Item).where(Item.key.in_(keys) | Item.link.in_(keys))):
                self._known[item.key] = item
                if item.link:
                    self._known[item.link] = item

    def _find(self, s: Session, a: Article) -> Item | None:
        item = self._known.get(a.key) or (self._known.get(a.link) if a.link else None)
        if item is None and a.doj_uuid:
            item = s.scalar(select(Item).where(Item.doj_uuid == a.doj_uuid))
        return item

    def _save_article(self, s: Session, a: Article, now: datetime, counts: Tally) -> None:
        text, title = clean(a.text), clean(a.title)
        if not text:
            self._record_outcome(s, Outcome(a.key, a.source, outcome.NO_TEXT, "no article text"), now, counts)
            return
        analysis = self._analysis(a, title, text)
        item = self._find(s, a)
        if item is None and a.keep == "matching" and not analysis.topics:
            # A general news feed: only what matches a topic is stored; the rest is counted and remembered,
            # so the next pass does not fetch it again.
            self._record_outcome(s, Outcome(a.key, a.source, outcome.UNMATCHED,
                                            urlstates.unmatched_detail(self.topics_digest), fetch_url=None),
                                 now, counts)
            return
        # Fetched and read (new, changed, unchanged or another source's copy): no longer failed or blocked,
        # under its own URL nor under the link that redirected to it.
        self._stored_urls.extend(u for u in (a.key, a.link) if u)
        if item is None:
            self._insert(s, a, title, text, analysis, now, counts)
            return
        if item.source != a.source:
            # Another source stored it first (the API and the feed both carry a DOJ release): one
            # item, whose text is owned by one source, so two extractions of one release never look
            # like an edit. A fuller text (an API body over a feed summary) takes the item over.
            if a.authority > (item.authority or 0):
                self._take_over(s, item, a, title, text, analysis, now)
                counts.add(Count.FULLER_TEXT)
            else:
                counts.add(Count.DUPLICATE)
            return
        item.last_checked = now
        if a.url and a.url != item.url:  # the page now names another address for itself (or moved)
            item.url, item.final_url = a.url[:2048], a.final_url or item.final_url
        item.site_name = a.site_name or item.site_name
        if not item.language or item.language != primary_tag(item.language):
            # Stored before languages were recorded as primary tags (or with none): it gets one now.
            item.language = resolve_language(a.language, title=title, text=text, detected=analysis.language)
        item.etag = a.etag or item.etag
        item.last_modified = a.last_modified or item.last_modified
        item.source_changed = a.source_changed or item.source_changed
        new_hash = analysis.content_hash
        if new_hash == item.content_hash:
            counts.add(Count.UNCHANGED)
            return
        verdict = compare(item.title, item.text, title, text)
        if not verdict.material:
            counts.add(Count.TRIVIAL_CHANGE)
            return
        revision = Revision(
            item_id=item.id, seen_at=now, title=item.title, text=item.text,
            content_hash=item.content_hash, material=True, reason=verdict.reason,
        )
        s.add(revision)
        item.title, item.text, item.content_hash = title, text, new_hash
        item.language = resolve_language(a.language, title=title, text=text, detected=analysis.language)
        item.updated = now
        item.revision_count = (item.revision_count or 0) + 1
        if a.doj_topics:
            item.doj_topics = a.doj_topics
        if a.doj_components:
            item.doj_components = a.doj_components
        item.signature = analysis.signature
        s.flush()
        self._write_topics(s, item, now, analysis.topics)
        s.add(AlertEvent(
            kind="update", item_id=item.id, story_id=item.story_id, revision_id=revision.id,
            source=item.source, created=now, payload={"reason": verdict.reason},
        ))
        if item.story_id is not None:
            doc = self._doc(item, analysis.story_features)
            self.stories.add(doc, item.story_id, item.signature)
        counts.add(Count.UPDATED)

    def _queried(self, s: Session, item_id: int) -> bool:
        """Whether the stored item matches a query a watcher follows (through the search index)."""
        return any(item_id in matches(s, q, [item_id]) for q in self.queries)

    def _take_over(
        self, s: Session, item: Item, a: Article, title: str, text: str, analysis: Analysis, now: datetime,
    ) -> None:
        """A fuller text of the same release: no revision, no update alert (nothing changed in it). Its topics
        are the fuller text's (when it came without a title, the item keeps its own title; its fingerprint and
        hash are of that title)."""
        had_topics = {t for (t,) in s.execute(select(ItemTopic.topic).where(ItemTopic.item_id == item.id))}
        was_queried = bool(self.queries) and self._queried(s, item.id)
        item.source, item.authority = a.source, a.authority
        item.site_name = a.site_name or item.site_name
        item.language = primary_tag(a.language) or item.language
        item.title, item.text = title or item.title, text
        item.content_hash = content_hash(item.title, text)
        item.published = item.published or trusted_published(a.published, item.first_seen)
        item.doj_uuid = item.doj_uuid or a.doj_uuid
        item.doj_number = item.doj_number or a.doj_number
        item.doj_topics = a.doj_topics or item.doj_topics
        item.doj_components = a.doj_components or item.doj_components
        item.source_changed = a.source_changed or item.source_changed
        item.signature = analysis.signature if item.title == title else fingerprint(item.title, text)
        s.flush()
        matched = self._write_topics(s, item, now, analysis.topics)
        if {r.topic for r in matched} - had_topics:
            # The summary did not show what the full text does: it is news to the watchers now.
            s.add(AlertEvent(kind="new", item_id=item.id, story_id=item.story_id, source=item.source,
                             created=now, payload={"topics": [r.topic for r in matched]}))
        elif self.queries and not was_queried and self._queried(s, item.id):
            s.add(AlertEvent(kind="new", item_id=item.id, story_id=item.story_id, source=item.source,
                             created=now, payload={"topics": [r.topic for r in matched], "query": True}))
        if item.story_id is not None:
            doc = self._doc(item, analysis.story_features if item.title == title else None)
            self.stories.add(doc, item.story_id, item.signature)

    def _insert(
        self, s: Session, a: Article, title: str, text: str, analysis: Analysis, now: datetime, counts: Tally,
    ) -> None:
        features, signature = analysis.story_features, analysis.signature
        published = self._published(a, now, counts)
        # The story first (item id 0: not stored yet), so the item is written once, with its story.
        probe = StoryDoc(0, title, text, published, a.key, a.doj_number, features)
        match = self.stories.match(probe, signature)
        story: Story | None = None
        if match is not None:
            story_id = match.story_id
            counts.add(Count.STORY_COPY)
        else:
            story = Story(title=title, created=now)
            s.add(story)
            s.flush()
            story_id = story.id
        item = Item(
            key=a.key, url=a.url[:2048], source=a.source, title=title, text=text, published=published,
            first_seen=now, updated=now, content_hash=analysis.content_hash, author=a.author,
            site_name=a.site_name,
            # Declared (page, feed) or configured, else detected from the text (pipelines.language).
            language=resolve_language(a.language, title=title, text=text, detected=analysis.language),
            final_url=a.final_url, link=a.link, doj_uuid=a.doj_uuid, doj_number=a.doj_number,
            doj_topics=list(a.doj_topics), doj_components=list(a.doj_components), etag=a.etag,
            last_modified=a.last_modified, last_checked=now, source_changed=a.source_changed,
            revision_count=0, signature=signature, authority=a.authority, story_id=story_id,
            story_features=features_to_json(features),
        )
        s.add(item)
        s.flush()
        if story is not None:
            story.first_item_id = item.id
        self._known[item.key] = item
        if item.link:
            self._known[item.link] = item
        matched = self._write_topics(s, item, now, analysis.topics, fresh=True)
        if matched or (self.queries and self._queried(s, item.id)):
            s.add(AlertEvent(
                kind="new", item_id=item.id, story_id=item.story_id, source=item.source, created=now,
                payload={"topics": [r.topic for r in matched], **({} if matched else {"query": True})},
            ))
        self.stories.add(replace(probe, item_id=item.id), story_id, signature)
        counts.add(Count.NEW)

    @staticmethod
    def _published(a: Article, first_seen: datetime, counts: Tally) -> datetime | None:
        """The article's publication date, unless it is in the future (see ``trusted_published``)."""
        published = trusted_published(a.published, first_seen)
        if a.published is not None and published is None:
            counts.add(Count.FUTURE_DATE)
            log.info("%s: publication date %s is after its first fetch; not trusted, first_seen used",
                     a.url, a.published.isoformat())
        return published

    @staticmethod
    def _doc(item: Item, features: StoryFeatures | None = None) -> StoryDoc:
        if features is None:
            features = story_features(item.title, item.text)
        item.story_features = features_to_json(features)
        return StoryDoc(item.id, item.title, item.text, item.published, item.key, item.doj_number, features)

    @staticmethod
    def _write_topics(
        s: Session, item: Item, now: datetime, matched: Sequence[TopicResult], *, fresh: bool = False,
    ) -> Sequence[TopicResult]:
        if not fresh:
            s.execute(delete(ItemTopic).where(ItemTopic.item_id == item.id))
        for r in matched:
            s.add(ItemTopic(item_id=item.id, topic=r.topic, score=round(r.score, 4),
                            evidence=evidence_json(r), classified_at=now))
        return matched

    # -- re-classification ----------------------------------------------------------------------------------
    def reclassify(self, batch: int = 500) -> Counter[str]:
        """Run the topic rules again over every stored item; record what changed (TopicChange rows).

        A topic an item newly carries is news to its watchers: a ``new`` alert event is written (the
        dispatcher still sends one alert per story and holds back items older than ``max_age``).
        """
        counts: Counter[str] = Counter()
        last_id = 0
        while True:
            with self.db.write() as s:
                items = list(s.scalars(select(Item).where(Item.id > last_id).order_by(Item.id).limit(batch)))
                if not items:
                    break
                now = self.now()
                for item in items:
                    last_id = item.id
                    old = {t.topic: t.score for t in s.scalars(select(ItemTopic).where(ItemTopic.item_id == item.id))}
                    meta = classifier_meta(item.doj_topics or [], item.doj_components or [], item.source)
                    matched = self.classifier.matched(item.title, item.text, meta)
                    new = {r.topic: round(r.score, 4) for r in self._write_topics(s, item, now, matched)}
                    counts["items"] += 1
                    for topic in new.keys() - old.keys():
                        s.add(TopicChange(item_id=item.id, topic=topic, change="added", old_score=None,
                                          new_score=new[topic], at=now))
                        counts[f"+{topic}"] += 1
                    for topic in old.keys() - new.keys():
                        s.add(TopicChange(item_id=item.id, topic=topic, change="removed", old_score=old[topic],
                                          new_score=None, at=now))
                        counts[f"-{topic}"] += 1
                    if new.keys() - old.keys():
                        s.add(AlertEvent(kind="new", item_id=item.id, story_id=item.story_id, source=item.source,
                                         created=now, payload={"topics": sorted(new), "reclassified": True}))
                    if new.keys() != old.keys():
                        counts["changed"] += 1
        return counts
