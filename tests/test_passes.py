"""One pass's plumbing on its own: the tally, the report (line, JSON, row) and the ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from crawler.passes import ledger
from crawler.passes.report import PassReport
from pipelines import items as outcome
from pipelines.db import Database
from pipelines.models import Pass
from pipelines.tally import Count, Tally

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_the_tally_sums_what_a_pass_row_keeps() -> None:
    t = Tally({Count.NEW: 2, Count.TRIVIAL_CHANGE: 1, Count.NOT_MODIFIED: 3, Count.UNCHANGED: 4})
    t.add(outcome.KNOWN, 5)  # an Outcome's status is the Count of that name
    t.add(Count.DUPLICATE)
    t.add(Count.TOO_LARGE)
    t.add(outcome.FAILED, 2)
    t.add(Count.BLOCKED, 0)
    assert (t.new, t.updated, t.unchanged, t.skipped, t.failed, t.blocked) == (2, 0, 8, 6, 3, 0)
    assert t.as_dict() == {"new": 2, "unchanged": 4, "trivial_change": 1, "not_modified": 3, "known": 5,
                           "duplicate": 1, "failed": 2, "too_large": 1}
    with pytest.raises(ValueError, match="walk_complete"):
        t.add("walk_complete")  # a control flag is not a count


def test_a_tally_read_back_from_stats_leaves_what_is_not_a_count() -> None:
    t = Tally.from_stats({"new": 1, "requests": 9, "seconds": 1.5, "max_pages_reached": 1, "refused": 2,
                          "bogus": 3, "failed": True})
    assert t.as_dict() == {"new": 1, "refused": 2}
    merged = Tally({Count.NEW: 1})
    merged.merge(t)
    assert merged == Tally({Count.NEW: 2, Count.REFUSED: 2})


def test_the_summary_line_shows_the_details_that_are_not_zero() -> None:
    r = PassReport("news", "ok", 1, Tally({Count.NEW: 1, Count.RETRIED: 1, Count.WAITING: 2, Count.GIVEN_UP: 1,
                                           Count.STORY_COPY: 1}), responses=4, seconds=0.25)
    assert r.line() == ("news: ok: 1 new, 0 updated, 0 unchanged, 1 retried, 2 waiting to be retried, 1 given up, "
                        "4 responses in 0.2s")
    locked = PassReport("news", "locked", error="being crawled by h:1")
    assert locked.line(locked_note="") == "news: locked — being crawled by h:1"


@pytest.mark.parametrize(("counts", "details"), [
    ({Count.FAILED: 1, Count.BAD_RECORD: 1}, "1 failed (1 unreadable API record)"),
    ({Count.FAILED: 3, Count.BAD_RECORD: 2}, "3 failed (2 unreadable API records)"),
    ({Count.FAILED: 2}, "2 failed"),
    ({Count.DUPLICATE: 1, Count.NO_LINK: 1}, "1 duplicate, 1 entry without link"),
    ({Count.DUPLICATE: 2, Count.NO_LINK: 3}, "2 duplicates, 3 entries without link"),
    ({Count.TOO_COMPLEX: 1, Count.TOO_LARGE: 1}, "1 too complex to extract (given up), 1 too large"),
])
def test_the_summary_line_names_failures_in_grammatical_english(counts: dict[Count, int], details: str) -> None:
    r = PassReport("api", "ok", 1, Tally({Count.NEW: 1, **counts}), responses=2, seconds=1.0)
    assert r.line() == f"api: ok: 1 new, 0 updated, 0 unchanged, {details}, 2 responses in 1.0s"


def test_a_row_without_counts_in_its_stats_reports_its_columns() -> None:
    row = Pass(id=5, source="feed", status="ok", new=2, updated=1, unchanged=3, failed=1, blocked=0, fetched=7,
               stats={})
    r = PassReport.from_row(row, seconds=1.0)
    assert (r.pass_id, r.new, r.updated, r.tally.unchanged, r.tally.failed, r.responses) == (5, 2, 1, 3, 1, 7)


def test_pass_records(db: Database) -> None:
    pid = ledger.begin_pass(db, "s", NOW)
    counts = Tally({Count.NEW: 3, Count.FAILED: 1, Count.BLOCKED: 2, Count.KNOWN: 5})
    p = ledger.finish_pass(db, PassReport("s", "ok", pid, counts, responses=9), NOW, watermark="w1")
    assert (p.new, p.failed, p.blocked, p.skipped, p.fetched) == (3, 1, 2, 5, 9)
    assert ledger.source_state(db, "s").watermark == "w1"
    pid = ledger.begin_pass(db, "s", NOW)
    ledger.finish_pass(db, PassReport("s", "failed", pid, Tally(), "boom"), NOW, watermark="w2")
    state = ledger.source_state(db, "s")
    assert state.watermark == "w1" and state.consecutive_failures == 1
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Pass)) == 2


def test_the_row_and_its_report_agree(db: Database) -> None:
    """What a pass prints is what its row says, read back (the daemon logs the row's report)."""
    tally = Tally({Count.NEW: 2, Count.NOT_MODIFIED: 1, Count.REFUSED: 2, Count.TOO_LARGE: 1})
    pid = ledger.begin_pass(db, "feed", NOW)
    report = PassReport("feed", "failed", pid, tally, "https://u:secret@example.org/feed: HTTP 500", 2.5,
                        requests=6, responses=5, bytes=100, retries=1, max_pages_reached=True)
    ledger.finish_pass(db, report, NOW + timedelta(seconds=3))
    with db.read() as s:
        row = s.get(Pass, pid)
        assert row is not None
        assert row.error is not None and "secret" not in row.error  # credentials never stored
        assert row.stats["refused"] == 2 and row.stats["requests"] == 6 and row.stats["max_pages_reached"] == 1
        back = PassReport.from_row(row)
    assert back.tally == tally and back.responses == 5 and back.max_pages_reached
    assert back.line().split(" — ")[0] == report.line().split(" — ")[0]


def test_a_text_given_by_an_api_is_analysed_in_a_worker_and_stored_with_its_topics(db: Database) -> None:
    """Every article leaves the extract stage with its worker's analysis; the pass's store (no rules) takes it."""
    import asyncio

    from crawler.config import Config
    from crawler.fetch.stages import ExtractStage
    from crawler.passes.context import PassContext, PassServices
    from pipelines.items import Article
    from pipelines.models import ItemTopic
    from pipelines.store import Store
    from pipelines.worker import WorkerPool

    source = Config.model_validate({"sources": [
        {"name": "doj-api", "kind": "doj_api", "url": "https://www.justice.gov/api/v1/press_releases.json"}]}).sources[0]
    ctx = PassContext(source="doj-api", now=NOW, since=NOW - timedelta(days=30), revisit=timedelta(days=3),
                      first_pass=True)
    store = Store(db, None)
    pool = WorkerPool(1, None, page_timeout=60)
    try:
        stage = ExtractStage(PassServices(source, ctx, store, pool))
        text = ("Eight members of the Tren de Aragua gang were charged today in Nashville with sex trafficking "
                "and extortion of Venezuelan migrants.")
        out = asyncio.run(stage.process_item(Article(url="https://www.justice.gov/opa/pr/tda", source="doj-api",
                                                     title="Tren de Aragua members charged", text=text)))
    finally:
        pool.shutdown()
    assert isinstance(out, Article) and out.analysis is not None
    assert "tda" in {t.topic for t in out.analysis.topics}
    store.save([out], ctx.tally)
    assert ctx.tally.new == 1
    with db.read() as s:
        assert set(s.scalars(select(ItemTopic.topic))) >= {"tda"}
