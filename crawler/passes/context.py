"""What one pass over one source knows before it starts and learns while it runs, and the services it uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scrapy import Spider
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.config import SourceConfig
from pipelines import items as outcome
from pipelines.items import KnownPage, RetryState
from pipelines.store import Store
from pipelines.tally import Count, Tally
from pipelines.urlstates import state_key
from pipelines.worker import WorkerPool


@dataclass
class PassContext:
    source: str
    now: datetime
    since: datetime
    revisit: timedelta
    first_pass: bool
    revisit_every: timedelta = timedelta(hours=1)
    known: dict[str, KnownPage] = field(default_factory=dict)
    # Failed and blocked URLs, and pages a `keep: matching` source read and did not keep, by the key their
    # records are kept under (pipelines.urlstates.state_key): look them up with retry_state / read_unmatched.
    retries: dict[str, RetryState] = field(default_factory=dict)
    page_attempts: int = 8
    unmatched: set[str] = field(default_factory=set)
    watermark: str | None = None
    feed_etag: str | None = None
    feed_last_modified: str | None = None
    # learned during the pass
    new_watermark: str | None = None
    new_feed_etag: str | None = None
    new_feed_last_modified: str | None = None
    start_error: str | None = None  # the source's own URL failed: the pass failed
    start_blocked: bool = False
    walk_complete: bool = False  # the API walk reached its end (or the watermark): the new watermark holds
    max_pages_reached: bool = False  # the walk stopped at the source's page limit
    tally: Tally = field(default_factory=Tally)
    queued: set[str] = field(default_factory=set)  # canonical URLs already requested this pass
    spider_errors: list[str] = field(default_factory=list)  # exceptions raised in the spider's callbacks

    def spider_error(self, failure: Failure, response: Response, spider: Spider) -> None:
        """Scrapy's ``spider_error`` signal: a callback raised, so whatever it had not yielded yet is lost.
        Kept for the pass's record (the pass fails), never left in a log line only."""
        self.tally.add(Count.SPIDER_ERROR)
        exc = failure.value
        self.spider_errors.append(f"{getattr(response, 'url', '?')}: {type(exc).__name__}: {exc}"[:300])

    def revisit_due(self, url: str) -> KnownPage | None:
        """The known page when it is young enough to revisit (conditionally) and was not checked
        within ``revisit_every``, else None."""
        page = self.known.get(url)
        if page is None:
            return None
        born = page.published or page.first_seen
        if self.now - born > self.revisit:
            return None
        if page.last_checked is not None and self.now - page.last_checked < self.revisit_every:
            return None
        return page

    def due_revisits(self, source: str) -> list[str]:
        """Where to re-check this source's stored pages that are due a conditional revisit (its feed or
        sitemap being unchanged): the address each was last fetched from."""
        due = {page.fetch_url or url for url, page in self.known.items()
               if page.source == source and self.revisit_due(url)}
        return sorted(due)

    def retry_state(self, key: str) -> RetryState | None:
        """The record of a page (by its dedup key) that failed or was blocked before, if it has one."""
        return self.retries.get(state_key(key))

    def read_unmatched(self, key: str) -> bool:
        """Whether a `keep: matching` source read this page (by its dedup key) and did not keep it."""
        return state_key(key) in self.unmatched

    def retry_wait(self, url: str) -> str | None:
        """Why a failed or blocked URL (a dedup key) is not to be fetched now (its backoff runs, or it was given
        up), else None (never failed, or due a retry)."""
        state = self.retry_state(url)
        if state is None:
            return None
        if state.status == outcome.TOO_COMPLEX:
            return "too complex to extract; given up"
        if state.next_attempt is None:
            if state.attempts >= self.page_attempts:
                return f"{state.status}; given up after {state.attempts} tries"
            return None
        if state.next_attempt > self.now:
            return f"{state.status}; next try at {state.next_attempt:%Y-%m-%d %H:%M} UTC"
        return None

    def due_retries(self, source: str) -> list[str]:
        """Where to try again this source's failed and blocked pages whose backoff has run out, whether or not
        its feed or listing still links them: the address each was last asked for."""
        due = []
        for url, state in self.retries.items():
            if (state.source == source and state.fetch_url and state.next_attempt is not None
                    and url not in self.queued and url not in self.known and self.retry_wait(url) is None):
                due.append(state.fetch_url)
        return sorted(due)


@dataclass(frozen=True)
class PassServices:
    """What the Scrapy process of one pass is given for one source: its spider and the item stages
    (``crawler.fetch.stages``, built by ``from_crawler``) take everything they use from here."""

    source: SourceConfig
    ctx: PassContext
    store: Store  # shared by the sources of the process
    pool: WorkerPool  # the extraction workers, shared too
