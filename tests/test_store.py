"""The store on its own: batches, failures inside a batch, duplicates across sources (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipelines.classify import Classifier, TopicResult, TopicsError, topics_digest
from pipelines.db import Database
from pipelines.items import API_TEXT, FEED_TEXT, Article, Outcome
from pipelines.models import AlertEvent, Item, ItemTopic, UrlState
from pipelines.store import Store
from pipelines.tally import Tally

TDA = ("Eight members of the Tren de Aragua gang were charged today in Nashville with sex trafficking "
       "and extortion of Venezuelan migrants.")


class FaultyClassifier(Classifier):
    """The shipped rules, failing on one title: a bug in one record's processing."""

    def matched(self, title: str, text: str, meta: Mapping[str, Sequence[str]] | None = None) -> list[TopicResult]:
        if title == "boom":
            raise RuntimeError("classifier bug")
        return super().matched(title, text, meta)


def faulty() -> FaultyClassifier:
    base = Classifier.from_file(None)
    c = FaultyClassifier.__new__(FaultyClassifier)
    c.__dict__.update(base.__dict__)
    return c


def test_a_bad_record_is_recorded_and_the_rest_of_the_batch_kept(db: Database) -> None:
    store = Store(db, faulty())
    counts = Tally()
    batch: list[Article | Outcome] = [
        Article(url="https://example.org/a", source="s", title="Tren de Aragua members charged", text=TDA),
        Article(url="https://example.org/bad", source="s", title="boom", text="Some text."),
        Article(url="https://example.org/c", source="s", title="Unrelated", text="A county fair opened."),
        Outcome("https://example.org/wall", "s", "blocked", "bot-check page"),
    ]
    store.save(batch, counts)
    assert counts["new"] == 2 and counts["failed"] == 1 and counts["blocked"] == 1
    with db.read() as s:
        urls = set(s.scalars(select(Item.url)))
        states = {u.url: (u.status, u.detail) for u in s.scalars(select(UrlState))}
        events = s.scalar(select(func.count()).select_from(AlertEvent))
    assert urls == {"https://example.org/a", "https://example.org/c"}
    assert states["https://example.org/bad"][0] == "failed" and "classifier bug" in states["https://example.org/bad"][1]
    assert states["https://example.org/wall"] == ("blocked", "bot-check page")
    assert events == 1  # the TdA item, once


def test_nul_characters_are_dropped(db: Database) -> None:
    store = Store(db, Classifier.from_file(None))
    counts = Tally()
    store.save([Article(url="https://example.org/n", source="s", title="Ti\x00tle", text="Te\x00xt of a page.")], counts)
    with db.read() as s:
        item = s.scalar(select(Item))
    assert item is not None and (item.title, item.text) == ("Title", "Text of a page.")


def test_fuller_text_takes_over_a_feed_summary_without_an_update_alert(db: Database) -> None:
    store = Store(db, Classifier.from_file(None))
    counts = Tally()
    url = "https://justice.gov/opa/pr/tda"
    store.save([Article(url=url, source="feed", title="Eight charged in Nashville", text="Eight people were charged.",
                        authority=FEED_TEXT)], counts)
    store.save([Article(url=url, source="api", title="Eight charged in Nashville", text=TDA, authority=API_TEXT,
                        doj_number="26-101")], counts)
    # and the feed again: a weaker text never replaces the API's
    store.save([Article(url=url, source="feed", title="Eight charged in Nashville", text="Eight people were charged.",
                        authority=FEED_TEXT)], counts)
    assert (counts["new"], counts["fuller_text"], counts["duplicate"], counts["updated"]) == (1, 1, 1, 0)
    with db.read() as s:
        item = s.scalar(select(Item))
        topics = list(s.scalars(select(ItemTopic.topic)))
        kinds = [e.kind for e in s.scalars(select(AlertEvent))]
    assert item is not None and item.source == "api" and item.text == TDA and item.doj_number == "26-101"
    assert item.revision_count == 0
    assert topics == ["tda"]
    assert kinds == ["new"]  # the summary matched nothing; the full text's topic is news once


def test_leases(db: Database) -> None:
    from datetime import timedelta

    from pipelines.leases import Leases

    leases = Leases(db)
    assert leases.acquire("source:x", timedelta(minutes=5), owner="a")
    assert not leases.acquire("source:x", timedelta(minutes=5), owner="b")
    assert leases.lock_holder("source:x") == "a"
    leases.release("source:x", owner="a")
    assert leases.acquire("source:x", timedelta(minutes=5), owner="b")


