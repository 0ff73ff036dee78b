"""Topic classifier: pure, deterministic rules read from ``config/topics.yaml``.

``Classifier.classify(title, text, meta)`` scores every topic of the topics file and returns, for each
topic with a positive score, the score, whether it reaches the topic's threshold and the evidence behind
it: each matched phrase, the sentence it sits in, its weight and where it was found (title, body or
source metadata). Nothing here does I/O except ``Classifier.from_file``.

How a score is made (the topics file documents the knobs):

* The title and the body are folded (accents, typographic quotes and dashes mapped to ASCII one
  character for one, so offsets do not move) and matched case-insensitively.
* A topic's ``mask`` patterns blank out text that must not count for it ("Bureau of Alcohol, Tobacco,
  Firearms and Explosives", "drug trafficking" next to a gun, "plea agreement").
* Each rule's patterns are matched on whole words. A rule with ``near`` / ``and_near`` counts only when
  one of those patterns occurs within ``window`` words in the same sentence; ``unless_near`` scales the
  match by ``unless_factor`` (a prior conviction, a list of unrelated charges).
* Where two matches of one topic overlap, the longer wins ("felon in possession of a firearm" beats
  "firearm"); at equal length the rule listed first wins.
* A match weighs ``weight`` x position (title, lead sentences, later sentences); a rule marked ``explicit``
  (a signed instrument, a named standing body, a stated commitment) counts at the lead's weight however late
  it comes. The k-th match of the same rule adds ``repeat_decay ** k`` of that, up to ``max_repeats``.
* What the item is about: a topic none of whose positive evidence is in the title or explicit, all of it in
  one sentence (not among the first ``aside_from``) of a body of ``aside_sentences`` or more, is an aside and
  counts ``aside_factor``; with ``list_factor`` set, a mention that is the topic's only item in an
  enumeration of other things counts that fraction. Each evidence entry's ``note`` says which of these
  changed its weight, so the evidence shown is the evidence that decided.
* Metadata (DOJ topic labels, components, source) adds at most ``meta_cap``, which validation keeps below
  every threshold, and only counts when the text itself has positive evidence.

Speed: a small parser works out, for every pattern, the literal prefixes one of which each match must
start with. One trie-shaped regex finds all those prefixes in the text in a single pass, and each pattern
is then tried only where its prefixes occur; the few patterns without a usable prefix are skipped when
the text lacks the literal they require. Sentences are split lazily, only for texts with matches.
``Classifier.from_file(prefilter=False)`` turns the prefilter off (every pattern scans every text): the
results are identical, which tests/test_classify_prefilter.py checks on the dev sets and the corpus.
Folding, sentence boundaries and abbreviations come from pipelines/text.py.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import importlib.resources
import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.text import SENTENCE_BOUNDARY, ends_sentence, fold_aligned, fold_pattern
from pipelines.yamltext import YamlProblem, parse_yaml

__all__ = ["META_KEYS", "Classifier", "Evidence", "TopicResult", "TopicsError"]

META_KEYS: tuple[str, ...] = ("doj_topics", "doj_components", "source", "language")
_SENTENCE_MAX = 300


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Evidence:
    phrase: str  # the matched text as it appears
    sentence: str  # the sentence it sits in (trimmed to <= 300 chars)
    weight: float  # contribution to the score
    where: str  # "title" | "body" | "meta"
    # Why the weight is what it is, when placement or context changed it: "after the lead",
    # "list item", "aside", "explicit", "supporting", "dampened" (unless_near), joined by "; ". Empty
    # otherwise.
    note: str = ""


@dataclass(frozen=True)
class TopicResult:
    topic: str
    score: float
    matched: bool  # score >= the topic's threshold
    evidence: tuple[Evidence, ...]

    def summary(self) -> str:
        """One sentence for an alert: the sentence of the strongest positive text evidence."""
        text_evidence = [e for e in self.evidence if e.where != "meta" and e.weight > 0]
        if text_evidence:
            return max(text_evidence, key=lambda e: e.weight).sentence
        return self.evidence[0].sentence if self.evidence else ""


class TopicsError(ValueError):
    """A bad topics file; the message is one line naming the file and the key."""


# ------------------------------------------------------------------------------------- pattern prefixes


def _spaces_to_runs(src: str) -> str:
    """Let a literal space in a pattern match a run of spaces (texts carry double spaces and line breaks)."""
    out: list[str] = []
    in_class = escaped = False
    brace = 0
    for ch in src:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "{":
            brace += 1
        elif ch == "}":
            brace = max(0, brace - 1)
        elif ch == " " and not brace:
            out.append(" +")
            continue
        out.append(ch)
    return "".join(out)


# ---- literal analysis of a pattern, for the prefilter
#
# A small parser for the regex subset a topics file uses (literals, escapes, classes, groups,
# alternation, quantifiers, lookarounds) computes, in lowercase:
#   prefixes: strings one of which every match starts with (the classifier's trie scan finds them and
#             the regex is only tried there);
#   required: strings one of which every match contains (none in the text: skip the pattern).
# Whatever it does not understand yields "no filter", which is always safe, only slower.

# ("lit", ch) | ("any",) | ("empty",) | ("alt", [seq, ...]) | ("rep", node, min, at_most_once)
_Node = tuple[Any, ...]
_MAX_FILTER_STRINGS = 64  # cap on the cross product of alternations kept as prefixes
_MIN_FILTER = 3  # shorter strings filter almost nothing ("a", "of")
_GROUP_FLAGS = re.compile(r"\?[aiLmsux]*(?:-[imsx]+)?:")
_BRACES = re.compile(r"\{(\d*)(?:,(\d*))?\}")


_COMMON_WORDS = frozenset(
    "the and for with from that this was are not but has had his her its all any one two out who "  # noqa: SIM905
    "los las del por para que una con les des une pour par dans sur aux est".split()
)


class _Unparsed(Exception):
    pass


def _parse_regex(src: str) -> _Node:
    pos = 0

    def alternation() -> _Node:
        nonlocal pos
        branches = [sequence()]
        while pos < len(src) and src[pos] == "|":
            pos += 1
            branches.append(sequence())
        return ("alt", branches)

    def sequence() -> list[_Node]:
        items: list[_Node] = []
        while pos < len(src) and src[pos] not in "|)":
            items.append(quantified(atom()))
        return items

    def atom() -> _Node:
        nonlocal pos
        ch = src[pos]
        if ch == "(":
            pos += 1
            zero_width = False
            if src.startswith(("?=", "?!"), pos):
                zero_width, pos = True, pos + 2
            elif src.startswith(("?<=", "?<!"), pos):
                zero_width, pos = True, pos + 3
            elif src.startswith("?P<", pos):
                pos = src.index(">", pos) + 1
            elif src.startswith("?", pos):
                m = _GROUP_FLAGS.match(src, pos)
                if m is None:
                    raise _Unparsed(src)
                pos = m.end()
            node = alternation()
            if pos >= len(src) or src[pos] != ")":
                raise _Unparsed(src)
            pos += 1
            return ("empty",) if zero_width else node
        if ch == "[":
            end = pos + 1
            end += src.startswith("^", end)
            end += src.startswith("]", end)
            while end < len(src) and src[end] != "]":
                end += 2 if src[end] == "\\" else 1
            members = src[pos + 1 : end]
            pos = end + 1
            # A small class of plain characters ("[aá]", "[- ]") is an alternation of literals.
            if 0 < len(set(members)) <= 4 and not any(c in "^\\" for c in members) and "-" not in members[1:-1]:
                return ("alt", [[("lit", c)] for c in sorted(set(members))])
            return ("any",)
        if ch == "\\":
            nxt = src[pos + 1 : pos + 2]
            pos += 2
            if nxt in ("b", "B", "A", "Z"):
                return ("empty",)
            return ("any",) if nxt.isalnum() else ("lit", nxt)
        if ch in "*+?{":
            raise _Unparsed(src)
        pos += 1
        if ch in "^$":
            return ("empty",)
        return ("any",) if ch == "." else ("lit", ch)

    def quantified(node: _Node) -> _Node:
        nonlocal pos
        if pos >= len(src):
            return node
        ch = src[pos]
        if ch in "?*":
            low, once, pos = 0, ch == "?", pos + 1
        elif ch == "+":
            low, once, pos = 1, False, pos + 1
        elif ch == "{" and (m := _BRACES.match(src, pos)) is not None:
            low, once, pos = int(m.group(1) or 0), m.group(2) == "1", m.end()
        else:
            return node
        if pos < len(src) and src[pos] in "?+":  # lazy or possessive
            pos += 1
        return ("rep", node, low, once)

    tree = alternation()
    if pos != len(src):
        raise _Unparsed(src)
    return tree


def _usable(strings: set[str] | None) -> set[str] | None:
    if not strings or len(strings) > _MAX_FILTER_STRINGS or min(len(x) for x in strings) < _MIN_FILTER:
        return None
    return strings


def _prefixes(items: Sequence[_Node], acc: frozenset[str] = frozenset({""})) -> set[str] | None:
    """Strings one of which every match of the sequence starts with (None: no usable set)."""
    for i, node in enumerate(items):
        kind = node[0]
        if kind == "empty":
            continue
        if kind == "lit":
            acc = frozenset(a + node[1].lower() for a in acc)
            continue
        if kind == "alt" and all(n[0] in ("lit", "empty") for b in node[1] for n in b):
            # A group of plain words or a small class: every branch goes on with the rest.
            words = {"".join(n[1].lower() for n in b if n[0] == "lit") for b in node[1]}
            if len(acc) * len(words) > _MAX_FILTER_STRINGS:
                return _usable(set(acc))
            acc = frozenset(a + w for a in acc for w in words)
            continue
        if kind == "rep" and node[2] == 0:
            # Optional: a match starts either with the part or with what follows it.
            with_part = _prefixes([node[1], *items[i + 1 :]] if node[3] else [node[1]], acc)
            without = _prefixes(items[i + 1 :], acc)
            if with_part is None or without is None:
                return _usable(set(acc))
            return _usable(_shortest(with_part | without))
        inner: set[str] | None = None
        if kind == "alt":
            branches = [_prefixes(b) for b in node[1]]
            if all(b is not None for b in branches):
                inner = set().union(*(b for b in branches if b is not None))
        elif kind == "rep":
            inner = _prefixes([node[1]])
        if inner is not None and len(acc) * len(inner) <= _MAX_FILTER_STRINGS:
            return _usable(_shortest({a + b for a in acc for b in inner}))
        return _usable(set(acc))  # any character, or a part too varied to list
    return _usable(set(acc))


def _shortest(strings: set[str]) -> set[str]:
    """Drop strings another string of the set starts: a match starting with "guns" starts with "gun"."""
    return {s for s in strings if not any(s != t and s.startswith(t) for t in strings)}


def _required(items: Sequence[_Node]) -> set[str] | None:
    """Strings one of which every match of the sequence contains."""
    candidates: list[set[str] | None] = []
    run = ""
    for node in items:
        kind = node[0]
        if kind == "lit":
            run += node[1].lower()
            continue
        if kind == "empty":
            continue
        candidates.append({run})
        run = ""
        if kind == "alt":
            branches = [_required(b) for b in node[1]]
            if all(b is not None for b in branches):
                candidates.append(set().union(*(b for b in branches if b is not None)))
        elif kind == "rep" and node[2] >= 1:
            candidates.append(_required([node[1]]))
    candidates.append({run})
    usable = [c for c in map(_usable, candidates) if c is not None]
    # The best filter has the longest shortest string, then the fewest strings.
    return max(usable, key=lambda c: (min(map(len, c)), -len(c)), default=None)


def _literal_filters(src: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(prefixes, required) of a folded pattern, sorted; () where there is no usable filter."""
    try:
        tree = _parse_regex(src)
    except (_Unparsed, ValueError, IndexError):
        return (), ()
    prefixes = _prefixes([tree])
    if prefixes and any(p.strip(" '-") in _COMMON_WORDS for p in prefixes):
        prefixes = None  # "(?:the )?state of ...": hopping through every "the" costs more than a scan
    required = _required([tree])
    return tuple(sorted(prefixes or ())), tuple(sorted(required or ()))


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    prefixes: tuple[str, ...]  # every match starts with one of them (lowercase; () = unknown)
    required: tuple[str, ...]  # every match contains one of them (lowercase; () = unknown)
    serial: int  # index of the pattern in its classifier


