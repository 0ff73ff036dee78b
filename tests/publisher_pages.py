"""Article pages and feeds of the catalogue's publishers, for parser and crawl tests.

Where a real page is saved in the corpus it is used as it is (Global News; the whitehouse.gov, gob.mx and dhs.gov
listings; the justice.gov template). Every other page here is BUILT from the structure documented in
../shared/corpus/publishers/README.md (main-content element, title, date), with the navigation, share buttons,
related stories and footers such a page has around the article, so a test shows the rule keeps only the article.
The article text is our own, written for these tests, on the project's beat.
"""

from __future__ import annotations

import gzip
import html
import json
from collections.abc import Sequence
from pathlib import Path

from localsite import CORPUS

NEWS_PAGES = CORPUS / "news_pages"
PUBLISHERS = CORPUS / "publishers"

# Boilerplate every built page carries outside its article element: none of it may reach the text.
NAV = ("Skip to main content", "Subscribe to our newsletter", "Most read today", "Related stories",
       "Share this article", "All rights reserved")


def _esc(s: str) -> str:
    return html.escape(s, quote=True)


def _paras(paragraphs: Sequence[str]) -> str:
    return "".join(f"<p>{_esc(p)}</p>\n" for p in paragraphs)


def _chrome(inner: str, *, lang: str, head: str = "", title: str = "") -> str:
    related = "".join(f'<li><a href="/related/{i}">Related stories: another headline number {i}</a></li>'
                      for i in range(5))
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{_esc(title)}</title>{head}</head>'
        f'<body><a class="skip" href="#main">Skip to main content</a><header><nav><a href="/">Home</a> '
        f'<a href="/news">News</a> <a href="/subscribe">Subscribe to our newsletter</a></nav></header>'
        f"{inner}"
        f'<aside><h2>Most read today</h2><ul>{related}</ul></aside>'
        f'<div class="share">Share this article <a href="#">X</a> <a href="#">Facebook</a></div>'
        f"<footer><p>© 2026 All rights reserved.</p></footer></body></html>"
    )


def whitehouse_page(title: str, paragraphs: Sequence[str], date: str) -> str:
    """BUILT: whitehouse.gov's block theme (``h1.wp-block-whitehouse-topper__headline``,
    ``.entry-content.wp-block-post-content``, ``article:published_time``)."""
    head = (f'<meta property="article:published_time" content="{date}">'
            '<meta property="og:site_name" content="The White House">')
    inner = (f'<main id="main"><div class="wp-block-whitehouse-topper"><h1 class="wp-block-whitehouse-topper__headline">'
             f"{_esc(title)}</h1><p class=\"wp-block-whitehouse-topper__meta\">Briefings &amp; Statements</p></div>"
             f'<div class="entry-content wp-block-post-content is-layout-flow">{_paras(paragraphs)}</div></main>')
    return _chrome(inner, lang="en-US", head=head, title=f"{title} – The White House")


def canada_page(title: str, paragraphs: Sequence[str], date: str, lang: str = "en") -> str:
    """BUILT: a www.canada.ca news release in the WET template (``main[property=mainContentOfPage]``,
    ``dcterms.title``, ``dcterms.issued``; body in ``.cmp-text``)."""
    head = (f'<meta name="dcterms.title" content="{_esc(title)}"><meta name="dcterms.issued" content="{date}">'
            f'<meta name="dcterms.language" content="{"eng" if lang == "en" else "fra"}">')
    inner = (f'<main property="mainContentOfPage" resource="#wb-main" typeof="WebPageElement">'
             f'<h1 property="name" id="wb-cont">{_esc(title)}</h1><div class="cmp-text">{_paras(paragraphs)}</div>'
             '<section class="pagedetails"><dl><dt>Date modified:</dt><dd><time>2026-11-20</time></dd></dl>'
             "</section></main>")
    return _chrome(inner, lang=lang, head=head, title=title)


def pm_page(title: str, paragraphs: Sequence[str], date: str, lang: str = "en") -> str:
    """BUILT: a pm.gc.ca news article (Drupal: ``div.title-header-inner h1``,
    ``div.content-news-article div.field--name-body``, ``div.field--name-field-date-released time``)."""
    inner = (f'<main id="main"><div class="title-header"><div class="title-header-inner"><h1>{_esc(title)}</h1>'
             f'</div></div><div class="content-news-article"><div class="field--name-field-date-released">'
             f'<time datetime="{date}">November 18, 2026</time></div><div class="location">Ottawa, Ontario</div>'
             f'<div class="field field--name-body">{_paras(paragraphs)}</div></div></main>')
    return _chrome(inner, lang=lang, title=title)


