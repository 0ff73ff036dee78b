"""Is a changed page a new version of the story (material) or the same story re-rendered (trivial)?

Pure: values in, values out. The storage layer keeps the old text as a revision and calls ``compare``;
``content_hash`` lets it skip unchanged items cheaply; ``readable_diff`` shows an analyst what changed.

Material: the title changed; a paragraph or sentence was added, appended, changed or removed; a number,
name or amount changed. Trivial: whitespace; quotes, dashes, punctuation or letter case; a date stamp
("Updated November 14, 2025"); a share widget; a "Related Content" block; DOJ boilerplate ("An
indictment is merely an allegation...") changed or moved; paragraphs moved without a word changed.

``content_hash`` folds exactly what ``compare`` calls trivial, so two texts with equal hashes are never
a material change.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import textwrap
from collections import Counter
from dataclasses import dataclass

from pipelines.text import RELATED_HEADING, chrome_kind, fold_typography, is_boilerplate, split_sentences

_MAX_REASONS = 3  # the verdict's reason names the first three changes; the diff has them all
_QUOTE_CHARS = 80  # a changed sentence is quoted up to this many characters in a reason


@dataclass(frozen=True)
class ChangeVerdict:
    """Whether a change is material, and what it was, in words."""

    material: bool
    reason: str  # "title changed", "1 paragraph added", "sentence changed: '…'", "whitespace only", ...


# ---------------------------------------------------------------------------------------------------
# Page chrome: lines that are not the story, by kind (the kind names the trivial change).

# Words and numbers; a number keeps its separators ("$1,000" and "$1.000" differ).
_TOKEN = re.compile(r"\d[\d.,]*\d|\d|[^\W\d_]+")
_NUMBERISH = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class _Unit:
    """One sentence of the story."""

    key: str  # what decides equality: its words and numbers, lower case
    text: str  # as written, whitespace collapsed
    paragraph: int
    boilerplate: bool


@dataclass(frozen=True, slots=True)
class _Page:
    units: tuple[_Unit, ...]
    chrome: dict[str, tuple[str, ...]]  # kind -> its lines, whitespace collapsed
    body: str  # the lines that are not chrome, as written, without whitespace


def _key(text: str) -> str:
    return " ".join(_TOKEN.findall(fold_typography(text).lower()))


def _read(text: str) -> _Page:
    units: list[_Unit] = []
    chrome: dict[str, list[str]] = {"date stamp": [], "share widget": [], "related content block": []}
    raw_lines = text.split("\n")
    lines = [" ".join(line.split()) for line in fold_typography(text).split("\n")]
    if len(lines) != len(raw_lines):  # NFKC turned a character into a line break: keep them aligned
        raw_lines = lines
    related = next((i for i, ln in enumerate(lines) if RELATED_HEADING.match(ln)), None)
    if related is not None:
        chrome["related content block"] = [" ".join(ln.split()) for ln in lines[related:] if ln.strip()]
        lines, raw_lines = lines[:related], raw_lines[:related]
    body: list[str] = []
    paragraph: list[str] = []
    paragraphs: list[str] = []
    for line, raw in zip([*lines, ""], [*raw_lines, ""], strict=True):
        kind = chrome_kind(line)
        if kind:
            chrome[kind].append(" ".join(line.split()))
        elif line.strip():
            paragraph.append(line.strip())
            body.append(_squash(raw))
            continue
        if paragraph:
            paragraphs.append(" ".join(paragraph))
            paragraph = []
    for n, par in enumerate(paragraphs):
        for sentence in split_sentences(" ".join(par.split())):
            key = _key(sentence)
            if key:
                units.append(_Unit(key, sentence, n, is_boilerplate(sentence)))
    return _Page(tuple(units), {k: tuple(v) for k, v in chrome.items()}, "".join(body))


# ---------------------------------------------------------------------------------------------------
# The verdict

def compare(old_title: str, old_text: str, new_title: str, new_text: str) -> ChangeVerdict:
    """Is the new version of an item a material change of the old one?"""
    if old_title == new_title and old_text == new_text:
        return ChangeVerdict(False, "identical")
    reasons: list[str] = []
    if _key(old_title) != _key(new_title):
        reasons.append(f"title changed: {_quote(old_title)} -> {_quote(new_title)}")
    old, new = _read(old_text), _read(new_text)
    old_story = [u for u in old.units if not u.boilerplate]
    new_story = [u for u in new.units if not u.boilerplate]
    if [u.key for u in old_story] != [u.key for u in new_story]:
        if Counter(u.key for u in old_story) == Counter(u.key for u in new_story):
            if not reasons:
                return ChangeVerdict(False, "paragraphs reordered")
        else:
            reasons.extend(_story_changes(old_story, new_story, old.units, new.units))
    if reasons:
        extra = len(reasons) - _MAX_REASONS
        text = "; ".join(reasons[:_MAX_REASONS]) + (f"; and {extra} more" if extra > 0 else "")
        return ChangeVerdict(True, text)
    return ChangeVerdict(False, _trivial_reason(old_title, old_text, new_title, new_text, old, new))


def _story_changes(old: list[_Unit], new: list[_Unit], old_all: tuple[_Unit, ...],
                   new_all: tuple[_Unit, ...]) -> list[str]:
    """What changed in the story sentences (boilerplate left out), in words."""
    reasons: list[str] = []
    matcher = difflib.SequenceMatcher(None, [u.key for u in old], [u.key for u in new], autojunk=False)
    old_paragraphs = {u.paragraph for u in old}
    # A paragraph of the new text is new if none of its sentences, boilerplate included, was there before.
    old_keys = {u.key for u in old_all}
    matched_new_paragraphs = {u.paragraph for u in new_all if u.key in old_keys}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "insert":
            added = new[j1:j2]
            fresh = {u.paragraph for u in added} - matched_new_paragraphs
            if all(u.paragraph in fresh for u in added):
                n = len(fresh)
                reasons.append(f"{n} paragraph{'s' if n > 1 else ''} added: {_quote(added[0].text)}")
            elif j2 == len(new) or new[j2].paragraph != added[-1].paragraph:
                reasons.append(f"sentence appended: {_quote(added[-1].text)}")
            else:
                reasons.append(f"sentence added: {_quote(added[0].text)}")
        elif tag == "delete":
            gone = old[i1:i2]
            whole = {u.paragraph for u in gone} - {u.paragraph for k, u in enumerate(old) if not i1 <= k < i2}
            if whole and all(u.paragraph in whole for u in gone) and len(whole) < len(old_paragraphs):
                n = len(whole)
                reasons.append(f"{n} paragraph{'s' if n > 1 else ''} removed: {_quote(gone[0].text)}")
            else:
                n = len(gone)
                reasons.append(f"{n} sentence{'s' if n > 1 else ''} removed: {_quote(gone[0].text)}")
        else:
            for a, b in zip(old[i1:i2], new[j1:j2], strict=False):
                reasons.append(_sentence_change(a.text, b.text))
            if j2 - j1 > i2 - i1:
                reasons.append(f"sentence added: {_quote(new[j1 + (i2 - i1)].text)}")
            elif i2 - i1 > j2 - j1:
                reasons.append(f"sentence removed: {_quote(old[i1 + (j2 - j1)].text)}")
    return reasons


def _sentence_change(old: str, new: str) -> str:
    """``sentence changed: '…'`` with the number, amount or name that changed, when one did."""
    a, b = _TOKEN.findall(fold_typography(old)), _TOKEN.findall(fold_typography(new))
    gone = [t for t in a if t not in b]
    came = [t for t in b if t not in a]
    detail = ""
    if any(_NUMBERISH.search(t) for t in gone + came):
        old_n = [t for t in gone if _NUMBERISH.search(t)]
        new_n = [t for t in came if _NUMBERISH.search(t)]
        detail = f" (number {' '.join(old_n) or '-'} -> {' '.join(new_n) or '-'})"
    elif any(t[:1].isupper() for t in gone + came):
        old_w = [t for t in gone if t[:1].isupper()]
        new_w = [t for t in came if t[:1].isupper()]
        detail = f" (name {' '.join(old_w) or '-'} -> {' '.join(new_w) or '-'})"
    return f"sentence changed: {_quote(new)}{detail}"


def _trivial_reason(old_title: str, old_text: str, new_title: str, new_text: str, old: _Page,
                    new: _Page) -> str:
    """Name what differs between two versions whose story is the same."""
    if _squash(old_title) == _squash(new_title) and _squash(old_text) == _squash(new_text):
        return "whitespace only"
    kinds = [kind for kind in ("date stamp", "share widget", "related content block")
             if old.chrome[kind] != new.chrome[kind]]
    old_bp = [u.key for u in old.units if u.boilerplate]
    new_bp = [u.key for u in new.units if u.boilerplate]
    if old_bp != new_bp:
        kinds.append("boilerplate reordered" if Counter(old_bp) == Counter(new_bp) else "boilerplate changed")
    story_old = [_squash(u.text) for u in old.units if not u.boilerplate]
    story_new = [_squash(u.text) for u in new.units if not u.boilerplate]
    typography = old.body != new.body and (
        _squash(fold_typography(old.body)) == _squash(fold_typography(new.body)))
    if story_old != story_new or typography or _squash(old_title) != _squash(new_title):
        kinds.append("punctuation, quotes or case")
    if not kinds:
        return "layout only"  # the same sentences, broken into lines or paragraphs differently
    return " and ".join(kinds) + (" only" if len(kinds) == 1 else "")


def _squash(text: str) -> str:
    return "".join(text.split())


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _QUOTE_CHARS:
        text = text[: _QUOTE_CHARS - 1].rstrip() + "…"
    return f"'{text}'"


# ---------------------------------------------------------------------------------------------------
# Hash and diff

def content_hash(title: str, text: str) -> str:
    """sha256 (hex) of the content with every trivial difference folded: whitespace, quotes, punctuation
    and case, date stamps, share widgets, related-content blocks, the order of sentences (moving a
    paragraph adds no fact) and DOJ boilerplate (its wording and order)."""
    page = _read(text)
    story = sorted(u.key for u in page.units if not u.boilerplate)
    digest = hashlib.sha256()
    digest.update(_key(title).encode())
    for key in story:
        digest.update(b"\n")
        digest.update(key.encode())
    return digest.hexdigest()


def readable_diff(old_text: str, new_text: str, width: int = 100) -> str:
    """A unified-style diff by sentence ("- old sentence" / "+ new sentence"), one unchanged sentence of
    context around each change, wrapped at ``width``; empty if the sentences are the same."""
    old, new = _sentences(old_text), _sentences(new_text)
    a, b = [s for _, s in old], [s for _, s in new]
    if a == b:
        return ""
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(1):
        j = group[0][3]
        out.append(f"@@ paragraph {new[j][0] + 1 if j < len(new) else new[-1][0] + 1 if new else 1} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(_wrap("  ", s, width) for s in a[i1:i2])
                continue
            out.extend(_wrap("- ", s, width) for s in a[i1:i2])
            out.extend(_wrap("+ ", s, width) for s in b[j1:j2])
    return "\n".join(out)


def _sentences(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    paragraphs = [p for p in re.split(r"\n\s*\n", fold_typography(text)) if p.strip()]
    for n, paragraph in enumerate(paragraphs):
        out.extend((n, s) for s in split_sentences(" ".join(paragraph.split())))
    return out


def _wrap(prefix: str, sentence: str, width: int) -> str:
    return textwrap.fill(sentence, width=max(width, 20), initial_indent=prefix, subsequent_indent="  ",
                         break_long_words=False, break_on_hyphens=False)
