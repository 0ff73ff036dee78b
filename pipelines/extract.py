"""The extract stage: HTML in, article text and page metadata out.

``extract(html, url, content=None)`` is pure and runs in worker processes (``pipelines.worker``):
text extraction is CPU work and must never run on the reactor thread. Where a site's main-content element
is known (justice.gov: ``div.field_body``) only that element reaches trafilatura, so navigation,
"Related Content" and sidebars never become article text; the rules are in ``pipelines.siterules``.
``binary_body`` tells a file served as
``text/html`` (gzip bytes, a PDF, an image) from a page before anything tries to read it as one.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import lxml.html
from lxml import etree

from pipelines.language import primary_tag
from pipelines.learn import AGREEMENT, MIN_TEXT, LearnReport, agreement, container_path, css
from pipelines.siterules import SiteRule, drop_junk, drop_lines, rule_for


@dataclass(frozen=True)
class Document:
    text: str
    title: str | None = None
    published: datetime | None = None
    author: str | None = None
    site_name: str | None = None  # og:site_name, else application-name
    language: str | None = None
    topics: tuple[str, ...] = field(default_factory=tuple)
    components: tuple[str, ...] = field(default_factory=tuple)
    targeted: bool = False  # the text came from a known main-content element
    canonical: str | None = None  # the page's own ``<link rel="canonical">`` href, as written
    learn: LearnReport | None = None  # what the page taught the learned-targeting rules (pipelines.learn)


_WS = re.compile(r"[ \t\u00a0\u2009\u202f]+")
_BLANKS = re.compile(r"\n{2,}")


def _clean_text(text: str) -> str:
    lines = (_WS.sub(" ", line).strip() for line in text.splitlines())
    return _BLANKS.sub("\n", "\n".join(line for line in lines if line)).strip()


def _first_text(tree: Any, selector: str | None) -> str | None:
    if not selector:
        return None
    for el in css(selector)(tree):
        text = _WS.sub(" ", el.text_content()).strip()
        if text:
            return text
    return None


def _all_texts(tree: Any, selector: str | None) -> tuple[str, ...]:
    if not selector:
        return ()
    return tuple(t for el in css(selector)(tree) if (t := _WS.sub(" ", el.text_content()).strip()))


def parse_datetime(value: str | None) -> datetime | None:
    """ISO 8601 (``Z`` or offset, date only) → aware UTC datetime; None when unreadable."""
    if not value:
        return None
    s = value.strip()
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            dt = parsedate_to_datetime(s)
        except (TypeError, ValueError, IndexError):
            return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


_MONTHS = {m: i for i, m in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), 1)}
_WORDY_DATE = re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+(\d{1,2}),\s+(\d{4})\b", re.IGNORECASE)


def _date_in_words(text: str) -> datetime | None:
    """``Release Date: May 2, 2026`` → 2026-05-02 00:00 UTC."""
    m = _WORDY_DATE.search(text)
    if not m:
        return None
    try:
        return datetime(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)), tzinfo=UTC)
    except ValueError:
        return None


_META_DATE = (
    "meta[property='article:published_time']",
    "meta[name='article:published_time']",
    "meta[name='dcterms.date']",
    "meta[name='DC.date.issued']",
    "meta[name='date']",
    "meta[itemprop='datePublished']",
)


def _page_date(tree: Any, rule: SiteRule | None) -> datetime | None:
    if rule and rule.date:
        for el in css(rule.date)(tree):
            dt = parse_datetime(el.get("datetime") or el.get("content"))
            if dt:
                return dt
    if rule and rule.date_text:
        for el in css(rule.date_text)(tree):
            parent = el.getparent()
            dt = _date_in_words(_WS.sub(" ", (parent if parent is not None else el).text_content()))
            if dt:
                return dt
    for sel in _META_DATE:
        for el in css(sel)(tree):
            dt = parse_datetime(el.get("content"))
            if dt:
                return dt
    ld = _json_ld_date(tree)
    if ld:
        return ld
    for el in css("article time[datetime], main time[datetime], time[datetime]")(tree)[:1]:
        return parse_datetime(el.get("datetime"))
    return None


_LD_DATE = re.compile(r'"datePublished"\s*:\s*"([^"]{8,40})"')
_ARTICLE_TYPES = ("Article", "BlogPosting", "Report")  # NewsArticle, ReportageNewsArticle, … end with these


def _ld_objects(value: Any) -> Any:
    """Every JSON object in a JSON-LD document (lists and ``@graph`` included), depth first."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            if isinstance(v, dict | list):
                yield from _ld_objects(v)
    elif isinstance(value, list):
        for v in value:
            yield from _ld_objects(v)


