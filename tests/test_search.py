"""The search grammar on both databases: a table of queries and the items each must find (exactly),
ranking, pagination, facets, the timeline, index maintenance and the migration of an existing store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from search_support import DOCS, load
from sqlalchemy import delete, func, select, update

from pipelines.db import Database, DatabaseError
from pipelines.models import Item, SearchKey
from pipelines.search import QueryError, count_at_most, count_matches, facets, overview, parse, search, timeline

ALL = {d.key for d in DOCS}
TDA = {"tda-es", "tda-doj", "tda-usao"}
ARAGUA = TDA | {"aragua-state", "train"}
TREN = TDA | {"train"}

# (query, the keys of the items it must find). `{s1}` is the id of story s1.
TABLE: list[tuple[str, set[str]]] = [
    # words: all must match, any order, case and accents ignored
    ("aragua", ARAGUA),
    ("ARAGUA tren", TREN),
    ("tren aragua", TREN),
    ("ÁRAGUA", ARAGUA),
    ("extradicion", {"tda-es"}),
    ("EXTRADICIÓN", {"tda-es"}),
    ("nino", {"nino"}),
    ("niño", {"nino"}),
    ("NIÑO", {"nino"}),
    ("anos", {"nino"}),
    ("mexico", {"guns", "pact-en", "pact-es"}),
    ("méxico", {"guns", "pact-en", "pact-es"}),
    ("surete", {"fent-fr"}),
    ("sûreté", {"fent-fr"}),
    ("maracay", {"nino", "aragua-state"}),
    ("trata", {"tda-es", "nino"}),
    ("sentenced", {"tda-doj", "tda-usao", "guns"}),
    ("fentanyl", {"fent-pills", "fent-fr"}),
    # phrases; words cut at punctuation as the index cuts them
    ('"tren de aragua"', TDA),
    ('"Tren  de   ARAGUA"', TDA),
    ('"laced pills"', {"fent-pills"}),
    ('"pills laced"', set()),
    ("fentanyl-laced", {"fent-pills"}),
    ("u.s.", {"tda-usao", "guns", "pact-en"}),
    ("U.S.", {"tda-usao", "guns", "pact-en"}),
    ("ar-15", {"guns"}),
    ("3kg", {"fent-pills"}),
    ("4,000", {"fent-pills"}),
    # OR between terms, and with other words
    ("fentanyl OR fentanilo", {"fent-pills", "fent-fr", "tda-es", "pact-es"}),
    ("fentanilo OR fentanyl topic:agreement", {"pact-es"}),
    ("trafficking OR trata topic:tda", TDA),
    ("tren OR", TREN),
    ("OR tren", TREN),
    ("tren OR OR aragua", ARAGUA),
    ("trata oR nino", set()),  # a lower-case "or" is a word
    # exclusion
    ("sentenced -aragua", {"guns"}),
    ("sentenced NOT aragua", {"guns"}),
    ('sentenced -"tren de aragua"', {"guns"}),
    ("-aragua", ALL - ARAGUA),
    ("aragua -tren -maracay", set()),
    ("aragua -maracay", TREN),
    # filters
    ("topic:tda", TDA),
    ("topic:TDA", TDA),
    ("topic:fentanyl,firearms", {"fent-pills", "fent-fr", "guns", "pact-es"}),
    ("topic:agreement topic:firearms", {"pact-es"}),
    ("-topic:tda aragua", {"aragua-state", "train"}),
    ("source:doj", {"tda-doj", "fent-pills", "guns"}),
    ("source:doj,usao sentenced", {"tda-doj", "tda-usao", "guns"}),
    ('source:"noticias-es"', {"tda-es", "pact-es", "nino", "aragua-state", "train"}),
    ("-source:noticias-es tren", {"tda-doj", "tda-usao"}),
    ("lang:es aragua", {"tda-es", "aragua-state", "train"}),
    ("lang:en aragua", {"tda-doj", "tda-usao"}),
    ("lang:fr", {"fent-fr"}),
    ("-lang:es -lang:en", {"fent-fr", "hostile"}),
    ("since:2026-10-01", {"tda-es", "tda-doj", "tda-usao", "fent-fr"}),
    ("until:2026-06-15", {"hostile", "aragua-state", "train"}),
    ("since:2026-10-01 until:2026-11-01", {"tda-doj", "tda-usao"}),
    ("story:{s1}", {"tda-doj", "tda-usao"}),
    ("-story:{s1} aragua", {"tda-es", "aragua-state", "train"}),
    # hostile input: never an error of the database, read as the words it holds
    ('"', ALL),
    ("*", ALL),
    (":", ALL),
    ("(", ALL),
    ("OR", ALL),
    ("AND", ALL),
    ("NOT", ALL),
    ("-", ALL),
    ("- -", ALL),
    ('-""', ALL),
    ("\\", ALL),
    ("", ALL),
    ("NEAR", {"hostile", "fent-pills"}),
    ("near", {"hostile", "fent-pills"}),
    ("NEAR(tren aragua)", set()),
    ("tren*", TREN),
    ("^tren", TREN),
    ("title:colon", {"hostile"}),
    ("'; DROP TABLE items; --", set()),
    ('tren "de aragua', TREN),  # a stray quote: the phrase runs to the end
    ('"unclosed tren de', set()),
    ('a"b', {"hostile"}),
    ("{braces}", {"hostile"}),
    ("<b>", {"hostile"}),
    ("markup & odd", {"hostile"}),
    ("🔫 rifles", {"guns"}),
    ("items_fts:tren", set()),  # FTS5's column filter is not read: a phrase "items fts tren"
    ("tren AND aragua", TREN),
    ("+tren", TREN),
]


@pytest.fixture
def store(db: Database) -> dict[str, int]:
    return load(db)


def _keys(ids: dict[str, int], found: list[int]) -> set[str]:
    by_id = {v: k for k, v in ids.items() if not k.startswith("story:")}
    return {by_id[i] for i in found}


def test_the_grammar_table(db: Database, store: dict[str, int]) -> None:
    failures = []
    with db.read() as s:
        for text, expected in TABLE:
            q = parse(text.replace("{s1}", str(store["story:s1"])))
            page = search(s, q, limit=100)
            got = _keys(store, [h.id for h in page.hits])
            if got != expected or page.total != len(expected) or count_matches(s, q) != len(expected):
                failures.append(f"{text!r}: got {sorted(got)} (total {page.total}), expected {sorted(expected)}")
    assert not failures, "\n".join(failures)


def test_a_title_match_ranks_above_a_mention_and_newer_above_older(db: Database, store: dict[str, int]) -> None:
    with db.read() as s:
        # "sentenced" is in the titles of all three; the one two months older comes last.
        hits = search(s, parse("sentenced"), limit=10).hits
        assert {hits[0].id, hits[1].id} == {store["tda-usao"], store["tda-doj"]} and hits[2].id == store["guns"]
        assert all(h.rank is not None for h in hits)
        assert hits[0].rank is not None and hits[-1].rank is not None and hits[0].rank > hits[-1].rank
        # A Spanish word finds the Spanish item only (no stemming, no translation).
        hits = search(s, parse("acuerdo"), limit=10).hits
        assert [h.id for h in hits] == [store["pact-es"]]
    # Two items of the same day, the word in the title of one and the text of the other.
    with db.write() as s:
        day = s.get(Item, store["nino"])
        assert day is not None
        when = day.published
        for key, title, text in (("in-text", "A report from Nogales", "The ring moved heroin north."),
                                 ("in-title", "Heroin ring dismantled", "A report from Nogales.")):
            s.add(Item(url=f"https://example.org/{key}", source="doj", title=title, text=text, published=when,
                       first_seen=when, updated=when, content_hash=key))
        # The same text on two days: the newer first.
        for key, day_ in (("older", "2026-03-01"), ("newer", "2026-03-08")):
            at = datetime.fromisoformat(day_).replace(tzinfo=UTC)
            s.add(Item(url=f"https://example.org/{key}", source="doj", title=f"Cocaine seizure ({key})",
                       text="Cocaine seized at the port.", published=at, first_seen=at, updated=at, content_hash=key))
    with db.read() as s:
        titles = [h.title for h in search(s, parse("heroin"), limit=10).hits]
        assert [h.title for h in search(s, parse("cocaine"), limit=10).hits] == [
            "Cocaine seizure (newer)", "Cocaine seizure (older)"]
    assert titles == ["Heroin ring dismantled", "A report from Nogales"]


def test_hits_carry_fields_and_a_marked_html_safe_snippet(db: Database, store: dict[str, int]) -> None:
    with db.read() as s:
        hit = search(s, parse("extradicion"), limit=1).hits[0]
        assert hit.id == store["tda-es"] and hit.source == "noticias-es" and hit.language == "es"
        assert hit.topics == ["tda"] and hit.url == "https://example.org/tda-es"
        assert "<mark>extradición</mark>" in hit.snippet
        odd = search(s, parse("markup"), limit=1).hits[0]
        assert "&lt;b&gt;<mark>markup</mark>&lt;/b&gt;" in odd.snippet and "&amp;" in odd.snippet
        assert "<b>" not in odd.snippet
        assert odd.title_html.startswith("Quote &quot; and")
        assert search(s, parse("topic:tda"), limit=1).hits[0].rank is None


@pytest.mark.parametrize("text", ["", "aragua OR fentanyl OR mexico OR trata", "-aragua"])
def test_keyset_pages_cover_every_match_once(db: Database, store: dict[str, int], text: str) -> None:
    with db.read() as s:
        q = parse(text)
        whole = [h.id for h in search(s, q, limit=100).hits]
        seen: list[int] = []
        cursor = None
        for _ in range(20):
            page = search(s, q, limit=2, cursor=cursor)
            seen += [h.id for h in page.hits]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == whole and len(set(seen)) == len(seen)


def test_a_bad_cursor_is_a_query_error(db: Database, store: dict[str, int]) -> None:
    with db.read() as s:
        ranked = search(s, parse("aragua"), limit=1).next_cursor
        assert ranked is not None
        for bad in ("nonsense", "!!!", "W10", ranked):
            with pytest.raises(QueryError, match="cursor"):
                search(s, parse(""), limit=1, cursor=bad)  # a ranked cursor is not a by-date one


def test_facets_count_the_matching_items(db: Database, store: dict[str, int]) -> None:
    with db.read() as s:
        f = facets(s, parse("aragua"))
    assert f["topic"] == [("tda", 3)]
    assert f["source"] == [("noticias-es", 3), ("doj", 1), ("usao", 1)]
    assert f["lang"] == [("es", 3), ("en", 2)]
    assert f["month"] == [("2026-11", 1), ("2026-10", 2), ("2026-06", 1), ("2026-05", 1)]
    with db.read() as s:
        assert facets(s, parse("nothingmatchesthis")) == {"topic": [], "source": [], "lang": [], "month": []}


def test_the_timeline_counts_per_topic_per_period(db: Database, store: dict[str, int]) -> None:
    with db.read() as s:
        weeks = timeline(s, parse("topic:tda since:2026-10-01"))
        months = timeline(s, parse(""), bucket="month")
        facets_all = facets(s, parse(""))
        none = timeline(s, parse("nothingmatchesthis"))
        both = overview(s, parse(""), bucket="month")
    assert both == (facets_all, months)
    assert none.periods == [] and none.series == {}
    # A Saturday, 2026-08-01: its week starts in July, its month is August only.
    at = datetime(2026, 8, 1, 12, tzinfo=UTC)
    with db.write() as s:
        s.add(Item(url="https://example.org/sat", source="doj", title="Zanahoria", text="Zanahoria.", published=at,
                   first_seen=at, updated=at, content_hash="sat"))
    with db.read() as s:
        august = timeline(s, parse("zanahoria"), bucket="month")
        week = timeline(s, parse("zanahoria"))
    assert [str(p) for p in august.periods] == ["2026-08-01"] and august.series == {}
    assert week.bucket == "week" and [str(p) for p in week.periods] == ["2026-07-27"]
    assert weeks.bucket == "week" and str(weeks.periods[0]) == "2026-10-05" and str(weeks.periods[-1]) == "2026-11-09"
    assert weeks.series == {"tda": [2, 0, 0, 0, 0, 1]}
    assert months.bucket == "month" and [str(p) for p in months.periods][:2] == ["2026-05-01", "2026-06-01"]
    assert len(months.periods) == 7 and sum(months.series["tda"]) == 3 and months.series["firearms"] == [0, 0, 1, 1, 0, 0, 0]
    assert none.periods == [] and none.series == {}


def test_the_index_follows_changes_and_deletions(db: Database, store: dict[str, int]) -> None:
    with db.write() as s:
        s.execute(update(Item).where(Item.id == store["nino"]).values(text="Rewritten: a story about Cúcuta."))
        s.execute(update(Item).where(Item.id == store["guns"]).values(source="moved"))  # not an indexed column
        s.execute(delete(Item).where(Item.id == store["train"]))
    with db.read() as s:
        assert [h.id for h in search(s, parse("cucuta"), limit=5).hits] == [store["nino"]]
        assert search(s, parse("maracay"), limit=5).total == 1  # the old text is gone from the index
        assert search(s, parse("rifles"), limit=5).total == 1
        assert _keys(store, [h.id for h in search(s, parse("tren"), limit=5).hits]) == TDA
        # search_keys (what filters and sorting read) follows the items through the triggers.
        assert [h.id for h in search(s, parse("source:moved"), limit=5).hits] == [store["guns"]]
        assert s.scalar(select(func.count()).select_from(SearchKey).where(SearchKey.item_id == store["train"])) == 0
    with db.write() as s:
        s.execute(update(Item).where(Item.id == store["guns"]).values(
            language="FR-ca", published=datetime(2001, 2, 3, tzinfo=UTC)))
    with db.read() as s:
        assert [h.id for h in search(s, parse("rifles lang:fr until:2002-01-01"), limit=5).hits] == [store["guns"]]
        newest_first = [h.id for h in search(s, parse(""), limit=100).hits]
        assert newest_first[-1] == store["guns"]  # the oldest date now
        keys = s.scalar(select(func.count()).select_from(SearchKey))
        assert keys == s.scalar(select(func.count()).select_from(Item))


def test_the_migration_indexes_a_store_that_had_items_before(database_url: str) -> None:
    from alembic import command

    from pipelines.db import _alembic_config

    db = Database(database_url)
    try:
        ids = load(db)
        cfg = _alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0008_untrusted_dates")
    finally:
        db.dispose()
    again = Database(database_url)  # migrates to the head: 0010 builds the index over what is stored
    try:
        with again.read() as s:
            assert _keys(ids, [h.id for h in search(s, parse('"tren de aragua"'), limit=10).hits]) == TDA
            assert s.scalar(select(Item.id).where(Item.id == ids["nino"])) == ids["nino"]
            # 0013 filled search_keys from the stored items: filters and the newest-first order read it.
            assert s.scalar(select(func.count()).select_from(SearchKey)) == s.scalar(
                select(func.count()).select_from(Item))
            newest = [h.id for h in search(s, parse(""), limit=1000).hits]
            assert sorted(newest) == sorted(i for k, i in ids.items() if not k.startswith("story:"))
    finally:
        again.dispose()


def test_a_sqlite_without_fts5_is_refused_in_one_line(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # This Python's SQLite has FTS5; the check is made to answer as on a build without it.
    import pipelines.db

    monkeypatch.setattr(pipelines.db, "sqlite_has_fts5", lambda engine: False)
    with pytest.raises(DatabaseError) as err:
        Database(sqlite_url)
    message = str(err.value)
    assert "\n" not in message and "FTS5" in message and "nothing was changed" in message


@pytest.mark.parametrize("window", [1, 2, 3, 5])
def test_pages_walk_window_after_window_and_reach_every_match(db: Database, store: dict[str, int], window: int,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.search.engine as engine

    monkeypatch.setattr(engine, "RANK_WINDOW", window)
    q = parse("aragua OR fentanyl OR mexico OR trata -nino")
    expected = ARAGUA | {"fent-pills", "fent-fr", "guns", "pact-en", "pact-es"}
    with db.read() as s:
        for limit in (1, 2, 4, 100):
            seen: list[int] = []
            cursor = None
            for _ in range(40):
                page = search(s, q, limit=limit, cursor=cursor)
                seen += [h.id for h in page.hits]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert len(seen) == len(set(seen)) and _keys(store, seen) == expected, (limit, seen)
        # The first page ranks the newest `window` matches (in stored order) only.
        first = search(s, q, limit=100 if window == 5 else window)
        newest = sorted((store[k] for k in expected), reverse=True)[:window]
        if window < 5:
            assert sorted(h.id for h in first.hits) == sorted(newest)


def test_facets_count_the_newest_matches_of_a_broad_query(db: Database, store: dict[str, int],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.search.engine as engine

    monkeypatch.setattr(engine, "FACET_WINDOW", 2)
    with db.read() as s:
        f = facets(s, parse("aragua"))  # the two stored last: aragua-state and train
        assert f["source"] == [("noticias-es", 2)] and f["topic"] == []
        assert count_at_most(s, parse("aragua lang:es"), 2) is None and count_at_most(s, parse("aragua lang:es"), 3) == 3
        assert count_at_most(s, parse("aragua"), 2) == 5 if db.is_sqlite else count_at_most(s, parse("aragua"), 2) is None


@pytest.mark.parametrize(("rank", "scan"), [(2, 1), (5, 2), (1, 3)])
def test_a_filtered_search_looks_through_the_words_matches_a_slice_at_a_time(
        db: Database, store: dict[str, int], rank: int, scan: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.search.engine as engine

    monkeypatch.setattr(engine, "RANK_WINDOW", rank)
    monkeypatch.setattr(engine, "SCAN_WINDOW", scan)
    q = parse("aragua OR fentanyl OR mexico OR trata -lang:fr")
    with db.read() as s:
        expected = {h.id for h in search(s, parse("aragua OR fentanyl OR mexico OR trata"), limit=100).hits}
        expected -= {h.id for h in search(s, parse("lang:fr"), limit=100).hits}
        seen: list[int] = []
        cursor = None
        for _ in range(60):
            page = search(s, q, limit=2, cursor=cursor)
            seen += [h.id for h in page.hits]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) and set(seen) == expected
        # More word matches than one slice (on PostgreSQL: estimated so from the newest ids): not counted
        # rather than a count that tests the filter on all of them; the exact count is still there to ask.
        assert count_at_most(s, q, 100) is None and count_matches(s, q) == len(expected)
