"""Group copies of one story under one story id: the DOJ release, the USAO copy, a rewrite, a reprint.

Pure: values in, values out; the storage layer keeps the index in memory and stores each item's
``fingerprint`` in a column. A new document is matched in three steps:

1. Strong keys decide at once: same DOJ release number from the same office, same canonical URL.
   Same normalised title on the same day also decides, unless the texts name different people.
2. Candidates come from MinHash LSH (banding, ``_Bands``) over word shingles of the text with DOJ boilerplate
   removed, and from an inverted index of rare proper names (which finds rewrites and reports in
   Spanish or French whose wording shares nothing with the release).
3. Each candidate is confirmed by a stricter check: the Jaccard estimate or containment of the
   shingle sets, overlap of distinctive tokens (names, numbers, amounts), agreement on who the story
   is mainly about and on the legal event in the title (charged / pleaded guilty / sentenced ...), and
   the publication dates. The weaker the text evidence, the more the other signals must agree and the
   closer the dates must be. A short copy (a lead, one paragraph of the release) is judged on how much
   of it the longer text contains, and on its names. Precision comes first: a missed copy costs one
   duplicate alert, a false merge silences a story.

What an outlet puts around a story it carries is set aside before any of this: its name around the
title (" | AP News", "Outlet - ..."), bylines, agency credits ("MEXICO CITY (AP) -"), picture credits and
"With files from" / "Source:" lines. It is evidence neither of a copy nor of a different story.

The signature is computed here (numpy) rather than with ``datasketch.MinHash`` so that stored
signatures do not depend on the datasketch version (2.0 changed the default permutation scheme);
``_Bands`` indexes them as ``datasketch.MinHashLSH`` would, without loading scipy.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import struct
import sys
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.text import (
    CHROME_LINE,
    RELATED_HEADING,
    WORD,
    fold_typography,
    is_boilerplate_words,
    split_sentences,
    strip_accents,
)

NUM_PERM = 128  # 128 permutations: Jaccard estimate within ~±0.045 at J=0.5; a 522-byte signature.
SHINGLE_WORDS = 4  # words per shingle. On the dev set 3 finds two more feed copies and 5 three fewer,
#                    none of them merging wrongly; the thresholds below were calibrated with 4.
DEFAULT_THRESHOLD = 0.5  # Jaccard at or above which two texts are near-duplicates.
LSH_ROWS = 3  # rows per LSH band; the number of bands follows from the threshold (see _lsh_bands)
LSH_RECALL = 0.9  # chance that LSH offers a pair whose Jaccard is exactly the threshold (more above it)
COPY_WINDOW = timedelta(days=14)  # copies of a release appear within two weeks of it
REWRITE_WINDOW = timedelta(days=3)  # rewrites and translations, judged on entities, within three days
MAX_NAME_POSTINGS = 40  # a name found in more items than this says nothing about one story
MAX_NAME_CANDIDATES = 25  # items sharing the most rare names with a new doc, checked per match

_SIG_MAGIC = b"BW"
_SIG_VERSION = 1
_SIG_HEADER = struct.Struct("<2sBxHI")  # magic, version, pad, num_perm, shingle-set size
_EMPTY = np.uint32(0xFFFFFFFF)


@dataclass(frozen=True)
class StoryDoc:
    """What the story index needs to know about one stored item."""

    item_id: int
    title: str
    text: str
    published: datetime | None
    url: str  # canonical url
    release_number: str | None = None  # DOJ "number", e.g. "26-149"
    # What ``story_features`` computed for this title and text (in a worker process, or stored with
    # the item); None: computed here when needed.
    features: StoryFeatures | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StoryMatch:
    """The existing story a new document belongs to, and why."""

    story_id: int
    item_id: int  # the closest item
    similarity: float
    reason: str  # "release number 26-149" / "near-duplicate text (0.87)" / "same title and date"


# ---------------------------------------------------------------------------------------------------
# Text normalisation and boilerplate

def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Credit lines an outlet adds to a story it carries: picture credits and captions ("... (AP Photo/Jane
# Roe)"), "With files from ...", "Source: U.S. Department of Justice", "Read more: ..." links, bylines.
# They name the outlet, its staff and its photographers, whom two copies of one story do not share and
# two stories of one outlet do: they are evidence neither of a copy nor of a different story.
_CREDIT_LINE = re.compile(
    r"^\s*(?:(?:file |staff )?(?:photo|image|picture|video|graphic|illustration|foto|imagen|credit|"
    r"cr[ée]dit)s?(?: (?:by|courtesy(?: of)?|credit))?\s*[:/|]\s*.{0,160}|"
    r"(?:photo|image|picture|foto)s? (?:by|courtesy of|cortes[ií]a de)\b.{0,160}|"
    r"(?:courtesy|cortes[ií]a)(?: of| de)?\s*:\s*.{0,120}|"
    r"(?:with (?:files|reporting|additional reporting|information) from|(?:additional )?reporting by|"
    r"writing by|editing by|edited by|compiled by|con informaci[oó]n de|avec (?:l'AFP|des informations de))"
    r"\b.{0,200}|"
    r"(?:source|sources|fuente|fuentes|via|v[ií]a)\s*:\s*.{0,160}|"
    r"(?:read more|related|see also|also read|watch|lea tambi[ée]n|lire aussi)\s*:\s*.{0,200})\s*$",
    re.IGNORECASE,
)
# A picture caption ending in its credit: "... (AP Photo/Jane Roe, File)".
_CAPTION = re.compile(r"\((?:[A-Z][\w.]*\s)?(?:photo|foto)s?\s*/[^)]{0,80}\)\s*$", re.IGNORECASE)
# A byline: "By Jane Roe", "By Staff | November 16, 2025", "Por Ana Lopez y Luis Diaz" (case matters:
# "By contrast, ..." is a sentence).
_BYLINE = re.compile(r"^(?=.{0,80}$)\s*(?:By|BY|Por|POR|Par|PAR)\s+(?!(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|"
                     r"Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
                     r"\.?\s)[A-Z][\w.'-]*(?:\s+(?:[A-Z][\w.'-]*|de|van|von|del|la))*"
                     r"(?:\s*(?:[,|]|and|y|et)\s*.{0,60})?(?<![.!?])\s*$")
# A news agency's credit after a dateline, "MEXICO CITY (AP) - ", "KATHMANDU, April 25 (Reuters) - ",
# or opening a paragraph, "(AP) - ": the agency goes, the dateline stays.
_AGENCY_CREDIT = re.compile(r"^((?:[A-Z][A-Z.'-]+(?:\s+[A-Z][A-Z.'-]+)*(?:,\s*[A-Z][\w.]*(?:\s+\d{1,2})?)?)?)\s*"
                            r"\((?:[A-Z][\w.&'/-]*)(?:\s+[A-Z][\w.&'/-]*){0,3}\)\s*-{1,2}\s*")
def story_paragraphs(text: str) -> list[list[str]]:
    """The story's own sentences, by paragraph: page chrome, trailing related-content blocks and
    DOJ boilerplate sentences removed."""
    return [[unit[0] for unit in paragraph] for paragraph in _story_units(fold_typography(text))]


_Unit = tuple[str, list[str], list[str]]  # a sentence, its words as written, its words in lower case


def _story_units(text: str) -> list[list[_Unit]]:
    """``story_paragraphs`` with each sentence's words (folded text in)."""
    paragraphs: list[list[_Unit]] = []
    for block in re.split(r"\n\s*\n|\n(?=\s*[-*•]\s)", text):
        lines = [" ".join(ln.split()) for ln in block.split("\n") if ln.strip()]
        tail = next((i for i, ln in enumerate(lines) if RELATED_HEADING.match(ln)), None)
        if tail is not None:
            lines = lines[:tail]
        lines = [(_AGENCY_CREDIT.sub(r"\1 - ", ln, count=1) if "(" in ln[:80] else ln).strip(" \t-*•")
                 for ln in lines if not (CHROME_LINE.match(ln) or _is_credit(ln))]
        if lines:
            units = _story_sentences(" ".join(lines))
            if units:
                paragraphs.append(units)
        if tail is not None:
            break
    return paragraphs