def _compile_pattern(src: str, serial: int = 0) -> _Pattern:
    body = _spaces_to_runs(fold_pattern(src))
    regex = re.compile(r"(?<!\w)(?:" + body + r")(?!\w)", re.IGNORECASE)
    prefixes, required = _literal_filters(body)
    return _Pattern(regex, prefixes, required, serial)


def _compile_any(sources: Sequence[str]) -> re.Pattern[str] | None:
    """One regex matching any of ``sources`` (a context list), for searching short windows.

    The alternatives with literal prefixes sit behind a trie lookahead of those prefixes, which rejects
    most positions in one step (twice as fast on a hundred-country list as the plain alternation).
    """
    if not sources:
        return None
    keyed: list[str] = []
    unkeyed: list[str] = []
    prefixes: set[str] = set()
    for src in sources:
        body = _spaces_to_runs(fold_pattern(src))
        found, _ = _literal_filters(body)
        (keyed if found else unkeyed).append(body)
        prefixes.update(found)
    branches = unkeyed
    if keyed:
        branches = ["(?=" + _trie_regex(sorted(prefixes)) + ")(?:" + "|".join(keyed) + ")", *unkeyed]
    return re.compile(r"(?<!\w)(?:" + "|".join(branches) + r")(?!\w)", re.IGNORECASE)