def test_an_article_the_workers_did_not_analyse_fails_loudly(db: Database) -> None:
    """A pass's store has no topic rules: an article without its worker's analysis is never stored as matching
    no topic (the path by which a failed topics load once became "stored with no topics")."""
    store = Store(db, None)
    counts = Tally()
    store.save([Article(url="https://example.org/tda", source="s", title="TdA members charged", text=TDA)], counts)
    assert counts["failed"] == 1 and counts["new"] == 0
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 0
        (state,) = s.scalars(select(UrlState))
    assert state.status == "failed" and "not analysed by an extraction worker" in state.detail


def test_keep_matching_stores_what_matches_and_remembers_the_rest(db: Database) -> None:
    from datetime import timedelta

    from pipelines.timeutil import utcnow

    clock = [utcnow()]
    store = Store(db, Classifier.from_file(None), now=lambda: clock[0])
    counts = Tally()
    store.save([
        Article(url="https://news.example/tda", source="outlet", title="Tren de Aragua members charged", text=TDA,
                keep="matching"),
        Article(url="https://news.example/fair", source="outlet", title="Fair opens", text="A county fair opened.",
                keep="matching"),
        Article(url="https://office.example/fair", source="office", title="Fair opens", text="A county fair opened."),
    ], counts)
    assert counts["new"] == 2 and counts["unmatched"] == 1 and counts.skipped == 1
    with db.read() as s:
        assert set(s.scalars(select(Item.url))) == {"https://news.example/tda", "https://office.example/fair"}
        assert {u.url: u.status for u in s.scalars(select(UrlState))} == {"https://news.example/fair": "unmatched"}
    assert store.load_unmatched() == {"https://news.example/fair"}
    clock[0] += timedelta(days=61)  # long gone from any feed: no longer held in memory
    assert store.load_unmatched() == set()


def test_an_unmatched_page_is_judged_again_under_new_topic_rules(db: Database) -> None:
    """The record names the digest of the rules that found no topic; under other rules the page is not in the
    set a pass skips, its source is read in full, and what it no longer lists is recorded under the new rules."""
    fair = Article(url="https://news.example/fair", source="outlet", title="Fair opens", text="A county fair opened.",
                   keep="matching")
    old = Store(db, Classifier.from_file(None), topics_digest="0123456789abcdef")
    old.save([fair, Article(url="https://news.example/market", source="outlet", title="Market opens",
                            text="A farmers market opened.", keep="matching")], Tally())
    assert old.load_unmatched() == {"https://news.example/fair", "https://news.example/market"}
    assert old.stale_unmatched_sources() == set()
    new = Store(db, Classifier.from_file(None), topics_digest="fedcba9876543210")
    assert new.load_unmatched() == set() and new.stale_unmatched_sources() == {"outlet"}
    new.save([fair], Tally())  # read again: still no topic, now judged under the new rules
    assert new.load_unmatched() == {"https://news.example/fair"} and new.stale_unmatched_sources() == {"outlet"}
    new.restamp_unmatched("outlet")  # the market page was not listed any more
    assert new.load_unmatched() == {"https://news.example/fair", "https://news.example/market"}
    assert new.stale_unmatched_sources() == set() and old.load_unmatched() == set()


def test_the_topics_digest_follows_the_rules_not_the_layout(tmp_path: Path) -> None:
    shipped = (Path(__file__).resolve().parent.parent / "config" / "topics.yaml").read_text(encoding="utf-8")
    variants = {
        "same": shipped,
        "comment": "# a note on the rules\n" + shipped.replace("\n", "\n\n", 3),
        "threshold": shipped.replace("\n    threshold: 2.0\n", "\n    threshold: 2.5\n", 1),
    }
    assert variants["threshold"] != shipped
    digests = {}
    for name, text in variants.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
        digests[name] = topics_digest(tmp_path / f"{name}.yaml")
    assert digests["same"] == topics_digest(None) == digests["comment"] != digests["threshold"]
    assert len(digests["same"]) == 16
    with pytest.raises(TopicsError, match="cannot read"):
        topics_digest(tmp_path / "missing.yaml")
