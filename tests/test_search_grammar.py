"""The grammar on its own (no database): how a typed query is read, and which queries are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.search import QueryError, highlight, parse, snippet
from pipelines.search.grammar import MAX_QUERY, fold

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TOPICS = {"tda", "fentanyl", "firearms", "agreement"}


def shape(text: str) -> tuple[list[list[str]], list[str], list[tuple[str, tuple[str, ...], bool]]]:
    q = parse(text, topics=TOPICS, now=NOW)
    return ([[t.text for t in g] for g in q.groups], [t.text for t in q.exclude],
            [(f.field, f.values, f.negate) for f in q.filters])


READ: list[tuple[str, tuple[list[list[str]], list[str], list[tuple[str, tuple[str, ...], bool]]]]] = [
    ("tren aragua", ([["tren"], ["aragua"]], [], [])),
    ('"Tren de Aragua" extradición', ([["tren de aragua"], ["extradición"]], [], [])),
    ("a OR b c", ([["a", "b"], ["c"]], [], [])),
    ("a OR b OR c", ([["a", "b", "c"]], [], [])),
    ("OR a", ([["a"]], [], [])),
    ("a OR", ([["a"]], [], [])),
    ("a -b NOT c", ([["a"]], ["b", "c"], [])),
    ('-"de aragua"', ([], ["de aragua"], [])),
    ("fentanyl-laced", ([["fentanyl laced"]], [], [])),
    ("topic:tda,Fentanyl -source:doj lang:ES story:0012", ([], [], [
        ("topic", ("tda", "fentanyl"), False), ("source", ("doj",), True), ("lang", ("es",), False),
        ("story", ("12",), False)])),
    ('source:"my source" x', ([["x"]], [], [("source", ("my source",), False)])),
    ("foo:bar", ([["foo bar"]], [], [])),
    ("Topic:tda", ([], [], [("topic", ("tda",), False)])),
    ("a OR topic:tda b", ([["a"], ["b"]], [], [("topic", ("tda",), False)])),
    ('" * ( ) : NEAR', ([["near"]], [], [])),  # the stray quote takes the rest: a phrase of one word
    ("* ( ) : -", ([], [], [])),
]


@pytest.mark.parametrize(("text", "expected"), READ)
def test_how_queries_are_read(text: str, expected: object) -> None:
    assert shape(text) == expected


def test_dates_are_read_from_since_and_until() -> None:
    q = parse("since:7d until:2026-11-24", now=NOW)
    assert q.since == datetime(2026, 11, 17, 12, 0, tzinfo=UTC) and q.until == datetime(2026, 11, 24, tzinfo=UTC)
    q = parse("since:2026-01-01 since:2026-02-01 until:2026-12-01 until:2026-11-30", now=NOW)
    assert q.since == datetime(2026, 2, 1, tzinfo=UTC) and q.until == datetime(2026, 11, 30, tzinfo=UTC)


REFUSED: list[tuple[str, str]] = [
    ("since:soon", "since:soon: not a date"),
    ("until:2026-13-45", "until:2026-13-45: not a date"),
    ("since:", "since: needs a value"),
    ("topic:nope", "topic:nope: unknown topic"),
    ("topic:tda,nope", "topic:nope: unknown topic"),
    ("topic:", "topic: needs a value"),
    ("topic:,", "topic: needs a value"),
    ("lang:english", "lang:english: not a language code"),
    ("lang:e1", "lang:e1: not a language code"),
    ("story:abc", "story:abc: not a story id"),
    ("story:-1", "story:-1: not a story id"),
    ("-since:7d", "-since: cannot be negated"),
    ("since:2026-11-02 until:2026-11-01", "since: is not before until:"),
    ("x" * (MAX_QUERY + 1), "query too long"),
    (" ".join(f"w{i}" for i in range(41)), "too many terms"),
    ("is:unread", "is:unread: marks are a web user's"),  # no user (CLI, watchers): nobody's marks to read
    ("is:lost", "is:lost: not a mark"),
    ("is:", "is: needs a value"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_what_is_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(QueryError) as err:
        parse(text, topics=TOPICS, now=NOW)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_is_reads_the_given_users_marks() -> None:
    q = parse("tren is:unread -is:starred", user="alice")
    assert q.user == "alice" and [(f.field, f.values, f.negate) for f in q.filters] == [
        ("is", ("unread",), False), ("is", ("starred",), True)]
    with pytest.raises(QueryError, match="is:nope: not a mark"):
        parse("is:nope", user="alice")


def test_topics_and_sources_are_checked_only_when_known() -> None:
    assert parse("topic:anything source:anything").filters[0].values == ("anything",)
    with pytest.raises(QueryError, match="source:x: no source of that name"):
        parse("source:x", sources=["doj"])


def test_fold_drops_case_and_accents() -> None:
    assert [fold(w) for w in ("Extradición", "NIÑO", "Sûreté", "Straße", "ÁRAGUA")] == [
        "extradicion", "nino", "surete", "strasse", "aragua"]


def test_snippets_are_html_safe_and_marked() -> None:
    marks = parse("aragua extradicion").highlight_tokens()
    text = ("Intro words. " * 30) + "La <extradición> del jefe del Tren de Aragua & otros. " + ("Tail words. " * 30)
    s = snippet(text, marks)
    assert "&lt;<mark>extradición</mark>&gt;" in s and "<mark>Aragua</mark>" in s and "&amp;" in s
    assert s.startswith("… ") and s.endswith(" …") and len(s.split()) < 50
    assert snippet("Short <text>", marks) == "Short &lt;text&gt;"
    assert snippet("", marks) == ""
    assert highlight('The "Aragua" case', marks) == "The &quot;<mark>Aragua</mark>&quot; case"
