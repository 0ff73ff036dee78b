"""Text shared by the classifier, the story index and revision detection: folding, sentences, page
chrome and DOJ boilerplate. Pure functions and compiled patterns; no I/O.

Two foldings, for two needs:

* ``fold_aligned`` maps accents, typographic quotes, dashes and odd spaces to ASCII one character for
  one, so that an offset in the folded text is an offset in the original (the classifier quotes the
  sentence a match sits in). ``fold_pattern`` folds a regex the same way.
* ``fold_typography`` (NFKC; quotes, dashes and fractions to ASCII) may change the length; the story
  index and revision detection compare words, not offsets. ``strip_accents`` then drops accents.

Two sentence splitters, for two needs (each keeps the behaviour its caller's tests and stored data rely
on: story signatures are stored, so the words a story's sentences hold must not move):

* ``split_sentences(paragraph)``: every sentence of a paragraph (stories, revisions), after
  ``PRESS_ABBREVIATIONS`` (case-sensitive) a full stop does not end one.
* ``SENTENCE_BOUNDARY`` + ``ends_sentence``: candidate ends found in any stretch of text and checked
  one by one (the classifier splits only around its matches), with the longer lowercase
  ``SENTENCE_ABBREVIATIONS`` (state abbreviations: "ATLANTA, Ga. A man..." is one sentence).

Page chrome: ``CHROME_KINDS`` (date stamps, share widgets; revision detection names the kind of a
trivial change), ``CHROME_LINE`` (those and other page labels the story index drops) and
``RELATED_HEADING`` (after it the rest of a page is other stories: the classifier does not read it).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "BOILERPLATE_PATTERNS",
    "CHROME_KINDS",
    "CHROME_LINE",
    "PRESS_ABBREVIATIONS",
    "RELATED_HEADING",
    "SENTENCE_ABBREVIATIONS",
    "SENTENCE_BOUNDARY",
    "WORD",
    "chrome_kind",
    "ends_sentence",
    "fold_aligned",
    "fold_pattern",
    "fold_typography",
    "is_boilerplate",
    "is_boilerplate_words",
    "related_start",
    "split_sentences",
    "strip_accents",
]


def _words(words: str) -> frozenset[str]:
    return frozenset(words.split())


# ------------------------------------------------------------------------------------------- folding

# Typographic quotes and dashes: one character for one, shared by both foldings.
_QUOTES_AND_DASHES = (("’‘‛‚´`", "'"), ("“”„«»", '"'), ("–—‑‒―", "-"))
# fmt: off
_ALIGNED_GROUPS = (
    ("ÁÀÂÄÃÅ", "A"), ("áàâäãå", "a"), ("ÉÈÊË", "E"), ("éèêë", "e"), ("ÍÌÎÏ", "I"), ("íìîï", "i"),
    ("ÓÒÔÖÕ", "O"), ("óòôöõ", "o"), ("ÚÙÛÜ", "U"), ("úùûü", "u"), ("Ñ", "N"), ("ñ", "n"), ("Ç", "C"),
    ("ç", "c"), ("Ý", "Y"), ("ýÿ", "y"), *_QUOTES_AND_DASHES, ("\u00a0\u2009\u202f\t\r\n\f\v", " "),
)
# fmt: on
FOLD_MAP: dict[str, str] = {ch: to for chars, to in _ALIGNED_GROUPS for ch in chars}
_ALIGNED = str.maketrans(FOLD_MAP)
# str.translate takes ~45 ns a character once the text holds one non-ASCII character; a regex that
# only stops at the characters to fold is ~20x faster on press-release text.
_ALIGNED_RE = re.compile("[" + re.escape("".join(FOLD_MAP)) + "]")


def fold_aligned(text: str) -> str:
    """Accents, typographic quotes, dashes and whitespace characters to ASCII, one character for one."""
    return _ALIGNED_RE.sub(_fold_char, text)


def _fold_char(m: re.Match[str]) -> str:
    return FOLD_MAP[m.group()]


def fold_pattern(src: str) -> str:
    """Fold a regex like the text, leaving character classes intact (adding the folded characters).

    Folding "[-–]" to "[--]" would make a bad range; "[aá]" becomes "[aáa]" and "[-–]" "[-–\\-]".
    """
    out: list[str] = []
    extra: list[str] = []
    in_class = escaped = False
    for i, ch in enumerate(src):
        if escaped:
            escaped = False
            out.append(ch)
        elif ch == "\\":
            escaped = True
            out.append(ch)
        elif in_class:
            if ch == "]" and not (src[i - 1] == "[" or src[i - 2 : i] == "[^"):
                out.extend(extra)
                extra.clear()
                in_class = False
            else:
                folded = ch.translate(_ALIGNED)
                if folded != ch:
                    extra.append(re.escape(folded))
            out.append(ch)
        else:
            in_class = ch == "["
            out.append(ch.translate(_ALIGNED))
    return "".join(out)


_TYPOGRAPHY_MAP = {
    **{ch: to for chars, to in _QUOTES_AND_DASHES for ch in chars},
    "\xa0": " ",
    "½": ".5",
    "¼": ".25",
    "¾": ".75",
}
_TYPOGRAPHY = re.compile("|".join(map(re.escape, _TYPOGRAPHY_MAP)))


def fold_typography(text: str) -> str:
    """NFKC; typographic quotes, dashes and fractions to ASCII; non-breaking spaces to spaces."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", _TYPOGRAPHY.sub(lambda m: _TYPOGRAPHY_MAP[m.group()], text))


