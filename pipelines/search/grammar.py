"""The search grammar: what users type (CLI, web UI, API, saved searches, watchers) read into a ``Query``.

Words must all match, in any order; ``"exact phrase"``; ``OR`` between two terms; ``-word`` (or ``NOT word``)
excludes; filters ``topic:`` ``source:`` ``lang:`` ``since:`` ``until:`` ``story:`` and, for a web user,
``is:read`` ``is:unread`` ``is:starred`` (``-topic:x`` excludes,
``topic:a,b`` is either). Reading is lenient: a stray quote closes at the end, ``NEAR``, ``*``, ``(``, ``:``
are plain characters, an unknown ``field:`` is two words. Only a filter whose value cannot mean anything
(``since:soon``, ``topic:nope`` when the topics are known) is refused, with ``QueryError`` and one line.

Terms are kept as tokens the way the index cuts text (runs of letters and digits; everything else
separates), so a word like ``U.S.`` or ``fentanyl-laced`` is a phrase of its tokens on both engines.
Case and accents are the engines' business (FTS5 ``remove_diacritics 2``, PostgreSQL ``unaccent``);
``fold`` does the same here for snippets and matching outside the database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from pipelines.timeutil import parse_when

# Longer queries are refused: no one types them, and each term is a clause for the engine.
MAX_QUERY = 1000
MAX_TERMS = 40
FIELDS = ("topic", "source", "lang", "since", "until", "story", "is")
# ``is:`` reads the web user's triage marks (table ``triage``).
MARKS = ("read", "unread", "starred")

_TOKEN = re.compile(r"[^\W_]+")
_LANG = re.compile(r"[a-z]{2,3}")
_FIELD = re.compile(r"(-?)([A-Za-z]+):(.*)", re.DOTALL)


class QueryError(ValueError):
    """A query that cannot be read: the message is one line, fit to show the user (exit 2, HTTP 400)."""


def tokens(text: str) -> list[str]:
    """The words of ``text`` as the index cuts them: letters and digits, lower-cased (accents kept)."""
    return [t.lower() for t in _TOKEN.findall(unicodedata.normalize("NFC", text))]


@lru_cache(maxsize=65536)
def fold(token: str) -> str:
    """A token without case or accents (``Extradición`` → ``extradicion``, ``Straße`` → ``strasse``)."""
    if token.isascii():
        return token.lower()
    decomposed = unicodedata.normalize("NFKD", token.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class Term:
    """A word or a phrase: its tokens in order (one token: a word)."""

    tokens: tuple[str, ...]
    quoted: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


@dataclass(frozen=True)
class Filter:
    """``field:value[,value…]``: any of the values; ``negate`` for ``-field:…``."""

    field: str
    values: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True)
class Query:
    """A parsed query: every group must match (a group is terms joined by OR), no excluded term may."""

    text: str = ""
    groups: tuple[tuple[Term, ...], ...] = ()
    exclude: tuple[Term, ...] = ()
    filters: tuple[Filter, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    # Whose triage marks ``is:`` reads (the web user); None where there is no user (CLI, watchers).
    user: str | None = None

    @property
    def has_text(self) -> bool:
        """Whether the query has words to rank by (else results are newest first)."""
        return bool(self.groups)

    @property
    def is_empty(self) -> bool:
        return not (self.groups or self.exclude or self.filters or self.since or self.until)

    def highlight_tokens(self) -> frozenset[str]:
        """The folded tokens a snippet marks: those of every positive term."""
        return frozenset(fold(t) for g in self.groups for term in g for t in term.tokens)

    def values(self, name: str, *, negate: bool = False) -> list[tuple[str, ...]]:
        """The value lists of the filters on ``name`` (each: any of)."""
        return [f.values for f in self.filters if f.field == name and f.negate == negate]


@dataclass
class _Reader:
    topics: Collection[str] | None
    sources: Collection[str] | None
    now: datetime | None
    user: str | None
    groups: list[list[Term]] = field(default_factory=list)
    exclude: list[Term] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    # Whether the next positive term joins the last group (an OR just came after a term).
    joining: bool = False
    last_was_term: bool = False
    negate_next: bool = False

    def term(self, raw: str, quoted: bool, negate: bool) -> None:
        toks = tuple(tokens(raw))
        negate = negate or self.negate_next
        self.negate_next = False
        if not toks:  # only punctuation (`*`, `-`, `'`): nothing to look for
            self.joining = False
            return
        t = Term(toks, quoted or len(toks) > 1)
        if negate:
            self.exclude.append(t)
            self.joining = self.last_was_term = False
            return
        if self.joining and self.groups:
            self.groups[-1].append(t)
        else:
            self.groups.append([t])
        self.joining, self.last_was_term = False, True

    def operator(self, word: str) -> None:
        if word == "OR":
            self.joining = self.last_was_term  # a leading OR (or one after a filter) joins nothing
            return
        if word == "NOT":
            self.negate_next = True
        self.joining = self.last_was_term = False  # AND is what a space already means

    def filter(self, name: str, value: str, negate: bool) -> None:
        self.joining = self.last_was_term = False
        negate = negate or self.negate_next
        self.negate_next = False
        value = value.strip()
        if not value:
            raise QueryError(f"{name}: needs a value (e.g. {_EXAMPLES[name]})")
        if name in ("since", "until"):
            if negate:
                raise QueryError(f"-{name}: cannot be negated (use {'until' if name == 'since' else 'since'}:)")
            try:
                when = parse_when(value, self.now)
            except (ValueError, OverflowError) as exc:
                raise QueryError(f"{name}:{value}: {exc}") from None
            if name == "since":
                self.since = when if self.since is None else max(self.since, when)
            else:
                self.until = when if self.until is None else min(self.until, when)
            return
        values = tuple(v.strip() for v in value.split(",") if v.strip())
        if not values:
            raise QueryError(f"{name}: needs a value (e.g. {_EXAMPLES[name]})")
        if name == "topic":
            values = tuple(v.lower() for v in values)
            if self.topics is not None:
                unknown = [v for v in values if v not in self.topics]
                if unknown:
                    raise QueryError(f"topic:{unknown[0]}: unknown topic (defined: {', '.join(sorted(self.topics))})")
        elif name == "source":
            if self.sources is not None:
                unknown = [v for v in values if v not in self.sources]
                if unknown:
                    raise QueryError(f"source:{unknown[0]}: no source of that name "
                                     f"(known: {', '.join(sorted(self.sources)) or 'none'})")
        elif name == "lang":
            values = tuple(v.lower() for v in values)
            bad = [v for v in values if not _LANG.fullmatch(v)]
            if bad:
                raise QueryError(f"lang:{bad[0]}: not a language code (ISO 639-1, e.g. en, es, fr)")
        elif name == "story":
            bad = [v for v in values if not v.isdigit() or len(v) > 18]
            if bad:
                raise QueryError(f"story:{bad[0]}: not a story id (a number)")
            values = tuple(str(int(v)) for v in values)
        elif name == "is":
            values = tuple(v.lower() for v in values)
            bad = [v for v in values if v not in MARKS]
            if bad:
                raise QueryError(f"is:{bad[0]}: not a mark (is:{', is:'.join(MARKS)})")
            if self.user is None:
                raise QueryError(f"is:{values[0]}: marks are a web user's: only in the web UI, its API and feeds")
        self.filters.append(Filter(name, values, negate))


_EXAMPLES = {"topic": "topic:tda", "source": "source:doj-api", "lang": "lang:es", "since": "since:7d",
             "until": "until:2026-11-01", "story": "story:12",
             "is": "is:unread"}


def _lex(text: str) -> list[tuple[str, str, bool]]:
    """(kind, value, negated) pieces: kind ``phrase`` (quoted), ``bare`` or ``field:NAME``."""
    out: list[tuple[str, str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        negate = False
        if c == "-" and i + 1 < n and not text[i + 1].isspace():
            negate, i = True, i + 1
            c = text[i]
        if c == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end  # a stray quote: the phrase runs to the end
            out.append(("phrase", text[i + 1:end], negate))
            i = end + 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] != '"':
            j += 1
        word = text[i:j]
        m = _FIELD.fullmatch(word)
        if m and m.group(2).lower() in FIELDS and not m.group(1):
            name = m.group(2).lower()
            value = m.group(3)
            if not value and j < n and text[j] == '"':  # field:"a value with spaces"
                end = text.find('"', j + 1)
                end = n if end < 0 else end
                value, j = text[j + 1:end], end + 1
            out.append((f"field:{name}", value, negate))
        else:
            out.append(("bare", word, negate))
        i = j
    return out


def parse(text: str, *, topics: Collection[str] | None = None, sources: Collection[str] | None = None,
          now: datetime | None = None, user: str | None = None) -> Query:
    """Read ``text`` in the grammar. Never fails on odd input; ``QueryError`` for a filter value that cannot
    mean anything (an unknown topic or source when ``topics`` / ``sources`` are given, a bad date, a bad
    language code or story id, ``is:`` without a ``user`` whose marks it reads) and for a query too long to
    be typed."""
    if len(text) > MAX_QUERY:
        raise QueryError(f"query too long ({len(text):,} characters; at most {MAX_QUERY:,})")
    text = text.replace("\x00", " ")
    r = _Reader(topics=set(topics) if topics is not None else None,
                sources=set(sources) if sources is not None else None, now=now, user=user)
    for kind, value, negate in _lex(text):
        if kind == "phrase":
            r.term(value, True, negate)
        elif kind.startswith("field:"):
            r.filter(kind[6:], value, negate)
        elif value in ("OR", "AND", "NOT") and not negate:
            r.operator(value)
        else:
            r.term(value, False, negate)
    count = sum(len(g) for g in r.groups) + len(r.exclude)
    if count > MAX_TERMS:
        raise QueryError(f"too many terms ({count}; at most {MAX_TERMS})")
    if r.since is not None and r.until is not None and r.since >= r.until:
        raise QueryError("since: is not before until: — no item can match")
    return Query(text=text.strip(), groups=tuple(tuple(g) for g in r.groups), exclude=tuple(r.exclude),
                 filters=tuple(r.filters), since=r.since, until=r.until, user=user)
