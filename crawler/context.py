"""What one pass over one source knows before it starts and learns while it runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pipelines.items import KnownPage
from pipelines.timeutil import as_utc


@dataclass
class PassContext:
    source: str
    now: datetime
    since: datetime
    revisit: timedelta
    first_pass: bool
    revisit_every: timedelta = timedelta(hours=1)
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
    spider_errors: list[str] = field(default_factory=list)  # exceptions raised in the spider's callbacks

    def spider_error(self, failure: Any, response: Any, spider: Any) -> None:
        """Scrapy's ``spider_error`` signal: a callback raised, so whatever it had not yielded yet is lost.
        Kept for the pass's record (the pass fails), never left in a log line only."""
        self.counts["spider_error"] += 1
        exc = failure.value
        self.spider_errors.append(f"{getattr(response, 'url', '?')}: {type(exc).__name__}: {exc}"[:300])

    def revisit_due(self, url: str) -> KnownPage | None:
        """The known page when it is young enough to revisit (conditionally) and was not checked
        within ``revisit_every``, else None."""
        page = self.known.get(url)
        if page is None:
            return None
        born = as_utc(page.published or page.first_seen)
        if self.now - born > self.revisit:
            return None
        if page.last_checked is not None and self.now - as_utc(page.last_checked) < self.revisit_every:
            return None
        return page

    def due_revisits(self, source: str) -> list[str]:
        """Where to re-check this source's stored pages that are due a conditional revisit (its feed or
        sitemap being unchanged): the address each was last fetched from."""
        due = {page.fetch_url or url for url, page in self.known.items()
               if page.source == source and self.revisit_due(url)}
        return sorted(due)