def ice_page(title: str, paragraphs: Sequence[str], date: str) -> str:
    """BUILT: an ICE news release (``.nr-content-area .nr-body``, selectors of 2023)."""
    head = f'<meta property="article:published_time" content="{date}">'
    inner = (f'<main id="main"><div class="nr-content-area"><h1>{_esc(title)}</h1>'
             f'<div class="nr-date">Release date</div><div class="nr-body">{_paras(paragraphs)}</div></div></main>')
    return _chrome(inner, lang="en", head=head, title=title)


def dhs_page(title: str, paragraphs: Sequence[str], date_words: str) -> str:
    """BUILT: a dhs.gov news release (``div#block-mainpagecontent > article``, ``h1.page-title``, the date after
    ``span.news-release-date-label``; selectors of 2023)."""
    inner = (f'<main id="main"><h1 class="page-title">{_esc(title)}</h1><div id="block-mainpagecontent">'
             f'<article><div class="news-release-date"><span class="news-release-date-label">Release Date:</span> '
             f"{date_words}</div>{_paras(paragraphs)}</article></div></main>")
    return _chrome(inner, lang="en", title=title)


def epoch_page(title: str, paragraphs: Sequence[str], date: str) -> str:
    """BUILT: an Epoch Times article; only ``article`` is documented (low confidence)."""
    head = f'<meta property="article:published_time" content="{date}">'
    inner = f'<main id="main"><article><h1>{_esc(title)}</h1>{_paras(paragraphs)}</article></main>'
    return _chrome(inner, lang="en", head=head, title=title)


def lapresse_page(title: str, paragraphs: Sequence[str], date: str) -> str:
    """BUILT: a La Presse article (``article.mainStory``)."""
    head = f'<meta property="article:published_time" content="{date}">'
    inner = (f'<main id="main"><article class="mainStory"><h1>{_esc(title)}</h1>'
             f'<div class="textModule">{_paras(paragraphs)}</div></article></main>')
    return _chrome(inner, lang="fr-CA", head=head, title=title)


def generic_news_page(title: str, paragraphs: Sequence[str], date: str, lang: str) -> str:
    """BUILT: an outlet with no documented selectors (El Universal, Proceso, La Jornada, Radio-Canada): a plain
    news page, text found by trafilatura's own rules."""
    head = f'<meta property="article:published_time" content="{date}"><meta property="og:title" content="{_esc(title)}">'
    inner = f'<main id="main"><article><h1>{_esc(title)}</h1><div class="body">{_paras(paragraphs)}</div></article></main>'
    return _chrome(inner, lang=lang, head=head, title=title)


def globalnews_saved() -> tuple[str, str, dict[str, object]]:
    """REAL: the saved Global News page, its URL and its expected fields (the corpus's hand-checked record)."""
    return saved_news_page("ca/GlobalNews_2026_05_24")


def saved_news_page(name: str) -> tuple[str, str, dict[str, object]]:
    """REAL: a saved news page (``ca/NationalPost_2025_05_08``), its URL and its hand-checked record (an
    outlet's pages sorted by name pair with its records in order, as the corpus's README says)."""
    country, stem = name.split("/")
    folder, outlet = NEWS_PAGES / country, stem.rsplit("_", 3)[0]
    page = gzip.decompress((folder / f"{stem}.html.gz").read_bytes()).decode("utf-8")
    meta = json.loads((folder / "meta.info").read_text(encoding="utf-8"))
    records = list(json.loads((folder / f"{outlet}.json").read_text(encoding="utf-8")).values())
    pages = sorted(p.name for p in folder.glob(f"{outlet}_*.html.gz"))
    return page, meta[f"{stem}.html.gz"]["url"], records[pages.index(f"{stem}.html.gz")]


def expected_lines(record: dict[str, object]) -> list[str]:
    """The hand-checked body of a saved page: its standfirst, then each section's headline and paragraphs."""
    body = record["body"]
    assert isinstance(body, dict)
    lines = [*body.get("summary", [])]
    for section in body["sections"]:
        lines += [*section.get("headline", []), *section["paragraphs"]]
    return lines


def globalnews_page(title: str, paragraphs: Sequence[str], date: str) -> str:
    """The saved real Global News page with its headline, date and article paragraphs replaced by ours: the
    real template (ads inside the article, its header, sidebars and footer) around our text."""
    page, _, _ = globalnews_saved()
    start = page.index('<article class="l-article__text')
    open_end = page.index(">", start) + 1
    end = page.index("</article>", open_end)
    ad = '<div class="c-ad"><div class="c-ad__label">Advertisement</div></div>'
    body = _paras(paragraphs[:1]) + ad + _paras(paragraphs[1:])
    page = page[:open_end] + body + page[end:]
    h_start = page.index('<h1 class="l-article__title')
    h_open = page.index(">", h_start) + 1
    h_end = page.index("</h1>", h_open)
    page = page[:h_open] + _esc(title) + page[h_end:]
    return page.replace("2026-05-24T10:05:10-04:00", date)