def _is_credit(line: str) -> bool:
    """A credit line (``_CREDIT_LINE``, ``_BYLINE``, ``_CAPTION``); the cheap tests first."""
    if len(line) <= 420 and line.endswith(")") and _CAPTION.search(line):
        return True
    if len(line) > 260:
        return False
    return bool(_CREDIT_LINE.match(line) or (line[:1] in "BP" and _BYLINE.match(line)))


def _story_sentences(paragraph: str) -> list[_Unit]:
    """The sentences of a paragraph that are not boilerplate, with their words."""
    units = []
    for sentence in split_sentences(" ".join(paragraph.split())):
        words = WORD.findall(sentence)
        lower = [w.lower() for w in words]
        if not is_boilerplate_words(sentence, lower):
            units.append((sentence, words, lower))
    return units


# An outlet's name around a title: "... | AP News", "... - National | Globalnews.ca", "Border Beat | ...",
# "... * The Gateway Pundit * by Jane Roe". A segment after a spaced separator is the outlet's when it is
# short and reads as a name (every word capitalised, a connector, or a domain) and what remains keeps
# four words; before the title, only after a bar or a guillemet: "Joaquin Guzman Lopez - Son of 'El
# Chapo' - Pleads Guilty" names the defendant first.
_TITLE_SEPARATOR = re.compile(r"\s+(?:[|•·»*/]|-{1,2}|::)\s+|\s*\|\s*")
_PREFIX_SEPARATOR = re.compile(r"\s*(?:[|•»]|::)\s*")
_OUTLET_CONNECTORS = _wordset("the of and de del la el le les des du y et for on by at in online news")
_OUTLET_MAX_WORDS = 5


def _outlet_segment(segment: str) -> bool:
    words = segment.split()
    if not words or len(words) > _OUTLET_MAX_WORDS or len(segment) > 40 or "(" in segment or ")" in segment:
        return False
    if _STAGE_OR_KIND.search(segment):
        return False  # "- Sentenced", "| Extradited": part of the story, not a name
    return all(w[0].isupper() or w[0].isdigit() or "." in w or w.lower() in _OUTLET_CONNECTORS
               for w in words) and any(w[0].isupper() or "." in w for w in words)


def story_title(title: str) -> str:
    """The title without the outlet's name around it (see ``_TITLE_SEPARATOR``)."""
    title = " ".join(fold_typography(title).split())
    separators = list(_TITLE_SEPARATOR.finditer(title))
    start, end = 0, len(title)
    for m in reversed(separators):  # suffixes, the last first
        if not (_outlet_segment(title[m.end():end]) and len(title[start:m.start()].split()) >= 4):
            break
        end = m.start()
    for m in separators:  # then prefixes
        if m.end() > end or not _PREFIX_SEPARATOR.fullmatch(m.group()):
            break
        if not (_outlet_segment(title[start:m.start()]) and len(title[m.end():end].split()) >= 4):
            break
        start = m.end()
    return title[start:end]


def normalize_title(title: str) -> str:
    """Lower case, accents and punctuation dropped, whitespace collapsed: the title key."""
    return " ".join(WORD.findall(strip_accents(fold_typography(title)).lower()))


# ---------------------------------------------------------------------------------------------------
# MinHash signature