class _TextIndex:
    """Per-text memo: "does the lowercase text contain this string" for unkeyed patterns."""

    def __init__(self, low: str) -> None:
        self.low = low
        self._has: dict[str, bool] = {}

    def has(self, needle: str) -> bool:
        found = self._has.get(needle)
        if found is None:
            found = self._has[needle] = needle in self.low
        return found


def _trie_regex(words: Sequence[str]) -> str:
    """An alternation of ``words`` as a trie: the regex engine then follows one branch per character
    instead of trying every word at every position (about 100 us for 5 KB and 250 words)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + build(sub) for ch, sub in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return "(?:" + body + ")?" if "" in node else body

    return build(trie)


def _find(
    pattern: _Pattern, text: str, index: _TextIndex | None, candidates: Mapping[int, list[int]] | None
) -> Iterator[re.Match[str]]:
    """The pattern's matches in ``text``, the folded text ``index`` was built on.

    ``candidates`` holds, for a pattern the classifier keys by its literal prefixes, the word starts
    where one of them occurs: the regex is only tried there. An unkeyed pattern is skipped when the text
    lacks all its required strings and scanned otherwise. With no ``index`` and no ``candidates`` (the
    prefilter off) the whole text is scanned.
    """
    if candidates is None:
        if index is not None and pattern.required and not any(index.has(r) for r in pattern.required):
            return
        yield from pattern.regex.finditer(text)
        return
    end = 0
    match = pattern.regex.match
    for pos in candidates.get(pattern.serial, ()):
        if pos >= end and (m := match(text, pos)) is not None:
            end = m.end()
            yield m


# ------------------------------------------------------------------------------------------- sentences

# Sentences are found around the matches only: a 5 KB release with three matches needs three short
# scans, not a split of the whole text. Most sentences start within 300 characters of a match; a
# sentence longer than 800 is cut at that edge (an evidence sentence is clipped to 300 anyway).
_SENTENCE_REACH = (300, 800)


def _clip_sentence(text: str, start: int, end: int, focus_start: int, focus_end: int) -> str:
    sentence = " ".join(text[start:end].split())
    if len(sentence) <= _SENTENCE_MAX:
        return sentence
    # Too long (a run-on list, an unsplit page): keep a window centred on the phrase.
    centre = (focus_start + focus_end) // 2 - start
    lo = max(0, min(centre - _SENTENCE_MAX // 2, len(text[start:end]) - _SENTENCE_MAX))
    window = " ".join(text[start + lo : start + lo + _SENTENCE_MAX * 2].split())
    return ("…" if lo else "") + window[: _SENTENCE_MAX - 2] + "…"


# ------------------------------------------------------------------------------------ config (pydantic)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ScoringSpec(_Spec):
    title_weight: float = Field(2.0, gt=0)
    lead_sentences: int = Field(3, ge=0)
    lead_weight: float = Field(1.0, gt=0)
    tail_weight: float = Field(0.6, gt=0)
    repeat_decay: float = Field(0.5, ge=0, le=1)
    max_repeats: int = Field(4, ge=1)
    window: int = Field(8, ge=1)
    meta_cap: float = Field(0.75, ge=0)
    aside_factor: float = Field(1.0, ge=0, le=1)
    aside_sentences: int = Field(4, ge=1)
    aside_from: int = Field(1, ge=0)
    list_factor: float = Field(1.0, ge=0, le=1)


class _ScoringOverride(_Spec):
    title_weight: float | None = Field(None, gt=0)
    lead_sentences: int | None = Field(None, ge=0)
    lead_weight: float | None = Field(None, gt=0)
    tail_weight: float | None = Field(None, gt=0)
    repeat_decay: float | None = Field(None, ge=0, le=1)
    max_repeats: int | None = Field(None, ge=1)
    window: int | None = Field(None, ge=1)
    meta_cap: float | None = Field(None, ge=0)
    aside_factor: float | None = Field(None, ge=0, le=1)
    aside_sentences: int | None = Field(None, ge=1)
    aside_from: int | None = Field(None, ge=0)
    list_factor: float | None = Field(None, ge=0, le=1)


class _RuleSpec(_Spec):
    id: str = Field(min_length=1)
    weight: float
    patterns: list[str] = Field(min_length=1)
    near: list[str] = []
    and_near: list[str] = []
    unless_near: list[str] = []
    unless_and_near: list[str] = []
    window: int | None = Field(None, ge=1)
    unless_window: int | None = Field(None, ge=1)
    unless_factor: float = Field(0.0, ge=0, le=1)
    where: Literal["any", "title", "body"] = "any"
    explicit: bool = False
    supporting: bool = False

    @field_validator("weight")
    @classmethod
    def _nonzero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("weight must not be 0")
        return value

    @model_validator(mode="after")
    def _and_needs_near(self) -> _RuleSpec:
        if self.and_near and not self.near:
            raise ValueError("and_near needs near")
        if self.unless_and_near and not self.unless_near:
            raise ValueError("unless_and_near needs unless_near")
        return self


class _MetaRuleSpec(_Spec):
    match: str = Field(min_length=1)
    weight: float = Field(gt=0)


class _TopicSpec(_Spec):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1)
    description: str = Field(min_length=1)
    threshold: float = Field(gt=0)
    scoring: _ScoringOverride = _ScoringOverride()
    mask: list[str] = []
    rules: list[_RuleSpec] = Field(min_length=1)
    meta: dict[Literal["doj_topics", "doj_components", "source", "language"], list[_MetaRuleSpec]] = {}


class _TopicsFileSpec(_Spec):
    version: Literal[1]
    scoring: _ScoringSpec = _ScoringSpec()
    vocab: dict[str, list[str]] = {}
    topics: list[_TopicSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> _TopicsFileSpec:
        seen: set[str] = set()
        for topic in self.topics:
            if topic.id in seen:
                raise ValueError(f"duplicate topic id {topic.id!r}")
            seen.add(topic.id)
            rule_ids = [r.id for r in topic.rules]
            if len(rule_ids) != len(set(rule_ids)):
                raise ValueError(f"duplicate rule id in topic {topic.id!r}")
        return self


def _loc(parts: Sequence[int | str]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


# ------------------------------------------------------------------------------------ compiled topics


@dataclass(frozen=True)
class _Scoring:
    title_weight: float
    lead_sentences: int
    lead_weight: float
    tail_weight: float
    repeat_decay: float
    max_repeats: int
    window: int
    meta_cap: float
    aside_factor: float
    aside_sentences: int
    aside_from: int
    list_factor: float


@dataclass(frozen=True)
class _Rule:
    id: str
    order: int
    weight: float
    patterns: tuple[_Pattern, ...]
    near: re.Pattern[str] | None
    and_near: re.Pattern[str] | None
    unless: re.Pattern[str] | None
    unless_and: re.Pattern[str] | None
    window: int
    unless_window: int
    unless_factor: float
    where: str
    explicit: bool
    supporting: bool


@dataclass(frozen=True)
class _Topic:
    id: str
    label: str
    description: str
    threshold: float
    scoring: _Scoring
    masks: tuple[_Pattern, ...]
    rules: tuple[_Rule, ...]
    meta: tuple[tuple[str, tuple[tuple[re.Pattern[str], float], ...]], ...]


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    rule: _Rule
    dampened: bool


@dataclass
class _Weighed:
    """One hit with its weight before repeat decay and the notes that explain it."""

    hit: _Hit
    weight: float
    where: str
    s_start: int
    s_end: int
    notes: list[str]


class _Doc:
    """A title and a body joined in one folded string; sentences are found on demand."""

    def __init__(self, title: str, body: str) -> None:
        title = title.strip()
        body = _drop_repeated_title(title, body)
        self.raw = title + "\n\n" + body
        self.folded = fold_aligned(self.raw)
        low = self.folded.lower()
        if len(low) != len(self.folded):  # "İ" lowers to two characters: keep offsets aligned
            low = "".join(c if len(c.lower()) != 1 else c.lower() for c in self.folded)
        self.index = _TextIndex(low)
        self.body_start = len(title) + 2
        self._known: list[tuple[int, int]] = []  # sentences found so far, by start
        self._known_starts: list[int] = []
        self._lead_ends: dict[int, int] = {}
        self._body_sentences: int | None = None

    def sentence_of(self, pos: int) -> tuple[int, int]:
        """(start, end) of the sentence holding ``pos``; the title is one sentence."""
        if pos < self.body_start:
            return (0, self.body_start - 2)
        starts, known = self._known_starts, self._known
        i = bisect.bisect_right(starts, pos) - 1
        if i >= 0 and pos < known[i][1]:
            return known[i]
        raw, body = self.raw, self.body_start
        start = -1
        for reach in _SENTENCE_REACH:
            lo = max(body, pos - reach)
            for m in SENTENCE_BOUNDARY.finditer(raw, lo, min(len(raw), pos + 2)):
                if m.end() <= pos and ends_sentence(raw, m):
                    start = m.end()
            if start >= 0 or lo == body:
                start = max(start, lo)
                break
        else:
            start = lo
        end = min(len(raw), pos + _SENTENCE_REACH[-1])
        for m in SENTENCE_BOUNDARY.finditer(raw, pos, end):
            if ends_sentence(raw, m):
                end = m.end()
                break
        i = bisect.bisect_right(starts, start)
        starts.insert(i, start)
        known.insert(i, (start, end))
        return (start, end)

    def body_sentences(self) -> int:
        """How many sentences the body has (an empty body has none)."""
        if self._body_sentences is None:
            count, last = 0, self.body_start
            for m in SENTENCE_BOUNDARY.finditer(self.raw, self.body_start):
                if ends_sentence(self.raw, m):
                    count, last = count + 1, m.end()
            self._body_sentences = count + (1 if self.raw[last:].strip() else 0)
        return self._body_sentences

    def lead_end(self, sentences: int) -> int:
        """Where the first ``sentences`` sentences of the body end."""
        found = self._lead_ends.get(sentences)
        if found is None:
            found, count = len(self.raw), 0
            if sentences == 0:
                found = self.body_start
            else:
                for m in SENTENCE_BOUNDARY.finditer(self.raw, self.body_start):
                    if ends_sentence(self.raw, m):
                        count += 1
                        if count == sentences:
                            found = m.end()
                            break
            self._lead_ends[sentences] = found
        return found


def _drop_repeated_title(title: str, body: str) -> str:
    """Feeds and e-mail bulletins open the body with the title again: do not count it twice."""
    if not title:
        return body
    head = body.lstrip()
    if fold_aligned(head[: len(title)]).lower() == fold_aligned(title).lower():
        return head[len(title) :].lstrip(" \t—–-:|").lstrip()
    return body


def _window_words(text: str, start: int, end: int, s_start: int, s_end: int, n: int) -> str:
    left = text[max(s_start, start - n * 40) : start].split()[-n:]
    right = text[end : min(s_end, end + n * 40)].split()[:n]
    # The separator keeps a context phrase from being read across the anchor itself.
    return " ".join(left) + " | " + " ".join(right)


def _mask_spans(
    doc: _Doc,
    index: _TextIndex | None,
    masks: Sequence[_Pattern],
    candidates: dict[int, list[int]],
    keyed: frozenset[int],
) -> list[tuple[int, int]]:
    """Merged, sorted spans of the topic's mask patterns."""
    spans: list[tuple[int, int]] = []
    for mask in masks:
        if mask.serial in keyed and mask.serial not in candidates:
            continue
        found = _find(mask, doc.folded, index, candidates if mask.serial in keyed else None)
        spans.extend(m.span() for m in found)
    if not spans:
        return spans
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _blank(text: str, spans: Sequence[tuple[int, int]]) -> str:
    pieces: list[str] = []
    pos = 0
    for start, end in spans:
        pieces.append(text[pos:start])
        pieces.append(" " * (end - start))
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def _overlaps(spans: Sequence[tuple[int, int]], starts: Sequence[int], start: int, end: int) -> bool:
    i = bisect.bisect_right(starts, start) - 1  # the last span starting at or before ``start``
    if i >= 0 and spans[i][1] > start:
        return True
    return i + 1 < len(spans) and spans[i + 1][0] < end