def strip_accents(text: str) -> str:
    """ASCII only: accents dropped (Jiménez -> Jimenez), other non-ASCII characters too."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


# ----------------------------------------------------------------------------------------- sentences

# Sentence ends, not after the abbreviations press releases are full of (U.S., Sept., Jr., R.).
PRESS_ABBREVIATIONS = _words("""
U.S U.S.A D.C Mr Ms Mrs Dr Jr Sr St No vs Jan Feb Mar Apr Aug Sept Sep Oct Nov Dec Inc Co Corp Ltd
Gov Sen Rep Lt Sgt Gen Col Capt Ft Mt a.k.a
""")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9¿¡])")
WORD = re.compile(r"[^\W_]+", re.UNICODE)


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of one paragraph (good enough for press-release prose)."""
    out: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(paragraph):
        end = m.start()
        if paragraph[end] == ".":
            word_start = end
            while word_start > start and (paragraph[word_start - 1].isalpha() or paragraph[word_start - 1] == "."):
                word_start -= 1
            word = paragraph[word_start:end]
            if word in PRESS_ABBREVIATIONS or (len(word) == 1 and word.isupper()):
                continue  # "U.S. Attorney", "Sept. 30", "Matthew R. Galeotti"
        sentence = paragraph[start : m.end()].strip()
        if sentence:
            out.append(sentence)
        start = m.end()
    tail = paragraph[start:].strip()
    if tail:
        out.append(tail)
    return out


SENTENCE_BOUNDARY = re.compile(r"[.!?]+[\"'’”)\]]*\s+(?=[\"'“‘(\[¿¡]?[A-Z0-9À-ÖØ-Þ])|\n\s*\n|\s[*•]\s")
# Tokens that end in a full stop without ending a sentence (DOJ prose is full of "U.S." and "Ga.").
SENTENCE_ABBREVIATIONS = frozenset(
    """u.s u.s.a u.k u.n d.c n.y n.j n.c s.c n.m n.h n.d s.d w.va a.m p.m a.k.a a/k/a e.g i.e et al
    mr mrs ms dr jr sr st ste no nos gen gov sen rep lt sgt col capt cpl maj adm hon rev inc corp co ltd
    llc v vs jan feb mar apr jun jul aug sep sept oct nov dec ala ariz ark calif colo conn del fla ga ill
    ind kan kans ky la md mass mich minn miss mo mont neb nev okla ore pa tenn tex va vt wash wis wyo
    approx dept est sec secs u.s.c fig ft mt""".split()  # noqa: SIM905
)


