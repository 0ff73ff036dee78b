"""What a spider hands the pipelines: an article to extract and store, or a page outcome to record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines.canonical import canonical_url
from pipelines.classify import TopicResult
from pipelines.language import Detection
from pipelines.stories import StoryFeatures


@dataclass(frozen=True)
class Analysis:
    """What the extraction worker computes from an article's title and text, once: the store takes it as is."""

    topics: tuple[TopicResult, ...]  # the topics it matched (the rules in force for the pass)
    signature: bytes  # the story fingerprint (pipelines.stories.fingerprint)
    content_hash: str  # pipelines.revisions.content_hash: an unchanged page is found unchanged
    story_features: StoryFeatures
    # The language model's reading of the title and text (the store decides the item's language from it and
    # what the page, feed or config declare); None: the store reads the text itself.
    language: Detection | None = None


def clean(value: str | None) -> str:
    """A title or text as it is stored and analysed: NUL characters (broken pages; PostgreSQL refuses them in
    text columns) dropped, and stripped."""
    return (value or "").replace("\x00", "").strip()


@dataclass
class Article:
    """A discovered article: its page to extract, or text a feed or API already gave."""

    url: str  # the real address people open (``pipelines.canonical.page_address``), never rewritten
    source: str
    title: str | None = None
    published: datetime | None = None
    author: str | None = None
    site_name: str | None = None  # the publisher's own name, from the page, the feed or the API
    html: str | None = None  # the page, to extract
    text: str | None = None  # text already extracted (API body, feed-only)
    content: str | None = None  # CSS selector of the main element, if the source sets one
    final_url: str | None = None
    link: str | None = None  # the dedup key of the link that was followed, when it redirected elsewhere
    language: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    doj_uuid: str | None = None
    doj_number: str | None = None
    doj_topics: list[str] = field(default_factory=list)
    doj_components: list[str] = field(default_factory=list)
    source_changed: str | None = None  # the API's "changed" stamp
    authority: int = 2  # FEED_TEXT, PAGE_TEXT or API_TEXT: which text wins when sources overlap
    keep: str = "all"  # the source's `keep`: "matching" stores a new item only when it matches a topic
    extra: dict[str, Any] = field(default_factory=dict)
    # Made in the extraction worker (crawler.fetch.stages): the store never makes it in a pass.
    analysis: Analysis | None = None
    key: str = ""  # the dedup key (``canonical_url``); computed from ``url`` when not given

    def __post_init__(self) -> None:
        if not self.key:
            self.key = canonical_url(self.url)


FEED_TEXT, PAGE_TEXT, API_TEXT = 1, 2, 3

# Outcome statuses: what happened to a URL that did not become a stored article this pass.
NOT_MODIFIED = "not_modified"  # a conditional GET answered 304
KNOWN = "known"  # skipped: stored already and outside the revisit window
BLOCKED = "blocked"  # a bot wall or challenge page
FAILED = "failed"  # HTTP error or network failure after retries
TOO_LARGE = "too_large"
TOO_COMPLEX = "too_complex"  # past what extraction can read (its deadline, lxml's limits): given up at once
ROBOTS = "robots"  # robots.txt disallows it
NO_TEXT = "no_text"  # the page held no extractable article text
NO_LINK = "no_link"  # a feed entry without a link
OLD = "old"  # older than the source's `since` on a first pass
WAITING = "waiting"  # failed or blocked before: not tried again until its backoff has run out
GIVEN_UP = "given_up"  # failed or blocked on every try (crawl.page_attempts): no longer tried
REFUSED = "refused"  # never fetched: not http(s), or another origin on a non-public address (crawler.fetch.policy)
UNMATCHED = "unmatched"  # read, matched no topic, not stored (a `keep: matching` source); not fetched again


@dataclass
class Outcome:
    url: str  # the dedup key of the page (``canonical_url``): url_states are keyed by it
    source: str
    status: str
    detail: str = ""
    http_status: int | None = None
    # For a retry of a failed or blocked page: where it was asked for and its validators, if it had any.
    fetch_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class KnownPage:
    """A stored item, as much as the seen-check needs."""

    source: str
    published: datetime | None
    first_seen: datetime
    last_checked: datetime | None
    etag: str | None
    last_modified: str | None
    fetch_url: str | None = None  # where the page was last fetched (the canonical key need not answer)


@dataclass(frozen=True)
class RetryState:
    """A failed or blocked URL, as much as the seen-check needs to decide whether to try it again."""

    source: str
    status: str  # blocked | failed | too_complex
    attempts: int
    next_attempt: datetime | None  # None: given up (it used up its attempts)
    fetch_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