def _json_ld_date(tree: Any) -> datetime | None:
    """``datePublished`` of the page's schema.org article in its JSON-LD (Global News, National Post, Fox
    News, Le Monde give their date only there). The article's object is preferred to the images and
    videos around it (CBC lists their dates first); JSON-LD that is not valid JSON (common) is searched
    with a pattern."""
    first: datetime | None = None
    for el in tree.iter("script"):
        if (el.get("type") or "").lower() != "application/ld+json":
            continue
        raw = el.text or ""
        try:
            data = json.loads(raw)
        except ValueError:
            m = _LD_DATE.search(raw)
            first = first or (parse_datetime(m.group(1)) if m else None)
            continue
        for obj in _ld_objects(data):
            value = obj.get("datePublished")
            if not isinstance(value, str):
                continue
            kinds = obj.get("@type")
            kinds = kinds if isinstance(kinds, list) else [kinds]
            dt = parse_datetime(value)
            if dt and any(isinstance(k, str) and k.endswith(_ARTICLE_TYPES) for k in kinds):
                return dt
            first = first or dt
    return first


def _page_title(tree: Any, rule: SiteRule | None) -> str | None:
    if rule and rule.title and rule.title.startswith("meta["):
        for el in css(rule.title)(tree):
            if (content := _WS.sub(" ", el.get("content") or "").strip()):
                return content
    elif rule:
        title = _first_text(tree, rule.title)
        if title:
            return title
    # The headline as printed before og:title, which often carries the site's name ("… | CBC News") or a
    # social-media variant: on the corpus's 258 news pages the headline-first order matches the expected
    # title on 194, og:title-first on 177.
    headline = _first_text(tree, "article h1, main h1") or _first_text(tree, "h1")
    if headline:
        return headline
    for el in css("meta[property='og:title']")(tree):
        if (content := (el.get("content") or "").strip()):
            return content
    return _first_text(tree, "title")


def _page_author(tree: Any) -> str | None:
    for el in css("meta[name='author'], meta[property='article:author']")(tree):
        if (content := (el.get("content") or "").strip()) and "://" not in content:
            return content
    return None


def _page_canonical(tree: Any) -> str | None:
    """The href of the page's ``<link rel="canonical">`` (rel is a space-separated, case-blind list)."""
    for el in tree.iter("link"):
        rel = (el.get("rel") or "").lower().split()
        if "canonical" in rel and (href := (el.get("href") or "").strip()):
            return str(href)
    return None


def page_language(tree: Any) -> str | None:
    """The language the page declares (``<html lang>``, ``xml:lang``, Content-Language, ``og:locale``), as
    a primary tag (``en-US`` → ``en``); None when it declares none."""
    candidates = [tree.get("lang"), tree.get("xml:lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang")]
    candidates += [el.get("content") for el in css("meta[http-equiv]")(tree)
                   if (el.get("http-equiv") or "").lower() == "content-language"]
    candidates += [el.get("content") for el in css("meta[property='og:locale']")(tree)]
    for value in candidates:
        tag = primary_tag(value)
        if tag:
            return tag
    return None


class PageTooComplex(ValueError):
    """A page past what the HTML parser reads (libxml2's limits: nesting deeper than 256 elements, a text node
    over 10 MB), of which no text could be extracted. Another try would read it no better."""


def _parse(html: str | bytes) -> Any:
    return _parse_within_limits(html)[0]


def _parse_within_limits(html: str | bytes) -> tuple[Any, str | None]:
    """The page's tree, and the resource limit of the parser it ran into, if any (the parser leaves out
    what lies past it)."""
    parser = lxml.html.HTMLParser()
    try:
        tree = lxml.html.fromstring(html, parser=parser)
    except (etree.ParserError, ValueError):
        # lxml refuses str input with an encoding declaration, and empty documents
        if not isinstance(html, str):
            raise
        tree = lxml.html.fromstring(html.encode("utf-8", "replace"), parser=parser)
    limits = [e.message.strip() for e in parser.error_log if e.type_name == "ERR_RESOURCE_LIMIT"]
    # Empty HTML comments go, the text after them stays: trafilatura drops a comment with its tail, and React's
    # server rendering puts an empty comment between two runs of text ("from the pandemic<!-- -->, but the
    # effects…"), so the rest of such a paragraph was lost (AP News, BBC). Comments with text are left alone.
    for comment in [c for c in tree.iter(etree.Comment) if not (c.text or "").strip()]:
        _unwrap(comment)
    return tree, limits[0] if limits else None