def saved_listing(name: str) -> str:
    return (PUBLISHERS / name).read_text(encoding="utf-8")


def rss_full(items: Sequence[dict[str, str]], *, title: str, language: str) -> str:
    """An RSS 2.0 feed whose items may carry ``content:encoded`` (WordPress-style)."""
    out = []
    for it in items:
        content = f"<content:encoded><![CDATA[{it['content']}]]></content:encoded>" if it.get("content") else ""
        out.append(
            f"<item><title>{_esc(it['title'])}</title><link>{_esc(it['link'])}</link>"
            f"<pubDate>{it['pubDate']}</pubDate><guid isPermaLink=\"true\">{_esc(it['link'])}</guid>"
            f"<description>{_esc(it.get('description', ''))}</description>{content}</item>"
        )
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
            f"<title>{_esc(title)}</title><link>https://example.org/</link><description>news</description>"
            f"<language>{language}</language>{''.join(out)}</channel></rss>")


def read_fixture(kind: str, name: str) -> str:
    return (Path(__file__).resolve().parent / "fixtures" / kind / name).read_text(encoding="utf-8")


# Our own article texts on the beat (they match a topic, so `keep: matching` sources store them) and one off it.
TEXT_EN = [
    "Federal prosecutors charged six members of the Tren de Aragua gang with running a sex-trafficking ring "
    "across three states, the agency said on Tuesday.",
    "Investigators said the defendants moved victims between motels and laundered the proceeds through "
    "money transfer businesses tied to the gang's leadership in Venezuela.",
    "The case was brought by a task force that includes federal, state and local police.",
]
TEXT_FENTANYL_EN = [
    "Border officers seized 40 kilograms of fentanyl hidden in a truck's fuel tank at a crossing in Arizona, "
    "the largest such seizure at that port this year.",
    "The driver was arrested and charged with importing fentanyl; investigators believe the pills were headed to "
    "distributors in several states.",
    "Officials said the seizure followed a tip shared under the trilateral fentanyl committee with Mexico and Canada.",
]
TEXT_OFF_EN = [
    "The city council approved a new budget for its public libraries on Monday after a long debate.",
    "Council members said the money would extend opening hours and repair two branch buildings.",
    "Residents will be able to comment on the plan at a public meeting next month.",
]
TEXT_ES = [
    "La Fiscalía General de la República informó que detuvo a cuatro integrantes del Tren de Aragua acusados de "
    "trata de personas y extorsión en la Ciudad de México.",
    "Según la dependencia, la célula cobraba cuotas a comerciantes y trasladaba a víctimas entre hoteles del "
    "centro de la capital.",
    "Los detenidos fueron puestos a disposición de un juez federal, que fijará la fecha de la audiencia.",
]
TEXT_FR = [
    "La Gendarmerie royale du Canada a saisi 25 kilogrammes de fentanyl dans un entrepôt de la région de "
    "Montréal, a-t-elle annoncé mercredi.",
    "Trois personnes ont été arrêtées et accusées de trafic de fentanyl; l'enquête a duré plus d'un an.",
    "Selon la police, la drogue devait être distribuée en Ontario et au Québec.",
]


def catalogue_config(path: Path, database: str, overrides: dict[str, dict[str, object]]) -> Path:
    """A user config that takes the named catalogue entries and overrides their keys by name (the local
    replica's URL, `since`…): the catalogue's own selectors, kinds, `keep` and `language` are what run."""
    import yaml

    data = {
        "database": database,
        "crawl": {"download_delay": 0, "retries": 1, "timeout": 10, "extract_workers": 1},
        "catalogue": list(overrides),
        "sources": [{"name": name, **keys} for name, keys in overrides.items()],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def stored(database: str) -> dict[str, dict[str, object]]:
    """Stored items by URL path, with the fields these tests check (language included)."""
    from urllib.parse import urlsplit

    from sqlalchemy import select

    from pipelines.db import Database
    from pipelines.models import Item

    db = Database(database)
    try:
        with db.read() as s:
            rows = s.execute(select(Item.url, Item.source, Item.title, Item.published, Item.language, Item.text)).all()
    finally:
        db.dispose()
    return {urlsplit(r.url).path: {"source": r.source, "title": r.title, "published": r.published,
                                   "language": r.language, "text": r.text} for r in rows}


def unmatched(database: str) -> set[str]:
    from urllib.parse import urlsplit

    from sqlalchemy import select

    from pipelines.db import Database
    from pipelines.models import UrlState

    db = Database(database)
    try:
        with db.read() as s:
            # (keys are canonical URLs: a trailing slash is not part of them)
            return {urlsplit(u).path.rstrip("/") for u in
                    s.scalars(select(UrlState.url).where(UrlState.status == "unmatched"))}
    finally:
        db.dispose()