def _constants(label: str, count: int) -> npt.NDArray[np.uint64]:
    """``count`` odd 64-bit constants derived from sha256, identical in every process and version."""
    out = np.empty(count, dtype=np.uint64)
    for i in range(count):
        digest = hashlib.sha256(f"borderwatch/{label}/{i}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "little") | 1
    return out


_PERM_A = _constants("minhash-a", NUM_PERM)
_PERM_B = _constants("minhash-b", NUM_PERM)
_SHINGLE_MULT = _constants("shingle", SHINGLE_WORDS)
_FMIX_1 = np.array([0xFF51AFD7ED558CCD], dtype=np.uint64)
_FMIX_2 = np.array([0xC4CEB9FE1A85EC53], dtype=np.uint64)


_TOKEN_HASHES: dict[str, int] = {}


def _token_hash(word: str) -> int:
    """crc32 of a word, remembered: a news vocabulary is small and crc32 costs more than a lookup."""
    h = _TOKEN_HASHES.get(word)
    if h is None:
        if len(_TOKEN_HASHES) > 500_000:  # a bound, for texts full of unique tokens
            _TOKEN_HASHES.clear()
        h = _TOKEN_HASHES[word] = zlib.crc32(word.encode())
    return h


def _shingle_hashes(tokens: tuple[str, ...]) -> npt.NDArray[np.uint64]:
    """Distinct 64-bit hashes of the word shingles of ``tokens`` (one shingle if the text is short)."""
    if not tokens:
        return np.empty(0, dtype=np.uint64)
    t = np.fromiter((_token_hash(w) for w in tokens), dtype=np.uint64, count=len(tokens))
    k = min(SHINGLE_WORDS, len(tokens))
    n = len(tokens) - k + 1
    h = np.zeros(n, dtype=np.uint64)
    for j in range(k):  # arrays only: numpy wraps uint64 overflow silently for arrays, not scalars
        h += t[j : j + n] * _SHINGLE_MULT[j : j + 1]
    h ^= h >> np.uint64(33)  # murmur3 finaliser: spreads the linear combination over all 64 bits
    h *= _FMIX_1
    h ^= h >> np.uint64(33)
    h *= _FMIX_2
    h ^= h >> np.uint64(33)
    return np.unique(h)


def _minhash(hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint32]:
    """Multiply-shift permutations (a*h + b) >> 32, minimum per permutation."""
    if hashes.size == 0:
        return np.full(NUM_PERM, _EMPTY, dtype=np.uint32)
    values = (hashes[:, None] * _PERM_A[None, :] + _PERM_B[None, :]) >> np.uint64(32)
    return np.asarray(values.min(axis=0), dtype=np.uint32)


def fingerprint(title: str, text: str) -> bytes:
    """The MinHash signature of a document, serialised (522 bytes) for a database column.

    Deterministic across processes, machines and datasketch versions: it carries a format version,
    and ``StoryIndex`` recomputes any signature whose format it does not know.
    """
    hashes = _shingle_hashes(_analyse(title, text)[0])
    sig = _minhash(hashes)
    header = _SIG_HEADER.pack(_SIG_MAGIC, _SIG_VERSION, NUM_PERM, int(hashes.size))
    return header + sig.astype("<u4").tobytes()


def _parse_signature(blob: bytes | None) -> tuple[npt.NDArray[np.uint32], int] | None:
    if not blob or len(blob) != _SIG_HEADER.size + 4 * NUM_PERM:
        return None
    magic, version, num_perm, size = _SIG_HEADER.unpack_from(blob)
    if magic != _SIG_MAGIC or version != _SIG_VERSION or num_perm != NUM_PERM:
        return None
    sig = np.frombuffer(blob, dtype="<u4", offset=_SIG_HEADER.size).astype(np.uint32)
    return sig, int(size)


class _Bands:
    """MinHash LSH (banding): ``bands`` tables, each keyed by ``rows`` consecutive values of a signature, so
    two signatures that agree on all rows of any band are candidates. What ``datasketch.MinHashLSH`` does
    with the same bands (its candidates are these); without its import, which loads scipy (~0.9 s of CPU
    and ~40 MB in every process that stores a page)."""

    __slots__ = ("_keys", "_ranges", "_tables")

    def __init__(self, bands: int, rows: int) -> None:
        self._ranges = [(i * rows, (i + 1) * rows) for i in range(bands)]
        self._tables: list[dict[bytes, set[int]]] = [{} for _ in range(bands)]
        self._keys: dict[int, list[bytes]] = {}

    def _band_keys(self, sig: npt.NDArray[np.uint32]) -> list[bytes]:
        return [sig[start:end].tobytes() for start, end in self._ranges]

    def insert(self, item_id: int, sig: npt.NDArray[np.uint32]) -> None:
        keys = self._band_keys(sig)
        self._keys[item_id] = keys
        for table, key in zip(self._tables, keys, strict=True):
            table.setdefault(key, set()).add(item_id)

    def remove(self, item_id: int) -> None:
        for table, key in zip(self._tables, self._keys.pop(item_id, ()), strict=False):
            bucket = table.get(key)
            if bucket is not None:
                bucket.discard(item_id)
                if not bucket:
                    del table[key]

    def query(self, sig: npt.NDArray[np.uint32]) -> set[int]:
        found: set[int] = set()
        for table, key in zip(self._tables, self._band_keys(sig), strict=True):
            bucket = table.get(key)
            if bucket:
                found |= bucket
        return found


# ---------------------------------------------------------------------------------------------------
# Distinctive tokens: names, numbers, the legal event

# Capitalised words that are not names of a story's people, places or firms: function words at the
# start of quotes, titles and ranks, agencies every release names, months, US states and Mexican and
# Canadian place words every release from there shares, topic words every TdA / fentanyl / firearms
# story shares; in English, Spanish and French (accents stripped).
_NOT_NAMES = _wordset("""
a an the and or of in on at to for from by with as but not no nor if this that these those it its
he she they we i you his her their our my your who whom whose which what when where why how all any
each every both some such other another more most many much several few one two three four five six
seven eight nine ten first second third also after before during under over between among according
today yesterday tomorrow however while although because since until unless so then there here
said says told added announced mr ms mrs dr jr sr st no
january february march april may june july august september october november december jan feb mar
apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday
u s us usa america american americans united states state states federal national international
department justice attorney attorneys general office offices district districts court courts judge
judges magistrate chief deputy assistant acting special agent agents charge director division
section unit bureau service services administration agency police sheriff county city task force
forces field investigation investigations homeland security enforcement immigration customs border
protection drug alcohol tobacco firearms explosives marshals marshal fbi dea atf hsi ice cbp usms
irs doj dhs usao opa ocdetf psn jtfv hstf interpol rcmp grc sspc fgr sedena semar cjng ms
criminal civil affairs public safety law government executive order president secretary minister
ministry governor mayor commissioner senator congress senate house representative member members
press release news report reports statement today's
northern southern eastern western central north south east west new york
alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii idaho
illinois indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota
mississippi missouri montana nebraska nevada hampshire jersey carolina dakota ohio oklahoma oregon
pennsylvania rhode island tennessee texas utah vermont virginia washington wisconsin wyoming columbia
puerto rico mexico canada ottawa nueva ciudad mexicana mexicano canadiense
tren aragua tda cartel cartels sinaloa jalisco gang gangs fentanyl fentanilo cocaine cocaina heroin
methamphetamine metanfetamina meth firearm firearms gun guns rifle rifles pistol pistols ammunition
venezuelan venezuela venezolano venezolanos mexican canadian chinese colombian honduran guatemalan
salvadoran dominican cuban
according indictment complaint information count counts case cases charges charged sentence
sentenced plea pleaded guilty trial jury prison months years year
el la los las del de un una y o en por con para su sus que se al lo es fue son como segun hoy
ayer este esta estos estas ese esa dijo senalo informo anuncio agrego secretaria fiscalia gobierno
uno dos tres cuatro cinco seis siete ocho nueve diez veinte deux trois quatre cinq sept huit neuf dix
committee comite commission comision council consejo conseil officials funcionarios representantes distrito
estados unidos departamento justicia fiscal general juez jueza tribunal corte policia guardia nacional
defensa republica ministerio publico gabinete seguridad agencia aduanas marina ejercito operativo
le les des du et ou dans pour avec sur par une au aux ce cette ces selon aujourd hier
etats unis ministere procureur juge gouvernement gendarmerie royale
""")

# A number, with the word that scales it: "$9.4M", "5.3 million", "300 mil", "1,2 millones".
_NUMBER = re.compile(r"(?<![\w.])\$?(\d[\d.,]*\d|\d)(?:\s*((?i:mil millones|millones|millon|million|billion|"
                     r"thousand|mil|bn)|[MBK])\b)?")
_SCALE = {"thousand": 1e3, "mil": 1e3, "k": 1e3, "million": 1e6, "millones": 1e6, "millon": 1e6, "m": 1e6,
          "billion": 1e9, "bn": 1e9, "b": 1e9, "mil millones": 1e9}

# The legal event a title announces. A title often names earlier stages as descriptions ("Convicted Felon
# Sentenced", "acusado del doble homicidio, se declara culpable"): its stage is the latest one named. Two
# titles at different stages of one case are two stories (the arrest, then the indictment eleven days
# later, then a plea); an arrest and a charge are one stage ("arrested and charged").
_STAGES = (
    ("accusation", re.compile(r"\b(?:charg\w*|indict\w*|accus\w*|arrest\w*|complaint|detain\w*|captur\w*|"
                              r"apprehend\w*|acusa\w*|imputa\w*|cargos|detenid\w*|capturad\w*|"
                              r"arret\w*|inculp\w*|mis en examen|interpell\w*)", re.IGNORECASE)),
    ("plea", re.compile(r"\b(?:pleads?|pleaded|pled|admits?|admitted|se declara\w* culpable|"
                        r"plaide\w* coupable)\b", re.IGNORECASE)),
    ("verdict", re.compile(r"\b(?:convicted|convicts|found guilty|verdict|declarad\w+ culpable|"
                           r"reconnu\w* coupable)\b", re.IGNORECASE)),
    ("sentence", re.compile(r"\b(?:sentenc\w*|condenad\w*|sentenciad\w*|condamn\w*|prison term)\b",
                            re.IGNORECASE)),
)
# Other kinds of event; titles naming kinds but no common one are two stories.
_KINDS = (
    ("transfer", re.compile(r"\b(?:extradit\w*|extrad\w*|deport\w*|expel\w*|expuls\w*|removed|"
                            r"entreg\w*|transferred|surrender\w*)\b", re.IGNORECASE)),
    ("accord", re.compile(r"\b(?:agreements?|memorand\w*|mou|sign(?:s|ed|ing)?|accords?|acuerd\w*|firma\w*|"
                          r"protocole|partnership|declaration|entente|dialogue|committee|comite|meet\w*|"
                          r"reunion)\b", re.IGNORECASE)),
    ("settlement", re.compile(r"\b(?:settle\w*|agrees? to pay|to pay|resolve\w*)\b", re.IGNORECASE)),
)


def _events(title: str) -> frozenset[str]:
    """The title's latest legal stage, if any, and its other kinds of event."""
    stages = [stage for stage, rx in _STAGES if rx.search(title)]
    return frozenset(stages[-1:] + [kind for kind, rx in _KINDS if rx.search(title)])


_STAGE_NAMES = frozenset(stage for stage, _ in _STAGES)
_STAGE_OR_KIND = re.compile("|".join(rx.pattern for _, rx in _STAGES + _KINDS), re.IGNORECASE)


_LANG_WORDS = {
    "en": _wordset("the and of to in was were is said for with that on by"),
    "es": _wordset("el la los las del de y en que por con fue se para su al"),
    "fr": _wordset("le la les des du et en que pour avec est a ete sur par au"),
}


def _language(tokens: list[str]) -> str:
    sample = tokens[:400]
    scores = {lang: sum(1 for t in sample if t in words) for lang, words in _LANG_WORDS.items()}
    # "de", "la", "en" are in several lists; a tie goes to English.
    return max(scores, key=lambda lang: (scores[lang], lang == "en"))


def _normal_number(m: re.Match[str], keep_small: bool = False) -> str | None:
    digits, scale = m.group(1), m.group(2)
    # Thousands separators (groups of three after ',' or '.') go; what remains is a decimal mark.
    s = re.sub(r"[.,](?=\d{3}(?:\D|$))", "", digits).replace(",", ".")
    try:
        value = float(s)
    except ValueError:
        return None
    if scale:
        value *= _SCALE[scale.lower()]
    elif 1900 <= value <= 2099 and value == int(value) and not m.group().startswith("$"):
        return None  # a year places a story in time; it does not tell two stories apart
    if value < 10 and value == int(value) and not keep_small:
        return None  # in a body, counts of one to nine are spelled out as often as not
    return f"{value:g}"


def _numbers(text: str, keep_small: bool = False) -> frozenset[str]:
    found = (_normal_number(m, keep_small) for m in _NUMBER.finditer(text))
    return frozenset(n for n in found if n)


@dataclass(frozen=True, slots=True)
class _Features:
    """What the strict check compares, computed once per document."""

    names: frozenset[str]  # rare capitalised words of the story's sentences
    principal: frozenset[str]  # the (up to three) most mentioned of them: whom the story is about
    numbers: frozenset[str]  # ages, amounts, counts, terms (>= 10, no years)
    title_numbers: frozenset[str]  # every number of the title ("9 Years" vs "12 Years")
    events: frozenset[str]  # the legal stage and kinds of event the title announces
    language: str


StoryFeatures = _Features


def story_features(title: str, text: str) -> StoryFeatures:
    """The distinctive features of a document (names, numbers, events, language), to compute once
    where the text is (an extraction worker) and keep with the item."""
    return _analyse(title, text)[1]


def features_to_json(f: StoryFeatures) -> dict[str, Any]:
    return {
        "names": sorted(f.names), "principal": sorted(f.principal), "numbers": sorted(f.numbers),
        "title_numbers": sorted(f.title_numbers), "events": sorted(f.events), "language": f.language,
    }


def features_from_json(data: Any) -> StoryFeatures | None:
    """Features stored by ``features_to_json``; None when absent or unreadable (they are recomputed)."""
    if not isinstance(data, dict):
        return None
    try:
        return _Features(
            names=frozenset(data["names"]), principal=frozenset(data["principal"]),
            numbers=frozenset(data["numbers"]), title_numbers=frozenset(data["title_numbers"]),
            events=frozenset(data["events"]), language=str(data["language"]),
        )
    except (KeyError, TypeError):
        return None


@functools.lru_cache(maxsize=64)  # fingerprint() then match() then add() analyse the same text
def _analyse(title: str, text: str) -> tuple[tuple[str, ...], _Features]:
    """The words to shingle (title and story sentences) and the distinctive features of a document."""
    title = strip_accents(story_title(title))
    words = WORD.findall(title.lower())
    body_words = 0
    counts: Counter[str] = Counter()
    numbers: set[str] = set()
    for paragraph in _story_units(strip_accents(fold_typography(text))):
        for sentence, cased, tokens in paragraph:
            # The first word of a sentence is capitalised whatever it is (a name recurs elsewhere);
            # so is the first word after a dateline ("PHOENIX, Ariz. - Officials said...").
            dateline = _DATELINE.match(sentence)
            skip = len(WORD.findall(sentence, 0, dateline.end())) if dateline else 0
            names = [tokens[i] for i, w in enumerate(cased) if i != skip and w[0].isupper()]
            if len(tokens) >= 4 and len(names) >= 0.7 * len(tokens):
                names = []  # a heading or a menu in Title Case: every word looks like a name
            for name in names:
                name = _EXONYMS.get(name, name)
                if len(name) >= 3 and name not in _NOT_NAMES:
                    counts[name] += 1
            if _DIGIT.search(sentence):
                numbers.update(_numbers(sentence))
            body_words += len(tokens)
            words.extend(tokens)
    if not body_words:  # a title alone: its capitalisation says nothing, its numbers still count
        numbers.update(_numbers(title))
    for token in set(words[: len(WORD.findall(title))]):  # a name in the title and the text is central
        if token in counts:
            counts[token] += 1
    top = counts.most_common(3)
    principal = frozenset(name for name, c in top if c >= 2 and c >= top[0][1] / 2) if top else frozenset()
    features = _Features(
        names=frozenset(sys.intern(name) for name in counts),  # one copy of "jimenez" for all items
        principal=principal,
        numbers=frozenset(numbers),
        title_numbers=_numbers(title, keep_small=True),
        events=_events(title),
        language=_language(words),
    )
    return tuple(words), features


# Places whose Spanish or French name differs from the English one, so that a report in another
# language names the same places (accents already stripped).
_EXONYMS = {
    "chili": "chile", "mexique": "mexico", "colombie": "colombia", "perou": "peru", "equateur": "ecuador",
    "bresil": "brazil", "brasil": "brazil", "espagne": "spain", "espana": "spain", "bolivie": "bolivia",
    "argentine": "argentina", "chine": "china", "turquie": "turkey", "turquia": "turkey",
    "venezuelien": "venezuelan", "venezueliens": "venezuelan",
}
_DIGIT = re.compile(r"\d")
_DATELINE = re.compile(r"^.{2,40}?(?:\s-{1,2}\s*|\.-\s*)")


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / min(|a|, |b|); 1.0 when either is empty (no evidence either way)."""
    if not a or not b:
        return 1.0
    return len(a & b) / min(len(a), len(b))


# ---------------------------------------------------------------------------------------------------
# Keys

_RELEASE = re.compile(r"^\s*(\d{2})\s*-\s*(\d{1,5})\s*$")
_DOJ_OFFICE = re.compile(r"^https?://(?:www\.)?justice\.gov/([a-z0-9-]+)/", re.IGNORECASE)


def _release_key(doc: StoryDoc) -> str | None:
    """``opa:26-149``: DOJ numbers are per office (OPA's 26-149 is not usao-sdny's 26-149)."""
    if not doc.release_number:
        return None
    m = _RELEASE.match(doc.release_number)
    if not m:
        return None  # "2", "None", "" and other values the API gives for releases with no number
    office = _DOJ_OFFICE.match(doc.url)
    return f"{office.group(1).lower() if office else ''}:{m.group(1)}-{int(m.group(2))}"


def _url_key(url: str) -> str:
    return re.sub(r"^https?://(?:www\.)?", "", url.strip()).rstrip("/").lower()


def _title_key(title: str) -> str:
    """The normalised title, if it is specific enough to name one story, else ""."""
    key = normalize_title(story_title(title))
    words = key.split()
    if _RECURRING_TITLE.search(key):
        return ""
    if len(words) >= _SPECIFIC_TITLE_WORDS or (
            len(words) >= _MIN_TITLE_WORDS and any(w[0].isdigit() for w in words)):
        return key
    return ""


def _day(published: datetime | None) -> datetime | None:
    if published is None:
        return None
    return published.replace(tzinfo=UTC) if published.tzinfo is None else published.astimezone(UTC)


# A short title without a number names a kind of item, not one story: "Assistant United States Attorney
# (Civil)" is a job ad posted by every district, "Illegal Alien Pleads Guilty To Unlawful Reentry" is one
# office's title for each of its reentry pleas. A title keys a story only if it has a number and six
# words, or nine words.
_MIN_TITLE_WORDS = 6
_SPECIFIC_TITLE_WORDS = 9
# Titles every district posts on the same day: events, job ads, weekly round-ups.
_RECURRING_TITLE = re.compile(r"\b(?:national night out|assistant united states attorney|law student "
                              r"volunteer|this week|weekly|data due|holiday|job fair|internship)\b")


# ---------------------------------------------------------------------------------------------------
# The index

@dataclass(slots=True)
class _Entry:
    item_id: int
    story_id: int
    sig: npt.NDArray[np.uint32]
    size: int
    published: datetime | None
    title: str
    title_key: str
    title_words: frozenset[str]  # the title's words, normalised (a name there is what the story is about)
    url_key: str
    release_key: str | None
    features: _Features


@dataclass(frozen=True, slots=True)
class _Verdict:
    same: bool
    similarity: float
    reason: str
    rank: int  # keys outrank text evidence


class StoryIndex:
    """Items already stored, by story; ``match`` finds the story of a new item.

    ``threshold`` is the estimated Jaccard similarity of the shingle sets (boilerplate removed) at
    which two texts are near-duplicates. Weaker text similarity can still match when the entities
    and dates agree (see the module docstring).
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold!r}")
        self.threshold = threshold
        self._lsh = _Bands(*_lsh_bands(threshold))
        self._entries: dict[int, _Entry] = {}
        self._by_url: dict[str, set[int]] = {}
        self._by_release: dict[str, set[int]] = {}
        self._by_title: dict[str, set[int]] = {}
        self._by_name: dict[str, list[int]] = {}  # lists: most names have one item, a set costs 216 bytes
        self._last: tuple[StoryDoc, bytes | None, _Entry] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._entries

    # -- building -----------------------------------------------------------------------------------

    def add(self, doc: StoryDoc, story_id: int, signature: bytes | None = None) -> None:
        """Index a stored item. Adding an item id again (a revision) replaces its old entry."""
        if doc.item_id in self._entries:
            self.remove(doc.item_id)
        entry = self._entry(doc, story_id, signature)
        self._entries[doc.item_id] = entry
        self._lsh.insert(doc.item_id, entry.sig)
        if entry.url_key:
            _post(self._by_url, entry.url_key, doc.item_id)
        if entry.release_key:
            _post(self._by_release, entry.release_key, doc.item_id)
        if entry.title_key:
            _post(self._by_title, entry.title_key, doc.item_id)
        for name in entry.features.names:
            self._by_name.setdefault(name, []).append(doc.item_id)

    def remove(self, item_id: int) -> None:
        """Forget an item (no error if it is not indexed)."""
        entry = self._entries.pop(item_id, None)
        if entry is None:
            return
        self._lsh.remove(item_id)
        if entry.url_key:
            _unpost(self._by_url, entry.url_key, item_id)
        if entry.release_key:
            _unpost(self._by_release, entry.release_key, item_id)
        if entry.title_key:
            _unpost(self._by_title, entry.title_key, item_id)
        for name in entry.features.names:
            items = self._by_name.get(name)
            if items is not None:
                items.remove(item_id)
                if not items:
                    del self._by_name[name]

    # -- matching -----------------------------------------------------------------------------------

    def match(self, doc: StoryDoc, signature: bytes | None = None) -> StoryMatch | None:
        """The existing story ``doc`` is a copy of, or None for a new story.

        The item itself (same item id) is never its own match.
        """
        new = self._entry(doc, story_id=-1, signature=signature)
        candidates: set[int] = set()
        if new.url_key:
            candidates |= self._by_url.get(new.url_key, set())
        if new.release_key:
            candidates |= self._by_release.get(new.release_key, set())
        if new.title_key:
            candidates |= self._by_title.get(new.title_key, set())
        if new.size:
            candidates |= self._lsh.query(new.sig)
        candidates |= self._name_candidates(new.features.names)
        candidates.discard(doc.item_id)

        best: tuple[_Verdict, _Entry] | None = None
        for item_id in candidates:
            old = self._entries[item_id]
            verdict = _judge(new, old, self.threshold)
            if verdict.same and (best is None or (verdict.rank, verdict.similarity, -item_id)
                                 > (best[0].rank, best[0].similarity, -best[1].item_id)):
                best = (verdict, old)
        if best is None:
            return None
        verdict, old = best
        return StoryMatch(old.story_id, old.item_id, round(verdict.similarity, 3), verdict.reason)

    def _name_candidates(self, names: Iterable[str]) -> set[int]:
        """Items sharing at least two rare names with a new document, those sharing most first."""
        shared: Counter[int] = Counter()
        for name in names:
            posting = self._by_name.get(name)
            if posting and len(posting) <= MAX_NAME_POSTINGS:
                shared.update(posting)
        return {item for item, n in shared.most_common(MAX_NAME_CANDIDATES) if n >= 2}

    def _entry(self, doc: StoryDoc, story_id: int, signature: bytes | None) -> _Entry:
        last = self._last
        if last is not None and last[0] == doc and last[1] == signature:
            entry = last[2]  # match() then add() of one document: analyse it once
        else:
            parsed = _parse_signature(signature)
            if parsed is not None and doc.features is not None:
                features = doc.features  # computed where the text was; the words are not needed
            else:
                words, features = _analyse(doc.title, doc.text)
            if parsed is None:  # none given, or a format this version does not read: recompute
                hashes = _shingle_hashes(words)
                parsed = (_minhash(hashes), int(hashes.size))
            entry = _Entry(
                item_id=doc.item_id,
                story_id=story_id,
                sig=parsed[0],
                size=parsed[1],
                published=_day(doc.published),
                title=story_title(doc.title),
                title_key=_title_key(doc.title),
                title_words=frozenset(normalize_title(story_title(doc.title)).split()),
                url_key=_url_key(doc.url),
                release_key=_release_key(doc),
                features=features,
            )
            self._last = (doc, signature, entry)
        return replace(entry, story_id=story_id) if entry.story_id != story_id else entry


