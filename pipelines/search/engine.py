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
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import reduce
from typing import Any

from sqlalchemy import Float, and_, cast, column, exists, func, literal_column, not_, or_, select, table, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from pipelines.models import Item, ItemTopic, SearchKey, Triage, topics_of
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
# A search ranks the newest RANK_WINDOW matches of its query, then the next older ones page by page;
# facets and the timeline count the newest FACET_WINDOW; `total` reads at most COUNT_LIMIT matches through
# filters. Ranking costs ~4 µs a match on SQLite (BM25 reads each match's column sizes) and ~30 µs on
# PostgreSQL (ts_rank reads each TOASTed vector), hence its smaller windows: unbounded, a word found in a
# third of the store would take seconds. Chosen with bench/search.py (figures in the README).
RANK_WINDOW = 5_000
FACET_WINDOW = 10_000
PG_RANK_WINDOW = 1_000
PG_FACET_WINDOW = 2_000
PG_PHRASE_WINDOW = 500
# PostgreSQL: a count stops short of a phrase whose words appear together in more items (see _pg_phrase_heavy).
PG_PHRASE_CHECKS = 2_000
PG_PROBE = 200  # ids read (newest first) to tell a broad query from a narrow one on PostgreSQL
# Broad (walk the ids) when density² × ids > PG_BROAD × n: a walk reads n / density vectors (~16 µs each),
# the GIN list density × ids entries (~0.5 µs each).
PG_BROAD = 30
# PostgreSQL: each id range looked through for a query's newest matches is this many times the last.
PG_SPAN_GROWTH = 4
COUNT_LIMIT = 10_000
# SQLite, words with filters: matches of the words looked through at a time (see `_scan_bound`), ~1 µs each.
SCAN_WINDOW = 20_000
UNIX_JULIAN = 2440587.5  # julianday('1970-01-01')


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


def _pg_query(groups: tuple[tuple[Term, ...], ...], *, positions: bool = True) -> Any:
    """The tsquery of ``groups``; without ``positions``, a phrase is only its words (all of them, anywhere):
    what the GIN index answers alone, without reading the items' vectors."""
    term = _pg_term if positions else (lambda t: func.plainto_tsquery(_pg_config(), " ".join(t.tokens)))
    ors = [reduce(lambda a, b: func.tsquery_or(a, b), [term(t) for t in g]) for g in groups]
    return reduce(lambda a, b: func.tsquery_and(a, b), ors)


def _lang(values: tuple[str, ...]) -> ColumnElement[bool]:
    lang = SearchKey.lang  # stored lower-cased
    return or_(*(or_(lang == v, lang.like(f"{v}-%")) for v in values))


def _marks(user: str | None, values: tuple[str, ...], ident: Any) -> ColumnElement[bool]:
    """``is:`` — the user's triage marks on the item ``ident``: read, unread (no mark says read), starred."""
    if user is None:  # pragma: no cover - parse refuses is: without a user
        raise QueryError(f"is:{values[0]}: marks are a web user's: only in the web UI, its API and feeds")
    conds: list[ColumnElement[bool]] = []
    for v in values:
        mark = Triage.read if v in ("read", "unread") else Triage.starred
        marked = exists().where(Triage.user == user, Triage.item_id == ident, mark.is_(True))
        conds.append(not_(marked) if v == "unread" else marked)
    return or_(*conds)


def _conditions(q: Query, ident: Any) -> list[ColumnElement[bool]]:
    """The filters of ``q`` on the item whose id is ``ident``, over ``search_keys`` (joined by the caller
    when ``_keyed(q)``), ``item_topics`` and ``triage``: never over the items' own wide rows."""
    out: list[ColumnElement[bool]] = []
    for f in q.filters:
        cond: ColumnElement[bool]
        if f.field == "topic":
            cond = exists().where(ItemTopic.item_id == ident, ItemTopic.topic.in_(f.values))
        elif f.field == "source":
            cond = SearchKey.source.in_(f.values)
        elif f.field == "lang":
            cond = _lang(f.values)
            if f.negate:
                cond = or_(SearchKey.lang.is_(None), not_(cond))
        elif f.field == "story":
            cond = SearchKey.story_id.in_([int(v) for v in f.values])
            if f.negate:
                cond = or_(SearchKey.story_id.is_(None), not_(cond))
        elif f.field == "is":
            cond = _marks(q.user, f.values, ident)
        else:  # pragma: no cover - the grammar knows no other field
            raise QueryError(f"{f.field}: not a filter")
        if f.negate and f.field in ("topic", "source", "is"):
            cond = not_(cond)
        out.append(cond)
    if q.since is not None:
        out.append(SearchKey.sort_at >= q.since)
    if q.until is not None:
        out.append(SearchKey.sort_at < q.until)
    return out