def _readable(doc: Document, limit: str | None) -> Document:
    """``doc``, unless the parser's limits left it without text: then the page is too complex to extract."""
    if limit and not doc.text.strip():
        raise PageTooComplex(f"past the HTML parser's limits ({limit})")
    return doc


def _unwrap(node: Any) -> None:
    """Remove one node of the tree, keeping the text after it."""
    parent, tail = node.getparent(), node.tail or ""
    if parent is None:
        return
    previous = node.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(node)


SITE_NAME_MAX = 200  # the column's size; a longer "name" is not a name


def _page_site_name(tree: Any) -> str | None:
    for selector in ("meta[property='og:site_name']", "meta[name='application-name']"):
        for el in css(selector)(tree):
            name = _WS.sub(" ", el.get("content") or "").strip()
            if name and len(name) <= SITE_NAME_MAX:
                return name
    return None


def _full_text(tree: Any, url: str) -> str:
    import trafilatura

    # deduplicate=False: trafilatura's process-global LRU cache would drop a page seen twice
    # (a revisit, a reprint) — exactly the pages change and story detection need.
    return _clean_text(trafilatura.extract(
        tree, url=url, deduplicate=False, include_comments=False, include_tables=True) or "")


def _element_text(el: Any, url: str) -> str:
    """trafilatura's text of one element of the page, handed over as a page of its own (no reparse)."""
    import trafilatura

    page = lxml.html.Element("html")
    body = etree.SubElement(page, "body")
    body.append(copy.deepcopy(el))
    return _clean_text(trafilatura.extract(
        page, url=url, deduplicate=False, include_comments=False, include_tables=True) or "")


def _learned_text(
    tree: Any, url: str, learned: tuple[str, ...], verify: bool, learn: bool,
) -> tuple[str, LearnReport]:
    """The article text through the first learned selector that names one element of this page, verified
    against the whole page's when asked or when it looks wrong; else the whole page's, with the container
    it was found in (to learn from)."""
    for selector in learned:
        try:
            found = css(selector)(tree)
        except Exception:
            continue
        if len(found) != 1:
            continue
        text = _element_text(found[0], url)
        own = len(_WS.sub("", found[0].text_content()))
        # Empty, short, or a small part of its element's text: the element may not be the article any more.
        suspect = len(text) < MIN_TEXT or len(_WS.sub("", text)) < 0.25 * own
        if not (verify or suspect):
            return text, LearnReport(used=selector)
        full = _full_text(tree, url)
        score = agreement(text, full)
        if score >= AGREEMENT:
            return text, LearnReport(used=selector, verified=True, score=round(score, 3))
        # The whole page's text wins (no article loses text), and the rule is dropped and learned again.
        return full, LearnReport(used=selector, verified=False, score=round(score, 3),
                                 candidate=_candidate(tree, url, full))
    full = _full_text(tree, url)
    return full, LearnReport(candidate=_candidate(tree, url, full) if learn else None)


def _candidate(tree: Any, url: str, full: str) -> str | None:
    """The container of the page's text, if trafilatura given only that element finds the same text."""
    selector = container_path(tree, full) if full else None
    if selector is None:
        return None
    return selector if agreement(_element_text(css(selector)(tree)[0], url), full) >= AGREEMENT else None


