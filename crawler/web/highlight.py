"""An item's text as HTML paragraphs, with the phrases its topics were found by marked (``<mark>``)."""

from __future__ import annotations

import re
import unicodedata

from markupsafe import Markup, escape


def _fold(text: str) -> str:
    """Lowercase, accents removed, one character for one (so offsets in the folded text hold in the original)."""
    out = []
    for ch in text:
        base = unicodedata.normalize("NFD", ch)
        kept = "".join(c for c in base if not unicodedata.combining(c))
        out.append(kept.lower()[:1] if len(kept.lower()) >= 1 else ch)
    return "".join(out)


def spans(text: str, phrases: dict[str, list[str]]) -> list[tuple[int, int, list[str]]]:
    """Where each phrase occurs (whole words, case and accents ignored): (start, end, topics), in order,
    overlapping matches merged."""
    folded = _fold(text)
    found: list[tuple[int, int, str]] = []
    for topic, words in phrases.items():
        for phrase in words:
            p = _fold(phrase.strip())
            if not p:
                continue
            for m in re.finditer(r"(?<!\w)" + re.escape(p) + r"(?!\w)", folded):
                found.append((m.start(), m.end(), topic))
    found.sort()
    merged: list[tuple[int, int, list[str]]] = []
    for start, end, topic in found:
        if merged and start < merged[-1][1]:
            s0, e0, ts = merged[-1]
            merged[-1] = (s0, max(e0, end), ts if topic in ts else [*ts, topic])
        else:
            merged.append((start, end, [topic]))
    return merged


def highlighted(text: str, phrases: dict[str, list[str]]) -> Markup:
    """``text`` as ``<p>`` paragraphs with every evidence phrase in a ``<mark>`` naming its topics."""
    out: list[str] = []
    pos = 0
    pieces: list[str] = []
    for start, end, topics in spans(text, phrases):
        pieces.append(str(escape(text[pos:start])))
        names = " ".join(topics)
        pieces.append(f'<mark class="evidence" data-topics="{escape(names)}" title="evidence: {escape(names)}">'
                      f"{escape(text[start:end])}</mark>")
        pos = end
    pieces.append(str(escape(text[pos:])))
    html = "".join(pieces)
    for para in re.split(r"\n\s*\n", html):
        if para.strip():
            out.append("<p>" + para.strip().replace("\n", "<br>") + "</p>")
    return Markup("\n".join(out))