def _lsh_bands(threshold: float) -> tuple[int, int]:
    """(bands, rows) for the LSH index: as few bands as give LSH_RECALL at the threshold.

    Memory grows with the number of bands (a set per bucket: about 300 bytes per item and band), so this
    is not datasketch's default, which also minimises false candidates (cheap to
    check here) and for threshold 0.5 and 128 permutations takes 25 bands of 5 rows yet offers only 55%
    of the pairs at the threshold. 18 bands of 3 rows offer 91% (99.8% at Jaccard 0.7); rewrites, far
    below the threshold, come from the name index instead.
    """
    bands = math.ceil(math.log(1 - LSH_RECALL) / math.log(1 - threshold**LSH_ROWS)) if threshold < 1 else 1
    return max(1, min(bands, NUM_PERM // LSH_ROWS)), LSH_ROWS


def _post(index: dict[str, set[int]], key: str, item_id: int) -> None:
    index.setdefault(key, set()).add(item_id)


def _unpost(index: dict[str, set[int]], key: str, item_id: int) -> None:
    posting = index.get(key)
    if posting is not None:
        posting.discard(item_id)
        if not posting:
            del index[key]


# ---------------------------------------------------------------------------------------------------
# The strict check

# Calibrated together on tests/fixtures/stories/pairs.jsonl (bench/stories.py); move one and the
# others may need to move too.
MIN_SHINGLES = 20  # below this (a title and half a sentence) text is no evidence at all
SHORT_TEXT = 60  # below this (a title and two sentences, e.g. a feed opening) one office's template
#                  reaches Jaccard 0.8 between two different defendants: short texts need more
SHORT_NEAR_DUPLICATE = 0.85  # Jaccard at which two short texts are copies on their own
SHORT_TITLED = 0.4  # Jaccard enough for two short texts with near-identical titles on the same day
SIMILAR_TITLES = 0.5  # word-set Jaccard of "Florida Man Pleads..." vs "Miami-Dade Man Pleads..."
CONTAINMENT_COPY = 0.6  # share of the shorter text's shingles found in the longer: a copy with chrome
NAME_AGREEMENT = 0.6  # overlap of rare names needed by anything below identical text
NAME_CONFLICT = 0.5  # below this the texts are about different people, however alike the wording
REWRITE_CONTAINMENT = 0.1  # a rewrite keeps quotes and key phrases: some shingles must survive
REWRITE_NAMES = 0.7  # ... and it is judged on entities more than on wording
ENTITY_NAMES = 0.75  # a translation, or a rewrite sharing no wording, is judged on entities alone:
ENTITY_SHARED = 5  # ... this many shared names and numbers, at least two of them names
REWRITE_NUMBERS = 0.5  # ages, amounts, counts, prison terms must mostly agree
SHORT_COPY_RATIO = 2  # a text half the length of the other or less: a paragraph of it, perhaps
SHORT_COPY_NAMES = 3  # a short copy names this many people or places, all but one of them shared


def jaccard(a: npt.NDArray[np.uint32], b: npt.NDArray[np.uint32]) -> float:
    """MinHash estimate of the Jaccard similarity of two signatures."""
    return float(np.count_nonzero(a == b)) / len(a)


def _title_similarity(a: str, b: str) -> float:
    wa, wb = set(normalize_title(a).split()), set(normalize_title(b).split())
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


_NO = _Verdict(False, 0.0, "", 0)


def _judge(new: _Entry, old: _Entry, threshold: float = DEFAULT_THRESHOLD) -> _Verdict:
    """Are two indexed documents copies of one story? The stricter check behind ``match``."""
    # 1. Strong keys.
    if new.release_key and new.release_key == old.release_key:
        return _Verdict(True, 1.0, f"release number {new.release_key.split(':', 1)[1]}", 3)
    if new.url_key and new.url_key == old.url_key:
        return _Verdict(True, 1.0, "same canonical url", 3)
    if new.release_key and old.release_key and new.release_key.split(":")[0] == old.release_key.split(":")[0]:
        return _NO  # one office gave them two numbers: two releases

    # 2. Vetoes: what two copies of one story never disagree on.
    gap = abs(new.published - old.published) if new.published and old.published else None
    if gap is not None and gap > COPY_WINDOW:
        return _NO
    fa, fb = new.features, old.features
    stage_a, stage_b = fa.events & _STAGE_NAMES, fb.events & _STAGE_NAMES
    kinds_a, kinds_b = fa.events - _STAGE_NAMES, fb.events - _STAGE_NAMES
    if (stage_a and stage_b and stage_a != stage_b) or (kinds_a and kinds_b and not kinds_a & kinds_b):
        return _NO  # "charged" vs "pleads guilty": two events of one case are two stories
    if (fa.title_numbers and fb.title_numbers and not fa.title_numbers & (fb.title_numbers | fb.numbers)
            and not fb.title_numbers & (fa.title_numbers | fa.numbers)):
        return _NO  # "Sentenced to 9 Years" vs "to 12 Years"; "Filed 115 Cases" vs "107 Cases"
    few_names = min(len(fa.names), len(fb.names)) < 3
    # A short copy (a paragraph of the release) may leave out some of the people the release is about,
    # not all of them: whom the short one is about must be in the long one, and one of whom the long one
    # is about in the short one.
    # (A name in the long one's title counts as present: "Former NFL Player ... Indicted" over a body
    # that says "National Football League".)
    (short, _), (long_, long_entry) = sorted(((fa, new), (fb, old)), key=lambda e: e[1].size)
    lopsided = min(new.size, old.size) * SHORT_COPY_RATIO <= max(new.size, old.size)
    if not few_names and not (
            (fa.principal <= fb.names and fb.principal <= fa.names)
            or (lopsided and short.principal <= long_.names | long_entry.title_words
                and (not long_.principal or bool(long_.principal & short.names)))):
        return _NO  # whom one is mainly about is absent from the other: the next defendant's plea
    names = _overlap(fa.names, fb.names)
    if not few_names and names < NAME_CONFLICT:
        return _NO

    # 3. Same specific title the same day.
    same_day = new.published is not None and old.published is not None and (
        new.published.date() == old.published.date())
    if new.title_key and new.title_key == old.title_key and same_day:
        return _Verdict(True, 1.0, "same title and date", 2)

    # 4. Text: near-duplicate, or one contained in the other.
    names_agree = few_names or names >= NAME_AGREEMENT
    small = min(new.size, old.size)
    if small < MIN_SHINGLES or not names_agree:
        return _NO
    j = jaccard(new.sig, old.sig)
    containment = min(1.0, j * (new.size + old.size) / (1.0 + j) / small)
    numbers = _overlap(fa.numbers, fb.numbers)
    if small < SHORT_TEXT:
        if j >= max(threshold, SHORT_NEAR_DUPLICATE):
            return _Verdict(True, j, f"near-duplicate text ({j:.2f})", 1)
        # A day's slack: USAO copies of an OPA release are often posted the next morning.
        if (gap is not None and gap <= timedelta(days=1) and j >= SHORT_TITLED
                and _title_similarity(new.title, old.title) >= SIMILAR_TITLES
                and not _RECURRING_TITLE.search(normalize_title(new.title))):
            return _Verdict(True, j, f"similar title and opening within a day ({j:.2f})", 1)
        # A short reprint (a lead and one paragraph of a release at least twice its length) that names
        # the story's people is judged as a longer text is. Two short texts, or one without names, are
        # not: one office's template opening is shared by its releases about other defendants.
        if not (lopsided and len(short.names) >= SHORT_COPY_NAMES
                and len(fa.names & fb.names) >= SHORT_COPY_NAMES - 1):
            return _NO
    if j >= threshold:
        return _Verdict(True, j, f"near-duplicate text ({j:.2f})", 1)
    if containment >= CONTAINMENT_COPY and numbers >= REWRITE_NUMBERS:
        return _Verdict(True, containment, f"contained text ({containment:.2f} of the shorter)", 1)

    # 5. Weak text evidence: entities and a tight date window must carry the decision.
    if gap is None or gap > REWRITE_WINDOW or numbers < REWRITE_NUMBERS:
        return _NO
    shared_names = len(fa.names & fb.names)
    shared_numbers = len(fa.numbers & fb.numbers)
    if shared_names < 2 or (min(len(fa.numbers), len(fb.numbers)) >= 2 and shared_numbers < 2):
        return _NO
    # A rewrite is about someone (a name mentioned twice; the vetoes made sure the other names them).
    if (fa.language == fb.language and (fa.principal or fb.principal) and containment >= REWRITE_CONTAINMENT
            and names >= REWRITE_NAMES):
        return _Verdict(True, containment, f"rewrite: shared names ({names:.2f}), numbers and wording "
                        f"({containment:.2f})", 1)
    if names >= ENTITY_NAMES and shared_names >= 2 and shared_names + shared_numbers >= ENTITY_SHARED:
        where = fa.language if fa.language == fb.language else f"{fa.language} and {fb.language}"
        return _Verdict(True, names / 2, f"same facts ({where}): {shared_names} names and "
                        f"{shared_numbers} numbers shared", 1)
    return _NO

