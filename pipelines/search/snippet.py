"""Snippets and highlighted titles: HTML-safe text with the query's words in ``<mark>``.

Made here rather than by the engines (FTS5 ``snippet()``, PostgreSQL ``ts_headline``) so that both
databases give the same snippet for the same item, and so that what is marked is exactly what the
grammar matched: words compared without case or accents.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from html import escape

from pipelines.search.grammar import fold

_TOKEN = re.compile(r"[^\W_]+")
# A snippet shows this many words around the densest run of matches; only the first SCAN characters of a
# long text are looked at (a page of 100,000 characters is already a long report).
WORDS = 32
SCAN = 100_000


def _marked(text: str, spans: list[tuple[int, int, bool]]) -> str:
    out, pos = [], 0
    for start, end, hit in spans:
        if not hit:
            continue
        out.append(escape(text[pos:start]))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        pos = end
    out.append(escape(text[pos:]))
    return "".join(out)


def highlight(text: str, marks: Collection[str]) -> str:
    """All of ``text``, escaped, with every word whose folded form is in ``marks`` marked."""
    spans = [(m.start(), m.end(), (w.lower() if (w := m.group()).isascii() else fold(w)) in marks)
             for m in _TOKEN.finditer(text)] if marks else []
    return _marked(text, spans)


def snippet(text: str, marks: Collection[str], *, words: int = WORDS) -> str:
    """About ``words`` words of ``text`` where the most distinct marked words are, escaped and marked."""
    head = text[:SCAN]
    found = [(m.start(), m.end()) for m in _TOKEN.finditer(head)]
    if not found:
        return escape(" ".join(head[:300].split()))
    hits: dict[int, str] = {}  # token index → its folded form, for the marked tokens only
    if marks:
        for k, (a, b) in enumerate(found):
            w = head[a:b]
            f = w.lower() if w.isascii() else fold(w)
            if f in marks:
                hits[k] = f
    best = 0
    if hits:
        # The window of `words` tokens with the most distinct marked words (then the most marks), found by
        # sliding over the marked tokens only; the first such window wins.
        order = sorted(hits)
        best_key = (-1, -1)
        lo = 0
        seen: Counter[str] = Counter()
        for hi, k in enumerate(order):
            seen[hits[k]] += 1
            while order[lo] <= k - words:
                seen[hits[order[lo]]] -= 1
                if not seen[hits[order[lo]]]:
                    del seen[hits[order[lo]]]
                lo += 1
            key = (len(seen), hi - lo + 1)
            if key > best_key:
                best_key, first, last = key, order[lo], k
        # Centre the window on its marked words, so they are read with what comes before and after.
        slack = words - (last - first + 1)
        best = max(0, min(first - slack // 2, len(found) - words))
    end = min(len(found), best + words)
    start_char = found[best][0]
    end_char = found[end - 1][1]
    # Carry trailing punctuation attached to the last word (a full stop, a closing quote).
    while end_char < len(head) and not head[end_char].isspace() and end_char - found[end - 1][1] < 3:
        end_char += 1
    piece = head[start_char:end_char]
    spans = [(a - start_char, b - start_char, k in hits) for k, (a, b) in enumerate(found[best:end], best)]
    body = " ".join(_marked(piece, spans).split())
    prefix = "… " if best > 0 else ""
    suffix = " …" if end < len(found) or len(text) > len(head) else ""
    return prefix + body + suffix