# ------------------------------------------------------------------------------------------ classifier


class Classifier:
    """Scores items against the topics of one topics file. Immutable and safe to share between threads."""

    topic_ids: tuple[str, ...]

    def __init__(self, topics: Sequence[_Topic], origin: str, *, prefilter: bool = True) -> None:
        self._topics = tuple(topics)
        self.topic_ids = tuple(t.id for t in self._topics)
        self.origin = origin
        self.prefilter = prefilter
        # Prefix index: one trie regex finds, in one pass, every word start where some pattern's literal
        # prefix occurs; each pattern is then tried only at those positions. Without the prefilter
        # (``prefilter=False``, for checking that it changes no result) every pattern scans every text.
        owners: dict[str, set[int]] = {}
        for topic in self._topics if prefilter else ():
            for pattern in (*topic.masks, *(p for r in topic.rules for p in r.patterns)):
                for prefix in pattern.prefixes:
                    owners.setdefault(prefix, set()).add(pattern.serial)
        # The trie reports the longest word at a position: it stands for every shorter word it starts with.
        self._owners = {
            word: tuple(sorted(set().union(*(s for w, s in owners.items() if word.startswith(w))))) for word in owners
        }
        self._keyed = frozenset(serial for serials in owners.values() for serial in serials)
        # A lookahead, so that a prefix starting inside another ("s'engag" / "engag") is found too.
        trie = _trie_regex(sorted(owners))
        self._prefix_scan = re.compile(r"(?<!\w)(?=(" + trie + "))") if owners else None

    # ---- construction

    @classmethod
    def from_file(cls, path: str | Path | None = None, *, prefilter: bool = True) -> Classifier:
        text, origin = _read_topics(path)
        return cls.from_mapping(_parse_topics(text, origin), origin, prefilter=prefilter)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "<mapping>", *, prefilter: bool = True) -> Classifier:
        return cls(_compile_topics(_validate_topics(data, origin), origin), origin, prefilter=prefilter)

    # ---- classification

    def classify(self, title: str, text: str, meta: Mapping[str, Sequence[str]] | None = None) -> list[TopicResult]:
        """One result per topic with a positive score, strongest first."""
        doc = _Doc(title or "", text or "")
        candidates: dict[int, list[int]] = {}
        if self._prefix_scan is not None:
            owners = self._owners
            for m in self._prefix_scan.finditer(doc.index.low):
                for serial in owners[m.group(1)]:
                    candidates.setdefault(serial, []).append(m.start())
        found: dict[int, list[tuple[int, int]]] = {}  # pattern serial -> its matches in this text
        results = [r for r in (self._score(topic, doc, meta or {}, candidates, found) for topic in self._topics) if r]
        order = {tid: i for i, tid in enumerate(self.topic_ids)}
        results.sort(key=lambda r: (-r.score, order[r.topic]))
        return results

    def matched(self, title: str, text: str, meta: Mapping[str, Sequence[str]] | None = None) -> list[TopicResult]:
        """Only the topics whose score reaches their threshold."""
        return [r for r in self.classify(title, text, meta) if r.matched]

    @property
    def labels(self) -> dict[str, str]:
        """topic id → its label in the topics file (what messages and listings show)."""
        return {t.id: t.label for t in self._topics}

    def _score(
        self,
        topic: _Topic,
        doc: _Doc,
        meta: Mapping[str, Sequence[str]],
        candidates: dict[int, list[int]],
        found: dict[int, list[tuple[int, int]]],
    ) -> TopicResult | None:
        keyed = self._keyed
        index = doc.index if self.prefilter else None
        raw: list[tuple[_Rule, int, int]] = []
        # Positive rules first: a topic with no positive match is done before masks and dampeners run.
        for positive in (True, False):
            for rule in topic.rules:
                if (rule.weight > 0) is not positive:
                    continue
                for pattern in rule.patterns:
                    spans = found.get(pattern.serial)
                    if spans is None:
                        keyed_here = candidates if pattern.serial in keyed else None
                        if keyed_here is not None and pattern.serial not in candidates:
                            spans = []
                        else:
                            spans = [m.span() for m in _find(pattern, doc.folded, index, keyed_here)]
                        found[pattern.serial] = spans
                    if spans:
                        raw.extend((rule, start, end) for start, end in spans)
            if not raw:
                return None
        # Masked spans can neither match nor serve as context: matches overlapping them are dropped
        # and the context windows are read from a copy of the text with them blanked out.
        masked = _mask_spans(doc, index, topic.masks, candidates, keyed) if topic.masks else []
        context = doc.folded
        if masked:
            span_starts = [a for a, _ in masked]
            raw = [r for r in raw if not _overlaps(masked, span_starts, r[1], r[2])]
            context = _blank(doc.folded, masked)
        # Of the rules matching the very same words, the first listed that holds wins the overlap: the
        # later ones need not be checked.
        raw.sort(key=lambda r: (r[1], r[2], r[0].order))
        hits: list[_Hit] = []
        decided: tuple[int, int] | None = None
        for rule, start, end in raw:
            if (start, end) == decided:
                continue
            hit = self._check(rule, start, end, context, doc)
            if hit is not None:
                hits.append(hit)
                decided = (start, end)
        kept = _resolve_overlaps(hits)
        evidence, text_score = self._weigh(topic, kept, doc)
        meta_evidence, meta_score = _meta_evidence(topic, meta) if text_score > 0 else ([], 0.0)
        score = round(text_score + meta_score, 4)
        if score <= 0 or not evidence:
            return None
        evidence.extend(meta_evidence)
        evidence.sort(key=lambda e: (-e.weight, e.where != "title"))
        matched = text_score > 0 and score >= topic.threshold
        return TopicResult(topic.id, score, matched, tuple(evidence))

    @staticmethod
    def _check(rule: _Rule, start: int, end: int, text: str, doc: _Doc) -> _Hit | None:
        in_title = start < doc.body_start
        if (rule.where == "title" and not in_title) or (rule.where == "body" and in_title):
            return None
        if rule.near is None and rule.unless is None:
            return _Hit(start, end, rule, False)
        s_start, s_end = doc.sentence_of(start)
        if rule.near is not None:
            ctx = _window_words(text, start, end, s_start, s_end, rule.window)
            if rule.near.search(ctx) is None:
                return None
            if rule.and_near is not None and rule.and_near.search(ctx) is None:
                return None
        dampened = False
        if rule.unless is not None:
            ctx = _window_words(text, start, end, s_start, s_end, rule.unless_window)
            dampened = rule.unless.search(ctx) is not None and (
                rule.unless_and is None or rule.unless_and.search(ctx) is not None
            )
            if dampened and rule.unless_factor == 0:
                return None
        return _Hit(start, end, rule, dampened)

    @staticmethod
    def _weigh(topic: _Topic, hits: Sequence[_Hit], doc: _Doc) -> tuple[list[Evidence], float]:
        """Evidence and text score: each hit weighs its rule's weight x where it sits x its context, and
        the topic's evidence as a whole is asked whether the item is about the topic (``_about``)."""
        sc = topic.scoring
        weighed: list[_Weighed] = []
        for hit in hits:
            s_start, s_end = doc.sentence_of(hit.start)
            notes: list[str] = []
            if hit.start < doc.body_start:
                where, position = "title", sc.title_weight
            else:
                where = "body"
                lead = hit.start < doc.lead_end(sc.lead_sentences)
                if lead or hit.rule.explicit:
                    position = sc.lead_weight  # an explicit statement counts wherever it is made
                else:
                    position, notes = sc.tail_weight, ["after the lead"]
            weight = hit.rule.weight * position
            if hit.dampened:
                weight *= hit.rule.unless_factor
                notes.append("dampened by its context")
            if hit.rule.explicit and weight > 0:
                notes.append("explicit")
            if hit.rule.supporting and weight > 0:
                notes.append("supporting")
            weighed.append(_Weighed(hit, weight, where, s_start, s_end, notes))
        if any(w.weight > 0 and w.hit.rule.supporting for w in weighed) and not any(
            w.weight > 0 and not w.hit.rule.supporting for w in weighed
        ):
            # Supporting evidence only adds to a topic other evidence has raised.
            weighed = [w for w in weighed if not w.hit.rule.supporting]
        if sc.list_factor < 1:
            _listed(sc, weighed, doc)
        _about(sc, weighed, doc)
        by_rule: dict[int, list[_Weighed]] = {}
        for w in weighed:
            by_rule.setdefault(w.hit.rule.order, []).append(w)
        evidence: list[Evidence] = []
        total = 0.0
        for order in sorted(by_rule):
            ranked = sorted(by_rule[order], key=lambda x: (-abs(x.weight), x.hit.start))[: sc.max_repeats]
            for k, w in enumerate(ranked):
                contribution = round(w.weight * sc.repeat_decay**k, 4)
                if contribution == 0:
                    continue
                total += contribution
                evidence.append(
                    Evidence(
                        phrase=doc.raw[w.hit.start : w.hit.end],
                        sentence=_clip_sentence(doc.raw, w.s_start, w.s_end, w.hit.start, w.hit.end),
                        weight=contribution,
                        where=w.where,
                        note="; ".join(w.notes),
                    )
                )
        return evidence, round(total, 4)


