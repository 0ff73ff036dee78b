"""What one pass over one source knows before it starts and learns while it runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipelines.items import KnownPage
from pipelines.timeutil import as_utc


@dataclass
class PassContext:
    source: str
    now: datetime
    since: datetime
    revisit: timedelta
    first_pass: bool
    known: dict[str, KnownPage] = field(default_factory=dict)
    watermark: str | None = None
    feed_etag: str | None = None
    feed_last_modified: str | None = None
    # learned during the pass
    new_watermark: str | None = None
    new_feed_etag: str | None = None
    new_feed_last_modified: str | None = None
    start_error: str | None = None  # the source's own URL failed: the pass failed
    start_blocked: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    queued: set[str] = field(default_factory=set)  # canonical URLs already requested this pass
    requests: int = 0
    bytes: int = 0

    def revisit_due(self, url: str) -> KnownPage | None:
        """The known page when it is young enough to revisit (conditionally), else None."""
        page = self.known.get(url)
        if page is None:
            return None
        born = as_utc(page.published or page.first_seen)
        return page if self.now - born <= self.revisit else None
