"""The search engine: one grammar (``pipelines.search.grammar``) on SQLite FTS5 and PostgreSQL full-text.

SQLite: ``items_fts``, an FTS5 table over ``items.title`` and ``items.text`` (external content, kept in step
by triggers, ``unicode61 remove_diacritics 2``). PostgreSQL: ``items.search_vector``, a generated
``tsvector`` (title weight A, text weight B) under a GIN index, in the ``borderwatch`` text-search
configuration (``simple`` words through ``unaccent``: no stemming, so English, Spanish and French items
are searched side by side and a word matches the same items on both databases). Both built by migration
``0010_search``.

Terms reach the engines only as bound values: FTS5 gets each term as a quoted string of its letter-and-digit
tokens (nothing left for its query syntax to read), PostgreSQL gets ``phraseto_tsquery`` of those tokens.

Ranking: ``ln(relevance) + age / TAU_DAYS`` — relevance is BM25 (SQLite) or ``ts_rank`` (PostgreSQL), and an
item ``TAU_DAYS`` newer than another ranks with it at e (2.7) times less relevance. The score does not
depend on the time of the query, so a cursor stays valid.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import reduce
from typing import Any

from sqlalchemy import Float, and_, cast, column, func, literal_column, not_, or_, select, table
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from pipelines.models import Item, ItemTopic
from pipelines.search.grammar import Query, QueryError, Term
from pipelines.search.snippet import highlight, snippet
from pipelines.timeutil import as_utc

# An item this many days newer than another ranks level with it at e times less relevance: recent news
# first among comparable matches, but a title match of last season still above a passing mention today.
TAU_DAYS = 30.0
# SQLite BM25 column weights (title, text): a word in the title counts as much as five in the text.
TITLE_WEIGHT, TEXT_WEIGHT = 5.0, 1.0
# PostgreSQL ts_rank normalisation 1: divide by 1 + log(length), so long documents do not win by size.
PG_RANK_NORMALIZATION = 1
PG_CONFIG = "borderwatch"
FTS_TABLE = "items_fts"
_FTS = table(FTS_TABLE, column("rowid"))
VECTOR_COLUMN = "search_vector"
# Facets list at most this many values each (months: every month).
FACET_VALUES = 20
UNIX_JULIAN = 2440587.5  # julianday('1970-01-01')



def _when() -> Any:
    """The date an item is ordered and filtered by: its publication date, else when it was first seen."""
    return func.coalesce(Item.published, Item.first_seen)


@dataclass(frozen=True)
class Hit:
    id: int
    url: str
    title: str
    source: str
    published: datetime | None
    first_seen: datetime
    updated: datetime
    topics: list[str]
    language: str | None
    story_id: int | None
    snippet: str  # HTML-safe, the query's words in <mark>
    title_html: str  # the title, HTML-safe, the query's words in <mark>
    rank: float | None  # None when the query has no words (newest first)


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]
    next_cursor: str | None
    total: int | None


@dataclass(frozen=True)
class Timeline:
    """Matching items per topic per period: ``series[topic][i]`` items in the period starting ``periods[i]``."""

    bucket: str  # week (periods start on Mondays) | month
    periods: list[date]
    series: dict[str, list[int]]


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# -- matching -------------------------------------------------------------------------------------------

def _fts_phrase(term: Term) -> str:
    # Tokens are letters and digits only; the doubling of quotes is the belt to that braces.
    return '"' + " ".join(term.tokens).replace('"', '""') + '"'


def _fts_expr(groups: tuple[tuple[Term, ...], ...]) -> str:
    return " AND ".join("(" + " OR ".join(_fts_phrase(t) for t in g) + ")" for g in groups)


def _pg_config() -> Any:
    return literal_column(f"'{PG_CONFIG}'::regconfig")


def _pg_vector() -> Any:
    return literal_column(f"items.{VECTOR_COLUMN}")


def _pg_term(term: Term) -> Any:
    return func.phraseto_tsquery(_pg_config(), " ".join(term.tokens))


def _pg_query(groups: tuple[tuple[Term, ...], ...]) -> Any:
    ors = [reduce(lambda a, b: func.tsquery_or(a, b), [_pg_term(t) for t in g]) for g in groups]
    return reduce(lambda a, b: func.tsquery_and(a, b), ors)


def _lang(values: tuple[str, ...]) -> ColumnElement[bool]:
    lang = func.lower(Item.language)
    return or_(*(or_(lang == v, lang.like(f"{v}-%")) for v in values))


def _filters(q: Query, stmt: Any) -> Any:
    for f in q.filters:
        cond: ColumnElement[bool]
        if f.field == "topic":
            cond = Item.id.in_(select(ItemTopic.item_id).where(ItemTopic.topic.in_(f.values)))
        elif f.field == "source":
            cond = Item.source.in_(f.values)
        elif f.field == "lang":
            cond = _lang(f.values)
            if f.negate:
                cond = or_(Item.language.is_(None), not_(cond))
        elif f.field == "story":
            cond = Item.story_id.in_([int(v) for v in f.values])
            if f.negate:
                cond = or_(Item.story_id.is_(None), not_(cond))
        else:  # pragma: no cover - the grammar knows no other field
            raise QueryError(f"{f.field}: not a filter")
        if f.negate and f.field in ("topic", "source"):
            cond = not_(cond)
        stmt = stmt.where(cond)
    if q.since is not None:
        stmt = stmt.where(_when() >= q.since)
    if q.until is not None:
        stmt = stmt.where(_when() < q.until)
    return stmt


def _matching(session: Session, q: Query, stmt: Any, *, ranked: bool = False) -> tuple[Any, Any]:
    return narrow(stmt, q, postgresql=_is_pg(session), ranked=ranked)


def narrow(stmt: Any, q: Query, *, postgresql: bool, ranked: bool = False) -> tuple[Any, Any]:
    """``stmt`` (a select over items) narrowed to the items matching ``q``, and with ``ranked`` the score
    to order them by (higher first; None when ``q`` has no words)."""
    score: Any = None
    rel: Any
    if postgresql:
        vec = _pg_vector()
        if q.groups:
            tsq = _pg_query(q.groups)
            stmt = stmt.where(vec.op("@@")(tsq))
            if ranked:
                rel = func.ts_rank(vec, tsq, PG_RANK_NORMALIZATION)
                age = cast(func.extract("epoch", _when()), Float) / 86400.0
                score = func.ln(func.greatest(rel, 1e-9)) + age / TAU_DAYS
        if q.exclude:
            stmt = stmt.where(not_(vec.op("@@")(_pg_query((q.exclude,)))))
    else:
        if q.groups:
            expr = _fts_expr(q.groups)
            if q.exclude:
                expr = f"({expr}) NOT ({_fts_expr((q.exclude,))})"
            stmt = stmt.join(_FTS, _FTS.c.rowid == Item.id).where(
                literal_column(FTS_TABLE).match(expr))
            if ranked:
                rel = -func.bm25(literal_column(FTS_TABLE), TITLE_WEIGHT, TEXT_WEIGHT)
                age = func.julianday(_when()) - UNIX_JULIAN
                score = func.ln(func.max(rel, 1e-9)) + age / TAU_DAYS
        elif q.exclude:
            excluded: Any = select(_FTS.c.rowid).where(
                literal_column(FTS_TABLE).match(_fts_expr((q.exclude,))))
            stmt = stmt.where(Item.id.not_in(excluded))
    return _filters(q, stmt), score


# -- cursors ----------------------------------------------------------------------------------------------

def _encode(kind: str, value: Any, item_id: int) -> str:
    raw = json.dumps([kind, value, item_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got, value, item_id = json.loads(raw)
        if got != kind or not isinstance(item_id, int):
            raise ValueError
        if kind == "r" and not isinstance(value, float | int):
            raise ValueError
        if kind == "d":
            value = as_utc(datetime.fromisoformat(value))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise QueryError("cursor: not a cursor of this search (start again without it)") from None
    return value, item_id


# -- the interface --------------------------------------------------------------------------------------

def search(session: Session, query: Query, *, limit: int, cursor: str | None = None,
           count: bool = True) -> SearchPage:
    """One page of hits, best first (newest first when the query has no words), and the number of matches.

    ``cursor`` is the previous page's ``next_cursor``; ``QueryError`` if it is not one of this query's.
    """
    if limit < 1:
        raise QueryError("limit: must be at least 1")
    cols = [Item.id, Item.url, Item.title, Item.text, Item.source, Item.published, Item.first_seen,
            Item.updated, Item.language, Item.story_id, _when().label("when_")]
    stmt, score = _matching(session, query, select(*cols), ranked=True)
    if score is not None:
        stmt = stmt.add_columns(score.label("score"))
        if cursor:
            value, last = _decode(cursor, "r")
            stmt = stmt.where(or_(score < value, and_(score == value, Item.id < last)))
        stmt = stmt.order_by(score.desc(), Item.id.desc())
    else:
        if cursor:
            value, last = _decode(cursor, "d")
            stmt = stmt.where(or_(_when() < value, and_(_when() == value, Item.id < last)))
        stmt = stmt.order_by(_when().desc(), Item.id.desc())
    rows = list(session.execute(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    topics = _topics(session, [r.id for r in rows])
    marks = query.highlight_tokens()
    hits = [
        Hit(id=r.id, url=r.url, title=r.title, source=r.source, published=_utc(r.published),
            first_seen=as_utc(r.first_seen), updated=as_utc(r.updated), topics=topics.get(r.id, []),
            language=r.language, story_id=r.story_id, snippet=snippet(r.text or "", marks),
            title_html=highlight(r.title or "", marks), rank=float(r.score) if score is not None else None)
        for r in rows
    ]
    next_cursor = None
    if more and rows:
        last_row = rows[-1]
        if score is not None:
            next_cursor = _encode("r", float(last_row.score), last_row.id)
        else:
            next_cursor = _encode("d", as_utc(_as_datetime(last_row.when_)).isoformat(), last_row.id)
    total = count_matches(session, query) if count else None
    return SearchPage(hits=hits, next_cursor=next_cursor, total=total)


def count_matches(session: Session, query: Query) -> int:
    """How many items match ``query``."""
    stmt, _ = _matching(session, query, select(func.count(Item.id)))
    return int(session.scalar(stmt) or 0)


def matching_ids(query: Query, session: Session) -> Any:
    """A select of the ids of the items matching ``query`` (to use as a subquery)."""
    stmt, _ = _matching(session, query, select(Item.id))
    return stmt


def matches(session: Session, query: Query, item_ids: list[int]) -> set[int]:
    """Which of ``item_ids`` match ``query`` (a watcher following a query asks this of new items).

    Cheap for a few ids on a large store: PostgreSQL tests the ids' vectors; on SQLite the FTS5 scan is
    bounded to the ids' rowid range (FTS5 seeks in its lists instead of reading every match).
    """
    if not item_ids:
        return set()
    stmt, _ = _matching(session, query, select(Item.id).where(Item.id.in_(item_ids)))
    if not _is_pg(session) and query.groups:
        stmt = stmt.where(_FTS.c.rowid >= min(item_ids), _FTS.c.rowid <= max(item_ids))
    return set(session.scalars(stmt))


def _month(session: Session) -> Any:
    if _is_pg(session):
        return func.to_char(func.timezone("UTC", _when()), "YYYY-MM")
    return func.strftime("%Y-%m", _when())


def facets(session: Session, query: Query) -> dict[str, list[tuple[str, int]]]:
    """Counts of the matching items by topic, source, language (two letters) and month (``YYYY-MM``).

    Topic, source and language: the most frequent first (at most ``FACET_VALUES``); months newest first.
    """
    out: dict[str, list[tuple[str, int]]] = {}
    ids = matching_ids(query, session).subquery()
    n = func.count().label("n")
    topic_rows = session.execute(
        select(ItemTopic.topic, n).where(ItemTopic.item_id.in_(select(ids.c.id)))
        .group_by(ItemTopic.topic).order_by(n.desc(), ItemTopic.topic).limit(FACET_VALUES))
    out["topic"] = [(str(t), int(c)) for t, c in topic_rows]
    for name, expr in (("source", Item.source), ("lang", func.lower(func.substr(Item.language, 1, 2)))):
        stmt, _ = _matching(session, query, select(expr.label("v"), func.count().label("n")))
        stmt = stmt.where(expr.is_not(None)).group_by(expr).order_by(literal_column("n").desc(), expr)
        out[name] = [(str(v), int(c)) for v, c in session.execute(stmt.limit(FACET_VALUES))]
    month = _month(session)
    stmt, _ = _matching(session, query, select(month.label("v"), func.count().label("n")))
    out["month"] = [(str(v), int(c)) for v, c in session.execute(stmt.group_by(month).order_by(month.desc()))]
    return out


def timeline(session: Session, query: Query, *, bucket: str | None = None) -> Timeline:
    """Matching items per topic per week or month (``bucket``; by default months when the matches span
    more than half a year), every period between the first and the last present, empty ones as 0."""
    pg = _is_pg(session)
    span_stmt, _ = _matching(session, query, select(func.min(_when()), func.max(_when())))
    first, last = session.execute(span_stmt).one()
    if first is None or last is None:
        return Timeline(bucket or "week", [], {})
    first, last = _as_datetime(first).date(), _as_datetime(last).date()
    if bucket is None:
        bucket = "month" if (last - first).days > 183 else "week"
    if bucket not in ("week", "month"):
        raise QueryError(f"bucket: {bucket!r} (week or month)")
    if pg:
        period = func.to_char(func.date_trunc(bucket, func.timezone("UTC", _when())), "YYYY-MM-DD")
    elif bucket == "week":
        period = func.date(_when(), "-6 days", "weekday 1")
    else:
        period = func.strftime("%Y-%m-01", _when())
    stmt, _ = _matching(session, query, select(period.label("p"), ItemTopic.topic, func.count().label("n")))
    stmt = stmt.join(ItemTopic, ItemTopic.item_id == Item.id).group_by(period, ItemTopic.topic)
    periods = _periods(first, last, bucket)
    index = {p: i for i, p in enumerate(periods)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(periods))
    for p, topic, n in session.execute(stmt):
        i = index.get(date.fromisoformat(str(p)[:10]))
        if i is not None:
            series[str(topic)][i] += int(n)
    return Timeline(bucket, periods, dict(sorted(series.items())))


def _periods(first: date, last: date, bucket: str) -> list[date]:
    if bucket == "week":
        d = first - timedelta(days=first.weekday())
        out = []
        while d <= last:
            out.append(d)
            d += timedelta(days=7)
        return out
    y, m = first.year, first.month
    out = []
    while (y, m) <= (last.year, last.month):
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _as_datetime(value: Any) -> datetime:
    # SQLite hands back aggregates of datetimes (min, max, coalesce in a subquery) as strings.
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value)))


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value else None


def _topics(session: Session, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return out
    for item_id, topic in session.execute(
        select(ItemTopic.item_id, ItemTopic.topic).where(ItemTopic.item_id.in_(ids))
        .order_by(ItemTopic.item_id, ItemTopic.score.desc())
    ):
        out[item_id].append(topic)
    return out