def _listed(sc: _Scoring, weighed: Sequence[_Weighed], doc: _Doc) -> None:
    """A body mention that is one item of an enumeration of other things ("wanted for terrorism,
    extortion, arms trafficking and money laundering") counts ``list_factor`` of its weight. An
    enumeration holding two or more of the topic's mentions ("eight rifles, a pistol, 22 magazines") is a
    list of the topic's own things, and counts in full. (scales ``weighed`` in place)"""
    listed: list[tuple[_Weighed, int]] = []
    for w in weighed:
        if w.where == "body" and w.weight > 0 and not w.hit.rule.explicit:
            item = _list_item(doc.folded, w.s_start, w.s_end, w.hit.start)
            if item is not None:
                listed.append((w, item))
    items: dict[int, set[int]] = {}  # sentence -> the enumeration items holding a mention
    for w, item in listed:
        items.setdefault(w.s_start, set()).add(item)
    for w, _ in listed:
        if len(items[w.s_start]) == 1:
            w.weight *= sc.list_factor
            w.notes.append("list item")


def _about(sc: _Scoring, weighed: Sequence[_Weighed], doc: _Doc) -> None:
    """Is the item about the topic, or does the topic come up in passing? (scales ``weighed`` in place)

    A topic none of whose positive evidence is in the title, the first ``aside_from`` sentences of the body
    (a news lead is one sentence) or an explicit rule, all of it in one sentence of a body of at least
    ``aside_sentences`` sentences, is an aside ("The president has tied the duties to fentanyl" as the
    second sentence of a market story; "Separately, a trafficker who pleaded guilty last year moved heroin
    and fentanyl" at the end of an extradition story): its positive evidence counts ``aside_factor`` of its
    weight (on top of the tail weight after the lead).
    """
    if sc.aside_factor >= 1:
        return
    positive = [w for w in weighed if w.weight > 0]
    if not positive or any(w.where == "title" or w.hit.rule.explicit for w in positive):
        return
    if len({w.s_start for w in positive}) != 1 or positive[0].hit.start < doc.lead_end(sc.aside_from):
        return
    sentences = doc.body_sentences()
    if sentences < sc.aside_sentences:
        return
    for w in positive:
        w.weight *= sc.aside_factor
        w.notes.append(f"aside: the topic's only sentence of {sentences}")


