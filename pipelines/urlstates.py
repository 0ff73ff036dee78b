"""Per-URL records of the pages that could not be stored: failed, blocked, too large, disallowed, without text.

The store writes them (``record``, ``forget``) inside its batch transaction, beside the items; a pass reads
the failed and blocked ones (``load_retries``) to decide what to try again (``pipelines.retry``). ``status``
reads them to say what waits and what was given up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pipelines import items as outcome
from pipelines.db import Database
from pipelines.items import Outcome, RetryState
from pipelines.models import UrlState
from pipelines.redact import MASK, redact_text, redact_url
from pipelines.retry import RETRIED, RetryPolicy

# Outcomes worth a per-URL record (the others are only counted).
RECORDED = frozenset({outcome.BLOCKED, outcome.FAILED, outcome.TOO_LARGE, outcome.ROBOTS, outcome.NO_TEXT,
                      outcome.REFUSED, outcome.UNMATCHED, outcome.TOO_COMPLEX})


# The validity window of a signed URL (S3, CloudFront, Google Cloud Storage, Azure SAS): re-signed each
# time its source links it, so, beside a signature, not part of which page it is.
_SIGNING_TIMES = frozenset({"expires", "expiry", "exp", "x-amz-expires", "x-amz-date", "x-goog-expires",
                            "x-goog-date", "se", "st", "validfrom", "validto"})


def state_key(url: str) -> str:
    """The key a page's record is kept under: its dedup key with any credential hidden (a ``?api_key=…``,
    a signature, and then a signed URL's expiry too), bounded. Records are written, found again and cleared
    through this one function, so a page whose address carries a secret backs off and is cleared like any
    other, and a signed page's record is found again when its source signs it anew."""
    key = redact_url(url)
    if key != url:
        parts = urlsplit(key)
        query = "&".join(f"{name}={MASK}" if unquote_plus(name).lower() in _SIGNING_TIMES else pair
                         for pair in parts.query.split("&") for name in [pair.partition("=")[0]])
        key = urlunsplit(parts._replace(query=query))
    return key[:2048]


def storable_address(url: str | None) -> str | None:
    """Where to ask for a page again, if it may be stored: an address that carries a secret (a key, a
    signature with its expiry) is not kept. Such a page is tried again when its source links it anew, at the
    address the source gives then; a redacted address would not answer."""
    if not url or redact_text(url) != url:
        return None
    return url[:2048]


def record(s: Session, o: Outcome, now: datetime, retry: RetryPolicy) -> None:
    """Record (or count one more try of) a page that was not stored, when its outcome is worth a record."""
    if o.status not in RECORDED:
        return
    url = state_key(o.url)
    attempts = (s.scalar(select(UrlState.attempts).where(UrlState.url == url)) or 0) + 1
    # A page (it has an address to ask again) that failed or met a bot wall is tried again later,
    # with a growing wait; the source's own URL is tried on every pass anyway.
    retried = o.status in RETRIED and o.fetch_url is not None
    values = {
        # Credentials in a URL or an error (a source's ?token=…) are never stored.
        "url": url, "source": o.source, "status": o.status, "detail": redact_text(o.detail)[:2000],
        "attempts": attempts, "first_seen": now, "last_attempt": now,
        "next_attempt": retry.next_attempt(o.source, attempts, now) if retried else None,
        "fetch_url": storable_address(o.fetch_url),
        "etag": o.etag[:500] if o.etag else None,
        "last_modified": o.last_modified[:100] if o.last_modified else None,
    }
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(UrlState).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[UrlState.url],
        set_={
            "status": stmt.excluded.status, "detail": stmt.excluded.detail,
            "last_attempt": stmt.excluded.last_attempt, "attempts": UrlState.attempts + 1,
            "source": stmt.excluded.source, "next_attempt": stmt.excluded.next_attempt,
            "fetch_url": func.coalesce(stmt.excluded.fetch_url, UrlState.fetch_url),
            "etag": stmt.excluded.etag, "last_modified": stmt.excluded.last_modified,
        },
    )
    s.execute(stmt)


def forget(s: Session, urls: Sequence[str]) -> None:
    """These pages were read (stored, or found unchanged): no longer failed or blocked."""
    if urls:
        s.execute(delete(UrlState).where(UrlState.url.in_({state_key(u) for u in urls})))


def load_retries(db: Database) -> dict[str, RetryState]:
    """Failed and blocked URLs by ``state_key``: what waits for a retry, and what was given up (after its tries,
    or at once: a page too complex to extract would only cost its deadline again)."""
    with db.read() as s:
        rows = s.execute(
            select(UrlState.url, UrlState.source, UrlState.status, UrlState.attempts, UrlState.next_attempt,
                   UrlState.fetch_url, UrlState.etag, UrlState.last_modified)
            .where(UrlState.status.in_(sorted(RETRIED | {outcome.TOO_COMPLEX})))
        ).all()
    return {r.url: RetryState(r.source, r.status, r.attempts or 1, r.next_attempt, r.fetch_url, r.etag,
                              r.last_modified) for r in rows}


def unmatched_detail(topics: str | None) -> str:
    """What the record of a page that matched no topic says, naming the digest of the topic rules that found
    none in it (``pipelines.classify.topics_digest``)."""
    return "matched no topic (keep: matching)" + (f"; topics {topics}" if topics else "")


def load_unmatched(db: Database, since: datetime, topics: str | None = None) -> set[str]:
    """Pages a ``keep: matching`` source read since ``since`` and did not keep (they matched no topic), by
    ``state_key``. With ``topics`` (the current rules' digest), only those judged under these rules: when the
    topics file has changed since, a page is not in the set, so it is read again and stored if it matches now."""
    where = (UrlState.status == outcome.UNMATCHED) & (UrlState.last_attempt >= since)
    if topics is not None:
        where &= UrlState.detail == unmatched_detail(topics)
    with db.read() as s:
        return set(s.scalars(select(UrlState.url).where(where)))


def _stale(since: datetime, topics: str) -> Any:
    return ((UrlState.status == outcome.UNMATCHED) & (UrlState.last_attempt >= since)
            & (UrlState.detail != unmatched_detail(topics)))


def stale_unmatched_sources(db: Database, since: datetime, topics: str) -> set[str]:
    """Sources with pages judged to match no topic under other topic rules than ``topics``: their next pass reads
    their feed or listing in full (not conditionally), so those pages are met, and read, again."""
    with db.read() as s:
        return set(s.scalars(select(UrlState.source).where(_stale(since, topics)).distinct()))


def restamp_unmatched(db: Database, source: str, since: datetime, topics: str) -> None:
    """After a full pass of ``source``: its pages still judged under other rules were not listed any more (the
    listed ones were read again), so they are recorded under ``topics`` and the source's passes go back to
    conditional requests."""
    with db.write() as s:
        s.execute(update(UrlState).where(_stale(since, topics) & (UrlState.source == source))
                  .values(detail=unmatched_detail(topics)))