def _keyed(q: Query) -> bool:
    """Whether ``q``'s filters read ``search_keys``."""
    return q.since is not None or q.until is not None or any(
        f.field in ("source", "lang", "story") for f in q.filters)


def _score(rel: Any, postgresql: bool) -> Any:
    """``ln(relevance) + age / TAU_DAYS`` (higher first), the age from ``search_keys.sort_at``."""
    if postgresql:
        age = cast(func.extract("epoch", SearchKey.sort_at), Float) / 86400.0
        return func.ln(func.greatest(rel, 1e-9)) + age / TAU_DAYS
    return func.ln(func.max(rel, 1e-9)) + (func.julianday(SearchKey.sort_at) - UNIX_JULIAN) / TAU_DAYS


def _matching(session: Session, q: Query, stmt: Any, *, ranked: bool = False) -> tuple[Any, Any]:
    return narrow(stmt, q, postgresql=_is_pg(session), ranked=ranked)


def narrow(stmt: Any, q: Query, *, postgresql: bool, ranked: bool = False) -> tuple[Any, Any]:
    """``stmt`` (a select over items) narrowed to the items matching ``q``, and with ``ranked`` the score
    to order them by (higher first; None when ``q`` has no words). ``search_keys`` is joined to it."""
    stmt = stmt.join(SearchKey, SearchKey.item_id == Item.id)
    score: Any = None
    if postgresql:
        vec = _pg_vector()
        if q.groups:
            tsq = _pg_query(q.groups)
            stmt = stmt.where(vec.op("@@")(tsq))
            if ranked:
                score = _score(func.ts_rank(vec, tsq, PG_RANK_NORMALIZATION), True)
        if q.exclude:
            stmt = stmt.where(not_(vec.op("@@")(_pg_query((q.exclude,)))))
    else:
        if q.groups:
            stmt = stmt.join(_FTS, _FTS.c.rowid == Item.id).where(literal_column(FTS_TABLE).match(_fts_match(q)))
            if ranked:
                score = _score(-func.bm25(literal_column(FTS_TABLE), TITLE_WEIGHT, TEXT_WEIGHT), False)
        elif q.exclude:
            stmt = stmt.where(Item.id.not_in(_fts_excluded(q)))
    return stmt.where(*_conditions(q, Item.id)), score


def _fts_match(q: Query) -> str:
    expr = _fts_expr(q.groups)
    if q.exclude:
        expr = f"({expr}) NOT ({_fts_expr((q.exclude,))})"
    return expr


def _fts_excluded(q: Query) -> Any:
    return select(_FTS.c.rowid).where(literal_column(FTS_TABLE).match(_fts_expr((q.exclude,))))


# -- cursors ----------------------------------------------------------------------------------------------