# An enumeration: "charged with terrorism, extortion, arms trafficking and money laundering", "trafficking of
# persons, drugs and arms". Items are separated by commas or semicolons, the last one by a conjunction.
_LIST_COMMA = re.compile(r"\s*[,;]\s+")
_LIST_AND = re.compile(r"(?<!\w)(?:and|or|y|e|o|u|et|ou)(?!\w)", re.IGNORECASE)
_LIST_ITEM_WORDS = 6  # a middle item is short
_LIST_FIRST_ITEM_WORDS = 4  # the first item is the end of its segment ("...charged with [terrorism]")
_LIST_LAST_ITEM_WORDS = 14  # the last segment holds the closing items ("arms trafficking and money laundering")


def _list_item(text: str, s_start: int, s_end: int, pos: int) -> int | None:
    """The index of the item ``pos`` sits in, when it sits in an enumeration of at least three items in the
    sentence ``text[s_start:s_end]``; None otherwise."""
    bounds: list[tuple[int, int]] = []
    start = s_start
    for m in _LIST_COMMA.finditer(text, s_start, s_end):
        bounds.append((start, m.start()))
        start = m.end()
    bounds.append((start, s_end))
    if len(bounds) < 2:
        return None
    i = max(k for k, (a, _) in enumerate(bounds) if a <= pos)
    words = [len(text[a:b].split()) for a, b in bounds]
    lo = i
    while lo > 0 and (words[lo - 1] <= _LIST_ITEM_WORDS or lo - 1 == 0):
        lo -= 1
        if words[lo] > _LIST_ITEM_WORDS:
            break  # the first segment: a lead-in ending with the first item
    hi = i
    while (hi < len(bounds) - 1 and words[hi] <= _LIST_ITEM_WORDS) or (hi == i == lo and hi < len(bounds) - 1):
        hi += 1
        if words[hi] > _LIST_ITEM_WORDS:
            break  # the last segment: the closing item and what follows it
    # "B and C" in the last segment is two items; ", and the buyer took them" is one.
    conjunction = _LIST_AND.search(text, bounds[hi][0], bounds[hi][1])
    items = hi - lo + 1 + (1 if conjunction and text[bounds[hi][0] : conjunction.start()].strip() else 0)
    if items < 3:
        return None
    if i == lo and words[i] > _LIST_ITEM_WORDS and len(text[pos : bounds[i][1]].split()) > _LIST_FIRST_ITEM_WORDS:
        return None  # in the lead-in, not at its end where the first item sits
    if i == hi and i != lo and len(text[bounds[i][0] : pos].split()) >= _LIST_LAST_ITEM_WORDS:
        return None  # after the closing items
    return i


