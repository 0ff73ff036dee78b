"""What one pass counts: one ``Count`` per thing counted, one ``Tally`` per pass, the sums in one place.

Spiders, the store stage and the store add to the pass's tally; the report (``crawler.passes.report``)
prints it, the ledger (``crawler.passes.ledger``) stores it (``Pass`` columns and ``Pass.stats``). The
sums a ``Pass`` row keeps (unchanged, skipped, failed) are defined here and nowhere else.

A ``Count`` is a ``StrEnum`` whose values are the keys ``Pass.stats`` has always used, and the page outcome
statuses of ``pipelines.items`` (an ``Outcome``'s status is counted as the ``Count`` of that name).
Control flags (the API walk reached its end, the page limit was hit) are not counts: they are fields of
the pass's context (``crawler.passes.context.PassContext``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any

from pipelines import items as outcome


class Count(StrEnum):
    # stored, or found stored
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    TRIVIAL_CHANGE = "trivial_change"  # changed, but not materially: no revision
    NOT_MODIFIED = outcome.NOT_MODIFIED
    FULLER_TEXT = "fuller_text"  # another source's item taken over by a fuller text
    STORY_COPY = "story_copy"  # a new item that joined a known story
    FUTURE_DATE = "future_date"  # a publication date not trusted (after the first fetch)
    # skipped
    KNOWN = outcome.KNOWN
    OLD = outcome.OLD
    NO_LINK = outcome.NO_LINK
    DUPLICATE = "duplicate"  # another source's copy of an item stored already
    ROBOTS = outcome.ROBOTS
    NO_TEXT = outcome.NO_TEXT
    WAITING = outcome.WAITING
    GIVEN_UP = outcome.GIVEN_UP
    REFUSED = outcome.REFUSED
    UNMATCHED = outcome.UNMATCHED  # read, matched no topic, not stored (a `keep: matching` source)
    EXCLUDED = "excluded"  # a sitemap's page whose URL matches the source's `exclude`
    # failed
    FAILED = outcome.FAILED
    TOO_LARGE = outcome.TOO_LARGE
    TOO_COMPLEX = outcome.TOO_COMPLEX
    BLOCKED = outcome.BLOCKED
    UNSAVED = "unsaved"  # items lost because the database failed (the pass fails)
    SPIDER_ERROR = "spider_error"  # a spider callback raised (the pass fails)
    BAD_RECORD = "bad_record"  # an API record that could not be read
    # about the source's own walk
    RETRIED = "retried"  # failed or blocked pages tried again
    FEED_NOT_MODIFIED = "feed_not_modified"
    SITEMAP_NOT_MODIFIED = "sitemap_not_modified"
    LISTING_WITHOUT_LINKS = "listing_without_links"
    BELOW_WATERMARK = "below_watermark"
    FROM_FEED = "from_feed"  # new items stored from a feed's full text, their pages not fetched


UNCHANGED = (Count.UNCHANGED, Count.TRIVIAL_CHANGE, Count.NOT_MODIFIED)
SKIPPED = (Count.KNOWN, Count.OLD, Count.NO_LINK, Count.DUPLICATE, Count.ROBOTS, Count.NO_TEXT, Count.WAITING,
           Count.GIVEN_UP, Count.REFUSED, Count.UNMATCHED, Count.EXCLUDED)
FAILED = (Count.FAILED, Count.TOO_LARGE, Count.TOO_COMPLEX)


class Tally:
    """The counts of one pass. Added to from the reactor thread and the store's thread; read from any."""

    __slots__ = ("_counts", "_lock")

    def __init__(self, counts: Mapping[Count, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Count, int] = {}
        for key, n in (counts or {}).items():
            self.add(key, n)

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any] | None) -> Tally:
        """The counts kept in a ``Pass.stats`` (which also holds requests, bytes…: those are not counts)."""
        tally = cls()
        for key, value in (stats or {}).items():
            if key in Count._value2member_map_ and isinstance(value, int) and not isinstance(value, bool):
                tally.add(Count(key), value)
        return tally

    def add(self, key: Count | str, n: int = 1) -> None:
        """Count ``n`` more of ``key`` (an ``Outcome``'s status is a ``Count`` value; anything else raises)."""
        count = Count(key)
        if n:
            with self._lock:
                self._counts[count] = self._counts.get(count, 0) + n

    def merge(self, other: Tally) -> None:
        for key, n in other.items():
            self.add(key, n)

    def __getitem__(self, key: Count | str) -> int:
        return self._counts.get(Count(key), 0)

    def items(self) -> Iterator[tuple[Count, int]]:
        """The non-zero counts, in ``Count`` order."""
        snapshot = dict(self._counts)
        return ((c, snapshot[c]) for c in Count if snapshot.get(c))

    def as_dict(self) -> dict[str, int]:
        """The non-zero counts by name (``Pass.stats``, the JSON report)."""
        return {c.value: n for c, n in self.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tally) and self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Tally({self.as_dict()!r})"

    def _sum(self, keys: tuple[Count, ...]) -> int:
        return sum(self[k] for k in keys)

    # -- the sums a Pass row keeps ----------------------------------------------------------------------------
    @property
    def new(self) -> int:
        return self[Count.NEW]

    @property
    def updated(self) -> int:
        return self[Count.UPDATED]

    @property
    def unchanged(self) -> int:
        return self._sum(UNCHANGED)

    @property
    def skipped(self) -> int:
        return self._sum(SKIPPED)

    @property
    def failed(self) -> int:
        return self._sum(FAILED)

    @property
    def blocked(self) -> int:
        return self[Count.BLOCKED]