def ends_sentence(text: str, m: re.Match[str]) -> bool:
    """Is this candidate boundary a real one ("U.S. Attorney", "J. Smith" and "Ga." are not)?"""
    if text[m.start()] != ".":
        return True
    head = text[max(0, m.start() - 12) : m.start()].rsplit(None, 1)
    token = head[-1].lower().lstrip("(\"'") if head else ""
    return not (token in SENTENCE_ABBREVIATIONS or (len(token) == 1 and token.isalpha()))


# -------------------------------------------------------------------------------------- page chrome

# Lines that are not the story, by kind (revision detection names the kind of a trivial change).
_DATE = (
    r"(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|"
    r"apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
    r"\.?\s+\d{1,2},?\s+\d{4}|\d{1,2}/\d{1,2}/\d{2,4}|\d{4}-\d{2}-\d{2}|\d{1,2}\s+de\s+\w+\s+de\s+\d{4}"
)
CHROME_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "date stamp",
        re.compile(
            rf"^\s*(?:(?:last\s+)?(?:updated|modified|revised|published|posted|actualizado|mis à jour)\s*:?\s*)?"
            rf"(?:on\s+)?(?:{_DATE})(?:\s*(?:at\s+)?\d{{1,2}}:\d{{2}}\s*(?:[ap]\.?m\.?)?(?:\s*[A-Z]{{2,4}})?)?\s*$",
            re.IGNORECASE,
        ),
    ),
    (
        "share widget",
        re.compile(
            r"^\s*[-*•]?\s*(?:share|share (?:on|via|to) \w+|share this (?:page|article|story)|facebook|x|twitter|"
            r"linkedin|email|e-mail|print|whatsapp|reddit|copy link|link copied|tweet)\s*$",
            re.IGNORECASE,
        ),
    ),
)
# Page chrome that is not part of the story: share widgets, date stamps, section labels.
CHROME_LINE = re.compile(
    r"^\s*[-*•]?\s*(?:share(?: on \w+| this(?: article| story)?)?|facebook|x|twitter|linkedin|email|print|"
    r"whatsapp|copy link|for immediate release|press release|office of public affairs|topics?|"
    r"components?|updated:? .{0,40}\d{4}|(?:contact|media contact|press office)\b.{0,80}|"
    r"(?:press release number|release number|number):? *[\w-]+|advertisement|"
    r"(?:sign up|subscribe)\b.{0,80}|©.{0,120}|copyright\b.{0,120}|all rights reserved\.?|###)\s*$",
    re.IGNORECASE,
)


def chrome_kind(line: str) -> str | None:
    """ "date stamp" or "share widget" when the line is one (``CHROME_KINDS``), else None."""
    if not line.strip():
        return None
    return next((kind for kind, rx in CHROME_KINDS if rx.match(line)), None)


# A heading after which the rest of a page is other stories ("Related Content", "Lire aussi").
RELATED_HEADING = re.compile(
    r"^\s*#*\s*(?:related content|related (?:stories|articles|news|press releases)|more from\b.*|"
    r"read more|recommended(?: for you)?|most read|contenido relacionado|"
    r"noticias relacionadas|à lire aussi|sur le même sujet)\s*:?\s*$",
    re.IGNORECASE,
)
_RELATED_LINE = re.compile(RELATED_HEADING.pattern, re.IGNORECASE | re.MULTILINE)


def related_start(text: str) -> int | None:
    """Offset of the first line of ``text`` that is a related-content heading, or None."""
    m = _RELATED_LINE.search(text)
    return m.start() if m else None


# ------------------------------------------------------------------------------------ DOJ boilerplate