def _resolve_overlaps(hits: list[_Hit]) -> list[_Hit]:
    """Keep the longest of overlapping matches (the earlier rule at equal length), left to right."""
    hits.sort(key=lambda h: (h.start, -(h.end - h.start), h.rule.order))
    kept: list[_Hit] = []
    for hit in hits:
        if kept and hit.start < kept[-1].end:
            last = kept[-1]
            longer = (hit.end - hit.start) > (last.end - last.start)
            if longer:
                kept[-1] = hit
            continue
        kept.append(hit)
    return kept


def _meta_evidence(topic: _Topic, meta: Mapping[str, Sequence[str]]) -> tuple[list[Evidence], float]:
    evidence: list[Evidence] = []
    total = 0.0
    for key, rules in topic.meta:
        values = meta.get(key) or ()
        if isinstance(values, str):
            values = (values,)
        for value in values:
            for regex, weight in rules:
                if regex.fullmatch(fold_aligned(str(value)).strip()):
                    room = topic.scoring.meta_cap - total
                    if room > 0:
                        w = round(min(weight, room), 4)
                        total += w
                        evidence.append(Evidence(str(value), f"{key}: {value}", w, "meta"))
                    break
    return evidence, round(total, 4)


def _read_topics(path: str | Path | None) -> tuple[str, str]:
    """The text of a topics file and its name for messages (the shipped file when ``path`` is None)."""
    if path is None:
        shipped = Path(__file__).resolve().parent.parent / "config" / "topics.yaml"
        if shipped.is_file():
            path = shipped
        else:
            resource = importlib.resources.files("config") / "topics.yaml"
            return resource.read_text(encoding="utf-8"), "config/topics.yaml"
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise TopicsError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def topics_digest(path: str | Path | None = None) -> str:
    """A short digest of a topics file's rules (the shipped file when ``path`` is None): its parsed content, so
    comments and layout do not change it. A page found to match no topic under one digest is worth reading
    again under another (``pipelines.urlstates``). Raises ``TopicsError`` as loading the file does."""
    return _digest(*_read_topics(path))