def extract(
    html: str, url: str, content: str | None = None, learned: tuple[str, ...] = (), verify: bool = False,
    learn: bool = False,
) -> Document:
    """Article text and metadata of one page.

    ``content`` is a CSS selector of the main element (a source's ``content`` setting); it wins over
    the built-in site rules, which win over ``learned`` selectors (``pipelines.learn``: tried in order, the
    first naming one element is used; ``verify`` extracts the whole page too and compares; ``learn`` looks
    for the container of a page no learned selector fits). Without any,
    trafilatura finds the main text on its own. The page is parsed once: metadata and text come from the
    same tree.
    """
    import trafilatura

    if not html or not html.strip():
        return Document(text="")
    try:
        tree, limit = _parse_within_limits(html)
    except (etree.ParserError, ValueError):
        return Document(text="")
    rule = rule_for(url, tree)
    title = _page_title(tree, rule)
    published = _page_date(tree, rule)
    author = _page_author(tree)
    language = page_language(tree)
    topics = _all_texts(tree, rule.topics) if rule else ()
    components = _all_texts(tree, rule.components) if rule else ()
    site_name, canonical = _page_site_name(tree), _page_canonical(tree)

    selector = content or (rule.content if rule else None)
    if not selector:
        if rule:  # a rule that only names what is not the article: the rest is found as on any page
            drop_junk(tree, rule)
        text, report = _learned_text(tree, url, learned, verify, learn)
        return _readable(Document(
            text=drop_lines(text, rule), title=title, published=published, author=author, site_name=site_name,
            language=language, topics=topics, components=components,
            targeted=report.used is not None and report.verified is not False, canonical=canonical, learn=report,
        ), limit)
    target = css(selector)(tree)
    if rule and not content:
        for el in target or [tree]:
            drop_junk(el, rule)
            for label in css(rule.date_text)(el) if rule.date_text else []:
                # "Release Date: May 2, 2026" is the page's date, not the article's first line.
                line = label.getparent()
                if line is not None and line is not el and len(line.text_content()) < 80:
                    line.drop_tree()
                elif label.getparent() is not None:
                    label.drop_tree()
    if target:
        # Hand trafilatura only the main element: it cannot mistake a sidebar for the article.
        fragment = "".join(etree.tostring(el, encoding="unicode", method="html") for el in target)
        text = _clean_text(trafilatura.extract(
            f"<html><body><article>{fragment}</article></body></html>",
            url=url, deduplicate=False, include_comments=False, include_tables=True, favor_recall=True,
        ) or html_to_text(fragment))
    else:
        text = _full_text(tree, url)
    return _readable(Document(
        text=text if content else drop_lines(text, rule), title=title, published=published, author=author,
        site_name=site_name, language=language, topics=topics, components=components, targeted=bool(target),
        canonical=canonical,
        learn=LearnReport(person=True),  # a person's rule applies here: never learned over
    ), limit)


# The first bytes of files a server may send as text/html, as they read once decoded as UTF-8 or Latin-1
# (a byte that is not UTF-8 becomes U+FFFD).
_MAGIC = (
    ("gzip data", ("\x1f\ufffd\x08", "\x1f\x8b\x08")),
    ("a PDF document", ("%PDF-",)),
    ("a ZIP archive", ("PK\x03\x04",)),
    ("a PNG image", ("\ufffdPNG\r\n", "\x89PNG\r\n")),
    ("a GIF image", ("GIF87a", "GIF89a")),
    ("a JPEG image", ("\ufffd\ufffd\ufffd", "\xff\xd8\xff")),
    ("zstd data", ("(\ufffd/\ufffd", "(\xb5/\xfd")),
    ("bzip2 data", ("BZh",)),
    ("xz data", ("\ufffd7zXZ", "\xfd7zXZ")),
)
# Text has next to no control characters and, decoded right, no U+FFFD; binary data decoded as text is
# a quarter to half of them. 10% of the first 8 KB tells the two apart with a wide margin either way.
_BINARY_SAMPLE = 8192
_BINARY_SHARE = 0.10
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")


def binary_body(text: str) -> str | None:
    """What a page's decoded body really is when it is not text (``"gzip data"``…), else None."""
    head = text[:_BINARY_SAMPLE].lstrip("\ufeff")
    for name, prefixes in _MAGIC:
        if head.startswith(prefixes) and (name != "bzip2 data" or head[3:4].isdigit()):
            return name
    if head and len(_CONTROL.findall(head)) >= _BINARY_SHARE * len(head):
        return "binary data"
    return None


_BLOCK_TAGS = ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote", "pre", "table")


def html_to_text(fragment: str) -> str:
    """The text of a clean HTML fragment (an API body): one line per block, entities decoded."""
    if not fragment or not fragment.strip():
        return ""
    try:
        tree = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return _clean_text(re.sub(r"<[^>]+>", " ", fragment))
    for el in tree.iter(*_BLOCK_TAGS):
        el.tail = "\n" + (el.tail or "")
        if el.tag != "br":
            el.text = "\n" + (el.text or "")
    for el in tree.iter("script", "style"):
        el.drop_tree()
    return _clean_text(tree.text_content())