def _encode(kind: str, value: Any, item_id: int, floor: int | None = None) -> str:
    raw = json.dumps([kind, value, item_id, floor], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> tuple[Any, int, int | None]:
    """(the last row's score or date, its id, the ranking window's floor: matches below this id are later
    windows)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got, value, item_id, floor = json.loads(raw)
        if got != kind or not isinstance(item_id, int) or not (floor is None or isinstance(floor, int)):
            raise ValueError
        if kind == "r" and not isinstance(value, float | int):
            raise ValueError
        if kind == "d":
            value = as_utc(datetime.fromisoformat(value))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise QueryError("cursor: not a cursor of this search (start again without it)") from None
    return value, item_id, floor


# -- the interface --------------------------------------------------------------------------------------

@contextmanager
def _index_scans(session: Session, query: Query) -> Iterator[None]:
    """PostgreSQL, a query with words: no sequential scan for what follows. The planner does not price the
    TOAST read each row's vector costs, and for a few thousand matches in a large table it would rather
    test every row (3 s) than read the GIN index's matches (0.4 s for 78,000 of 200,000)."""
    if not (_is_pg(session) and query.groups):
        yield
        return
    session.execute(text("SELECT set_config('enable_seqscan', 'off', true)"))
    try:
        yield
    finally:
        session.execute(text("SELECT set_config('enable_seqscan', 'on', true)"))


def _match_ids(session: Session, query: Query, *, relevance: bool = False) -> tuple[Any, Any]:
    """A select of the ids (``cid``) of the items matching ``query``, unordered, reading the full-text index,
    ``search_keys``, ``item_topics`` and ``triage`` only (PostgreSQL: the items' vectors), and the column
    the matches are walked newest first by. With ``relevance`` on SQLite, also BM25 as ``rel`` (it can
    only be read where the FTS5 table is queried)."""
    pg = _is_pg(session)
    stmt: Any
    if query.groups and not pg:
        ident: Any = _FTS.c.rowid
        cols: list[Any] = [ident.label("cid")]
        if relevance:
            cols.append((-func.bm25(literal_column(FTS_TABLE), TITLE_WEIGHT, TEXT_WEIGHT)).label("rel"))
        stmt = select(*cols).select_from(_FTS).where(literal_column(FTS_TABLE).match(_fts_match(query)))
        if _keyed(query):
            stmt = stmt.join(SearchKey, SearchKey.item_id == ident)
    elif query.groups:
        ident = Item.id
        vec = _pg_vector()
        stmt = select(ident.label("cid")).where(vec.op("@@")(_pg_query(query.groups)))
        if query.exclude:
            stmt = stmt.where(not_(vec.op("@@")(_pg_query((query.exclude,)))))
        if _keyed(query):
            stmt = stmt.join(SearchKey, SearchKey.item_id == ident)
    else:
        ident = SearchKey.item_id
        stmt = select(ident.label("cid"))
        if query.exclude and pg:
            stmt = stmt.join(Item, Item.id == ident).where(not_(_pg_vector().op("@@")(_pg_query((query.exclude,)))))
        elif query.exclude:
            stmt = stmt.where(ident.not_in(_fts_excluded(query)))
    return stmt.where(*_conditions(query, ident)), ident


def _filtered(query: Query) -> bool:
    return bool(query.filters or query.since is not None or query.until is not None)


def _scan_bound(session: Session, query: Query, below: int | None) -> int | None:
    """SQLite, words and filters: the id of the ``SCAN_WINDOW``-th newest match of the words alone (below
    ``below``), or None when there are fewer. FTS5 lists a word's matches in microseconds a thousand, but
    testing a filter on each costs a lookup (~1 µs): a broad word with a narrow filter is looked through
    ``SCAN_WINDOW`` word matches at a time, not all of them (an id range FTS5 seeks to directly)."""
    if _is_pg(session) or not query.groups or not _filtered(query):
        return None
    stmt = select(_FTS.c.rowid).where(literal_column(FTS_TABLE).match(_fts_match(query)))
    if below is not None:
        stmt = stmt.where(_FTS.c.rowid < below)
    found = session.scalar(stmt.order_by(_FTS.c.rowid.desc()).offset(SCAN_WINDOW - 1).limit(1))
    return None if found is None else int(found)


@contextmanager
def _scans(session: Session, *, bitmap: bool) -> Iterator[None]:
    """PostgreSQL: with ``bitmap``, read a range of ids as the GIN index's matches ANDed with the primary key's
    range (two bitmaps), never by walking the range row by row (each row's TOASTed vector read, ~16 µs) nor by
    visiting every match of the word outside the range; without, walk the primary key backwards and test each
    row. The planner prices neither the TOAST reads nor a common word's long GIN list (~0.5 µs a match)."""
    off = ("enable_seqscan", "enable_indexscan") if bitmap else ("enable_seqscan", "enable_bitmapscan")
    # One round trip each way (SET LOCAL / RESET are one each, and a round trip costs on a loaded server).
    session.execute(text(f"SELECT set_config('{off[0]}', 'off', true), set_config('{off[1]}', 'off', true)"))
    try:
        yield
    finally:
        session.execute(text(f"SELECT set_config('{off[0]}', 'on', true), set_config('{off[1]}', 'on', true)"))


def _pg_window(query: Query, pg_window: int, window: int) -> int:
    """PostgreSQL's window: smaller than SQLite's, and smaller still for a phrase, whose every candidate
    is a phrase check reading the item's vector (and two common words are together in many items)."""
    phrase = any(len(t.tokens) > 1 for g in query.groups for t in g)
    return min(window, pg_window, PG_PHRASE_WINDOW if phrase else pg_window)


def _pg_density(session: Session, stmt: Any, ident: Any, hi: int) -> float:
    """The share of the ``PG_PROBE`` ids below ``hi`` that ``stmt`` matches (their vectors read, ~5 ms)."""
    probe = stmt.where(ident >= hi - PG_PROBE, ident < hi).order_by(None).subquery()
    with _scans(session, bitmap=False):
        found = int(session.scalar(select(func.count()).select_from(probe)) or 0)
    return found / max(1, min(PG_PROBE, hi))


def _pg_newest(session: Session, query: Query, n: int, below: int | None) -> list[int]:
    """PostgreSQL, a query with words: the ids of its newest ``n`` matches (below ``below``).

    The density of matches among the ``PG_PROBE`` ids below (a short walk) decides how: a query matching a
    large share of the items (``density² × ids > PG_BROAD × n``) is found soonest by walking the ids backwards
    and testing each row (n / density vector reads, against reading the word's whole GIN list, ~0.5 µs an
    entry: 200 ms for a word in 390,000 items); any other is looked for in id ranges going back from the
    newest, each ``PG_SPAN_GROWTH`` times the last (the first sized for ``n`` matches at that density), through
    the GIN index ANDed with the range, so a phrase's positions are checked only in the ranges read."""
    stmt, ident = _match_ids(session, query)
    hi = below if below is not None else int(session.scalar(select(func.max(Item.id))) or 0) + 1
    density = _pg_density(session, stmt, ident, hi)
    with _scans(session, bitmap=False):
        if density * density * hi > PG_BROAD * n:
            return [int(i) for i in session.scalars(stmt.where(ident < hi).order_by(ident.desc()).limit(n))]
    span = max(4 * n, int(2 * n / density) if density else 0)
    phrase = any(len(t.tokens) > 1 for g in query.groups for t in g)
    found: list[int] = []
    with _scans(session, bitmap=True):
        while len(found) < n and hi > 0:
            lo = max(0, hi - span)
            part = stmt.where(ident >= lo, ident < hi).order_by(ident.desc()).limit(n - len(found))
            found += [int(i) for i in session.scalars(part)]
            # A range is read whole before its newest are picked: grow slower when each match costs a
            # phrase check, so the last range overshoots less.
            hi, span = lo, span * (2 if phrase else PG_SPAN_GROWTH)
    return found


def _candidates(session: Session, query: Query, n: int, *, relevance: bool, below: int | None = None
                ) -> tuple[Any, int | None]:
    """The newest ``n`` matches of ``query`` (by id: the order they were stored; with ``below``, of those
    with a smaller id), as a subquery with ``cid`` (and on SQLite with ``relevance``, ``rel``), and the id
    the look stopped at when it was bounded (``_scan_bound``: older matches are the next window's)."""
    if _is_pg(session) and query.groups:
        ids = _pg_newest(session, query, n, below)
        return select(Item.id.label("cid")).where(Item.id.in_(ids)).subquery("candidates"), None
    stmt, ident = _match_ids(session, query, relevance=relevance)
    if below is not None:
        stmt = stmt.where(ident < below)
    bound = _scan_bound(session, query, below)
    if bound is not None:
        stmt = stmt.where(ident >= bound)
    # SQLite: walk the full-text index newest first (FTS5 reads its lists backwards), not the items table.
    return stmt.order_by(ident.desc()).limit(n).subquery("candidates"), bound


def _items(session: Session, ids: list[int]) -> dict[int, Any]:
    """The rows a page shows, read only for the page's ids (an item's row is its whole text)."""
    if not ids:
        return {}
    cols = [Item.id, Item.url, Item.title, Item.text, Item.source, Item.published, Item.first_seen,
            Item.updated, Item.language, Item.story_id]
    return {r.id: r for r in session.execute(select(*cols).where(Item.id.in_(ids)))}


def search(session: Session, query: Query, *, limit: int, cursor: str | None = None,
           count: bool = True) -> SearchPage:
    """One page of hits, best first (newest first when the query has no words), and the number of matches.

    Ranking reads the newest ``RANK_WINDOW`` matches (in the order items were stored): a query matching more
    is ranked among those first, and its later pages rank the next ``RANK_WINDOW`` older ones, and so on.
    ``total`` is None when counting would read more than ``COUNT_LIMIT`` matches (or with ``count=False``).
    ``cursor`` is the previous page's ``next_cursor``; ``QueryError`` if it is not one of this query's.
    """
    if limit < 1:
        raise QueryError("limit: must be at least 1")
    marks = query.highlight_tokens()
    picked: list[tuple[int, float | None]]
    if query.has_text:
        picked, next_cursor = _ranked(session, query, limit, cursor)
    else:
        stmt, ident = _match_ids(session, query)
        stmt = stmt.add_columns(SearchKey.sort_at)
        if ident is not SearchKey.item_id:  # pragma: no cover - a query without words walks search_keys
            raise AssertionError(ident)
        if cursor:
            value, last, _floor = _decode(cursor, "d")
            stmt = stmt.where(or_(SearchKey.sort_at < value, and_(SearchKey.sort_at == value, ident < last)))
        # ix_search_keys_sort_at: the newest first without a sort, whatever the store's size.
        stmt = stmt.order_by(SearchKey.sort_at.desc(), ident.desc())
        found = list(session.execute(stmt.limit(limit + 1)))
        next_cursor = None
        if len(found) > limit:
            found = found[:limit]
            next_cursor = _encode("d", as_utc(_as_datetime(found[-1][1])).isoformat(), found[-1][0])
        picked = [(int(r[0]), None) for r in found]
    rows = _items(session, [i for i, _ in picked])
    topics = topics_of(session, [i for i, _ in picked])
    hits = []
    for item_id, score in picked:
        r = rows.get(item_id)
        if r is None:  # pragma: no cover - deleted between the two reads of one transaction
            continue
        hits.append(Hit(
            id=r.id, url=r.url, title=r.title, source=r.source, published=_utc(r.published),
            first_seen=as_utc(r.first_seen), updated=as_utc(r.updated), topics=topics.get(r.id, []),
            language=r.language, story_id=r.story_id, snippet=snippet(r.text or "", marks),
            title_html=highlight(r.title or "", marks), rank=score))
    total = count_at_most(session, query, COUNT_LIMIT) if count else None
    return SearchPage(hits=hits, next_cursor=next_cursor, total=total)


def _ranked(session: Session, query: Query, limit: int,
            cursor: str | None) -> tuple[list[tuple[int, float | None]], str | None]:
    """The ids and scores of a page of the best matches: the newest ``RANK_WINDOW`` matches ranked, then
    (once a cursor has walked through them) the next ``RANK_WINDOW`` older ones, and so on, so paging
    reaches every match once. Ranked over ``search_keys`` (and on PostgreSQL the vectors): the items' rows
    are read for the page alone."""
    pg = _is_pg(session)
    # ts_rank reads each candidate's vector (a TOAST fetch, ~30 µs): PostgreSQL ranks smaller windows.
    window = _pg_window(query, PG_RANK_WINDOW, RANK_WINDOW) if pg else RANK_WINDOW
    floor: int | None = None
    after: tuple[float, int] | None = None
    if cursor:
        value, last, floor = _decode(cursor, "r")
        after = (float(value), last)
    rows: list[tuple[int, float, int | None]] = []
    while True:
        cand, bound = _candidates(session, query, window, relevance=True, below=floor)
        cid = cand.c.cid
        if pg:
            score = _score(func.ts_rank(_pg_vector(), _pg_query(query.groups), PG_RANK_NORMALIZATION), True)
            stmt = select(cid, score.label("score")).select_from(cand).join(Item, Item.id == cid)
        else:
            score = _score(cand.c.rel, False)
            stmt = select(cid, score.label("score")).select_from(cand)
        stmt = stmt.join(SearchKey, SearchKey.item_id == cid)
        if after is not None:
            stmt = stmt.where(or_(score < after[0], and_(score == after[0], cid < after[1])))
        stmt = stmt.order_by(score.desc(), cid.desc()).limit(limit + 1 - len(rows))
        with _index_scans(session, query):
            rows += [(int(r[0]), float(r[1]), floor) for r in session.connection().execute(stmt)]
        if len(rows) > limit:
            break
        # This window is used up: is there an older one?
        size, lowest = session.execute(select(func.count(), func.min(cid))).one()
        if size >= window and lowest is not None:
            floor = int(lowest)
        elif bound is not None:  # the look was bounded: the matches below it are the next window
            floor = bound
        else:
            break
        after = None
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last_id, last_score, last_floor = rows[-1]
        next_cursor = _encode("r", last_score, last_id, last_floor)
    return [(i, s) for i, s, _ in rows], next_cursor


def count_matches(session: Session, query: Query) -> int:
    """How many items match ``query``, exactly (it reads every match: see ``count_at_most``)."""
    fts = _fts_count(session, query)
    if fts is not None:
        return fts
    inner, _ = _match_ids(session, query)
    with _index_scans(session, query):
        return int(session.scalar(select(func.count()).select_from(inner.subquery())) or 0)


def count_at_most(session: Session, query: Query, limit: int) -> int | None:
    """How many items match ``query``, or None when that is more than ``limit`` (read no further) or, on
    SQLite with words and filters, when the words match more than ``SCAN_WINDOW`` items (not counted: see
    ``_scan_bound``).

    Words alone on SQLite are counted in the full-text index itself, exactly and quickly, whatever ``limit``.
    """
    fts = _fts_count(session, query)
    if fts is not None:
        return fts
    if _scan_bound(session, query, None) is not None or _pg_phrase_heavy(session, query):
        return None
    if _is_pg(session) and query.groups:
        # A common word: its GIN list alone is ~0.5 µs an entry, and a filter is tested on each match.
        # Estimated from the newest ids, well over the limit (or with filters, over SCAN_WINDOW as on
        # SQLite): not counted.
        words, ident = _match_ids(session, replace(query, filters=(), since=None, until=None))
        newest = int(session.scalar(select(func.max(Item.id))) or 0)
        if _pg_density(session, words, ident, newest + 1) * newest > (
                SCAN_WINDOW if _filtered(query) else 2 * limit):
            return None
    inner, _ = _match_ids(session, query)
    with _index_scans(session, query):
        n = int(session.scalar(select(func.count()).select_from(inner.limit(limit + 1).subquery())) or 0)
    return None if n > limit else n


def _pg_phrase_heavy(session: Session, query: Query) -> bool:
    """PostgreSQL: whether the query's phrases have their words together in more than ``PG_PHRASE_CHECKS``
    items. Each of those is a phrase check that reads the item's vector (~30 µs): such a query is not
    counted (``"federal prison"``: 42,000 items with both words for 6,000 with the phrase)."""
    if not (_is_pg(session) and query.groups and any(len(t.tokens) > 1 for g in query.groups for t in g)):
        return False
    words = select(Item.id).where(_pg_vector().op("@@")(_pg_query(query.groups, positions=False)))
    with _scans(session, bitmap=True):
        n = session.scalar(select(func.count()).select_from(words.limit(PG_PHRASE_CHECKS + 1).subquery()))
    return int(n or 0) > PG_PHRASE_CHECKS


def _fts_count(session: Session, query: Query) -> int | None:
    """SQLite, a query of words alone: the count from the FTS5 index (no join to the items)."""
    if _is_pg(session) or not query.groups or query.filters or query.since or query.until:
        return None
    stmt = select(func.count()).select_from(_FTS).where(literal_column(FTS_TABLE).match(_fts_match(query)))
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


# (id, source, two-letter language, YYYY-MM, the week's Monday YYYY-MM-DD, topic)
_WindowRow = tuple[int, str, str | None, str, str, str | None]


def _window(session: Session, query: Query) -> list[_WindowRow]:
    """The newest ``FACET_WINDOW`` matches with their topics: (id, source, two-letter language, ``YYYY-MM``,
    the Monday of the week ``YYYY-MM-DD``, topic), one row per item and topic, from ``search_keys`` and
    ``item_topics``. Dates are cut into months and weeks by the database (UTC): reading 10,000 datetimes
    into Python costs more than the query."""
    window = _pg_window(query, PG_FACET_WINDOW, FACET_WINDOW) if _is_pg(session) else FACET_WINDOW
    cand, _bound = _candidates(session, query, window, relevance=False)
    when = SearchKey.sort_at
    if _is_pg(session):
        utc = func.timezone("UTC", when)
        month = func.to_char(utc, "YYYY-MM")
        week = func.to_char(func.date_trunc("week", utc), "YYYY-MM-DD")
    else:
        month = func.strftime("%Y-%m", when)
        week = func.date(when, "-6 days", "weekday 1")
    stmt = (select(SearchKey.item_id, SearchKey.source, func.substr(SearchKey.lang, 1, 2), month, week,
                   ItemTopic.topic)
            .select_from(cand).join(SearchKey, SearchKey.item_id == cand.c.cid)
            .outerjoin(ItemTopic, ItemTopic.item_id == cand.c.cid))
    with _index_scans(session, query):
        # Through the connection: 10,000 plain rows, without the ORM's per-row work (a third of the time).
        return [tuple(r) for r in session.connection().execute(stmt)]  # type: ignore[misc]


def facets(session: Session, query: Query) -> dict[str, list[tuple[str, int]]]:
    """Counts of the matching items by topic, source, language (two letters) and month (``YYYY-MM``).

    Topic, source and language: the most frequent first (at most ``FACET_VALUES``); months newest first.
    A query matching more than ``FACET_WINDOW`` items is counted over its newest ``FACET_WINDOW`` matches
    (``facets`` stays fast on a broad match; the counts are then those of the newest matches).
    """
    return _facets_of(_window(session, query))


def overview(session: Session, query: Query, *, bucket: str | None = None) -> tuple[
        dict[str, list[tuple[str, int]]], Timeline]:
    """``facets`` and ``timeline`` of one query from one read of its matches (what a search page shows)."""
    if bucket not in (None, "week", "month"):
        raise QueryError(f"bucket: {bucket!r} (week or month)")
    rows = _window(session, query)
    return _facets_of(rows), _timeline_of(rows, bucket)


def _facets_of(rows: list[_WindowRow]) -> dict[str, list[tuple[str, int]]]:
    topic: Counter[str] = Counter(r[5] for r in rows if r[5] is not None)
    items = {r[0]: r for r in rows}.values()  # one per item (an item has a row per topic)
    source: Counter[str] = Counter(r[1] for r in items)
    lang: Counter[str] = Counter(r[2] for r in items if r[2])
    month: Counter[str] = Counter(r[3] for r in items)

    def top(c: Counter[str]) -> list[tuple[str, int]]:
        return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:FACET_VALUES]

    return {"topic": top(topic), "source": top(source), "lang": top(lang),
            "month": sorted(month.items(), reverse=True)}