@functools.lru_cache(maxsize=8)
def _digest(text: str, origin: str) -> str:
    # Parsing the YAML is the cost (~0.2 s for the shipped file): once per text in a process, and a worker's
    # warm parent computes it once for every pass it forks (crawler.daemon.preload).
    canonical = json.dumps(_parse_topics(text, origin), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _parse_topics(text: str, origin: str) -> Mapping[str, Any]:
    try:
        data = parse_yaml(text)
    except YamlProblem as exc:
        raise TopicsError(f"{origin}: {exc.where or '(top level)'}: invalid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise TopicsError(f"{origin}: (top level): expected a mapping with 'version' and 'topics'")
    return data


def _validate_topics(data: Mapping[str, Any], origin: str) -> _TopicsFileSpec:
    try:
        return _TopicsFileSpec.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = first["msg"].replace("\n", " ")
        raise TopicsError(f"{origin}: {_loc(first['loc'])}: {msg}{more}") from exc


def topic_labels(path: str | Path | None = None) -> dict[str, str]:
    """topic id → label, as a topics file defines them (checked, but its rules are not compiled: what
    messages need costs a YAML read, not a classifier)."""
    text, origin = _read_topics(path)
    return {t.id: t.label for t in _validate_topics(_parse_topics(text, origin), origin).topics}


def _compile_topics(spec: _TopicsFileSpec, origin: str) -> list[_Topic]:
    serials = itertools.count()

    def fail(loc: Sequence[int | str], msg: str) -> TopicsError:
        return TopicsError(f"{origin}: {_loc(loc)}: {msg}")

    def expand(items: Sequence[str], loc: Sequence[int | str]) -> list[tuple[str, tuple[int | str, ...]]]:
        """Items with "@name" vocab references replaced by the list, each with its own location."""
        out: list[tuple[str, tuple[int | str, ...]]] = []
        for i, item in enumerate(items):
            if item.startswith("@"):
                if item[1:] not in spec.vocab:
                    raise fail((*loc, i), f"unknown vocab list {item!r}")
                out.extend((v, ("vocab", item[1:], j)) for j, v in enumerate(spec.vocab[item[1:]]))
            else:
                out.append((item, (*loc, i)))
        return out

    # One compiled pattern (one serial) per source: rules sharing a list ("*gun_words") share its
    # matches, found once per text.
    compiled_by_source: dict[str, _Pattern] = {}

    def patterns(items: Sequence[str], loc: Sequence[int | str]) -> tuple[_Pattern, ...]:
        compiled: list[_Pattern] = []
        for src, where in expand(items, loc):
            if src not in compiled_by_source:
                try:
                    compiled_by_source[src] = _compile_pattern(src, next(serials))
                except re.error as exc:
                    raise fail(where, f"bad regex {src!r}: {exc}") from exc
            compiled.append(compiled_by_source[src])
        return tuple(compiled)

    def any_of(items: Sequence[str], loc: Sequence[int | str]) -> re.Pattern[str] | None:
        sources = expand(items, loc)
        for src, where in sources:
            try:
                _compile_pattern(src)
            except re.error as exc:
                raise fail(where, f"bad regex {src!r}: {exc}") from exc
        return _compile_any([src for src, _ in sources])

    for name, items in spec.vocab.items():  # every list, used or not
        for i, src in enumerate(items):
            try:
                _compile_pattern(src)
            except re.error as exc:
                raise fail(("vocab", name, i), f"bad regex {src!r}: {exc}") from exc

    topics: list[_Topic] = []
    base = spec.scoring
    for t_i, t in enumerate(spec.topics):
        tloc: tuple[int | str, ...] = ("topics", t_i)
        merged = base.model_dump()
        merged.update({k: v for k, v in t.scoring.model_dump().items() if v is not None})
        scoring = _Scoring(**merged)
        if scoring.meta_cap >= t.threshold:
            raise fail((*tloc, "scoring", "meta_cap"), "meta_cap must stay below the threshold")
        rules: list[_Rule] = []
        for r_i, r in enumerate(t.rules):
            rloc = (*tloc, "rules", r_i)
            window = r.window or scoring.window
            rules.append(
                _Rule(
                    id=r.id,
                    order=r_i,
                    weight=r.weight,
                    patterns=patterns(r.patterns, (*rloc, "patterns")),
                    near=any_of(r.near, (*rloc, "near")),
                    and_near=any_of(r.and_near, (*rloc, "and_near")),
                    unless=any_of(r.unless_near, (*rloc, "unless_near")),
                    unless_and=any_of(r.unless_and_near, (*rloc, "unless_and_near")),
                    window=window,
                    unless_window=r.unless_window or window,
                    unless_factor=r.unless_factor,
                    where=r.where,
                    explicit=r.explicit,
                    supporting=r.supporting,
                )
            )
        meta: list[tuple[str, tuple[tuple[re.Pattern[str], float], ...]]] = []
        for key, meta_rules in t.meta.items():
            compiled: list[tuple[re.Pattern[str], float]] = []
            for m_i, mr in enumerate(meta_rules):
                try:
                    compiled.append((re.compile(fold_pattern(mr.match), re.IGNORECASE), mr.weight))
                except re.error as exc:
                    raise fail((*tloc, "meta", key, m_i, "match"), f"bad regex {mr.match!r}: {exc}") from exc
            meta.append((key, tuple(compiled)))
        topics.append(
            _Topic(
                id=t.id,
                label=t.label,
                description=t.description,
                threshold=t.threshold,
                scoring=scoring,
                masks=patterns(t.mask, (*tloc, "mask")),
                rules=tuple(rules),
                meta=tuple(meta),
            )
        )
    return topics