# Sentences DOJ offices repeat in every release. Two releases from one office share them, so they
# would make unrelated stories look alike; they carry no fact of the story. Each pattern runs only on
# sentences containing one of its trigger words (running them all on every sentence costs a
# millisecond a document).
BOILERPLATE_PATTERNS: tuple[tuple[frozenset[str], re.Pattern[str]], ...] = tuple(
    (frozenset(triggers.split()), re.compile(pattern, re.IGNORECASE))
    for triggers, pattern in [
        (
            "merely only allegation allegations accusation accusations",
            r"\b(?:indictment|complaint|information|charges?|details)\b.{0,80}\b(?:merely|only|are)\b.{0,10}"
            r"\b(?:allegations?|accusations?|charges?)\b",
        ),
        ("innocent", r"\bpresumed (?:to be )?innocent\b"),
        ("america", r"\bOperation Take Back America\b"),
        ("neighborhood neighborhoods", r"\bProject Safe Neighborhoods?\b"),
        ("ocdetf organized", r"\bOrganized Crime Drug Enforcement Task Forces?\b|\bOCDETF\b"),
        (
            "force forces",
            r"\bHomeland Security Task Forces?\b.{0,120}"
            r"\b(?:established|created|executive order|whole-of-government|nationwide)\b",
        ),
        (
            "jtfv vulcan",
            r"\b(?:JTFV|Joint Task Force Vulcan)\b.{0,60}"
            r"\b(?:created|comprised|established|expanded)\b",
        ),
        (
            "prosecute prosecuted prosecutes prosecuting prosecution handle handled handles handling",
            r"\b(?:Assistant|Special Assistant|Deputy Chief|Trial Attorneys?|Assistant Chief)\b.{0,200}"
            r"\b(?:prosecut\w+|handl\w+|in charge of the prosecution)\b"
            r"|\b(?:is|are|was|were) (?:being )?(?:prosecut\w+|handl\w+) (?:by|the case)\b",
        ),
        ("congress determined", r"\bprescribed by Congress\b|\bdetermined by the (?:court|judge)\b"),
        ("guidelines", r"\bSentencing Guidelines\b.{0,80}\bstatutory factors\b"),
        (
            "praised thanked commended acknowledged",
            r"\b(?:praised|thanked|commended|acknowledged)\b.{0,40}\b(?:work|efforts|assistance|support|partners?)\b",
        ),
        (
            "part",
            r"^(?:this|the) (?:case|prosecution|investigation|effort|operation) "
            r"(?:is|was) (?:a )?part of\b",
        ),
        ("investigated", r"^(?:this|the) (?:case|matter) (?:is|was) (?:being )?investigated by\b"),
        (
            "information public tips",
            r"\b(?:anyone with information|members of the public|tips? can be)\b.{0,120}"
            r"\b(?:call|report|contact|submit|tip)\b",
        ),
        ("note", r"^note ?: this matter occurred on date indicated\b"),
        ("available", r"\bpress release posted and made available\b"),
        (
            "originally story article reprinted distributed republished",
            r"\b(?:originally (?:appeared|published)|this (?:story|article) (?:was|has been)|reprinted "
            r"(?:with|by) permission|distributed by|republished)\b",
        ),
        ("follow sign subscribe newsletter", r"\b(?:follow us on|sign up for|subscribe to|newsletter)\b"),
    ]
)
_BOILERPLATE_TRIGGERS = frozenset().union(*(triggers for triggers, _ in BOILERPLATE_PATTERNS))


def is_boilerplate(sentence: str) -> bool:
    """Is this one of the sentences DOJ offices repeat in every release (folded text)?"""
    return is_boilerplate_words(sentence, WORD.findall(sentence.lower()))


def is_boilerplate_words(sentence: str, words: list[str]) -> bool:
    """``is_boilerplate`` with the sentence's words in lower case already found (``WORD``)."""
    if _BOILERPLATE_TRIGGERS.isdisjoint(words):
        return False
    present = set(words)
    return any(not triggers.isdisjoint(present) and rx.search(sentence) for triggers, rx in BOILERPLATE_PATTERNS)