def timeline(session: Session, query: Query, *, bucket: str | None = None) -> Timeline:
    """Matching items per topic per week or month (``bucket``; by default months when the matches span
    more than half a year), every period between the first and the last present, empty ones as 0.
    Over the newest ``FACET_WINDOW`` matches, as ``facets``."""
    if bucket not in (None, "week", "month"):
        raise QueryError(f"bucket: {bucket!r} (week or month)")
    return _timeline_of(_window(session, query), bucket)


def _timeline_of(rows: list[_WindowRow], bucket: str | None) -> Timeline:
    if not rows:
        return Timeline(bucket or "week", [], {})
    weeks = {r[4] for r in rows}
    first, last = date.fromisoformat(min(weeks)), date.fromisoformat(max(weeks)) + timedelta(days=6)
    if bucket is None:
        bucket = "month" if (last - first).days > 183 else "week"
    if bucket == "month":  # (a week starting in the month before must not add a month)
        months = {r[3] for r in rows}
        first, last = date.fromisoformat(min(months) + "-01"), date.fromisoformat(max(months) + "-01")
    counts: Counter[tuple[str, str]] = Counter(
        (r[5], r[4] if bucket == "week" else r[3] + "-01") for r in rows if r[5] is not None)
    periods = _periods(first, last, bucket)
    index = {p.isoformat(): i for i, p in enumerate(periods)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(periods))
    for (topic, period), n in counts.items():
        series[topic][index[period]] += n
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



