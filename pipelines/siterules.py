"""Site rules: what is known of publishers' article pages — where the article is, its title and date, and
what inside it is not the article (ads, bylines, embedded posts, "related story" links, paywall notices).

A rule applies to its host and its subdomains, and through its ``marker`` to a copy on any host. A rule with
a ``content`` element hands only that element to trafilatura; a rule without one lets trafilatura find the
article on the page, as on any other, once the rule's junk is gone (the news outlets: their generic
extraction is already right about where the article is, and a content element that fits one template
breaks on the next one). ``pipelines.extract`` applies them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from pipelines.canonical import host_of
from pipelines.learn import css


@dataclass(frozen=True)
class SiteRule:
    """Selectors for a site whose page structure is known."""

    content: str | None = None  # the main element; None: trafilatura finds it, after the drops
    title: str | None = None
    date: str | None = None  # an element with a datetime attribute, or a meta tag with content
    topics: str | None = None
    components: str | None = None
    marker: str | None = None  # a selector that identifies the template on any host (mirrors, copies)
    drop: str | None = None  # elements that are not the article (ads, share boxes), inside the main one if any
    drop_xpath: str | None = None  # the same, where CSS cannot say it (a paragraph that is only a link)
    drop_lines: str | None = None  # a pattern of whole text lines that are not the article (a paywall notice)
    date_text: str | None = None  # an element whose text says the date in words ("Release Date: May 2, 2026")


# A paragraph or subtitle that is nothing but one link: a related story set into the article's body (Fox
# News' "2 NY RESIDENTS ALLEGEDLY RAN…", ABC's second subtitle). A sentence that holds a link has text around it.
LINK_ONLY = (".//*[self::p or self::h2 or self::h3][count(a) = 1][normalize-space(.) != '']"
             "[normalize-space(.) = normalize-space(a)]")
# Posts embedded from social networks: someone else's words, quoted whole.
EMBEDS = "blockquote.twitter-tweet, blockquote.instagram-media, blockquote.tiktok-embed"

# Postmedia's papers share one template (2024's and 2025's, both in the corpus): a hidden "Article content"
# label before each block, "more on this topic" boxes with ads in them, and a house promo paragraph.
_POSTMEDIA = dict(
    drop=".visually-hidden, section.more-topic, section.ad, .ad__native",
    drop_lines=r"Our website is the place for the latest breaking news, exclusive scoops.*",
)

# Known publishers' article templates (government sites: selectors from ../shared/corpus/publishers/README.md;
# news outlets: from their saved pages in ../shared/corpus/news_pages). Each is tested in
# tests/test_site_rules.py on a saved real page where one exists, else on a page built from the documented
# structure.
SITE_RULES: dict[str, SiteRule] = {
    # Every justice.gov press release (OPA and the 94 US Attorneys' offices) shares one Drupal template.
    "justice.gov": SiteRule(
        content="div.field_body",
        title="h1.page-title",
        date="div.field_date time",
        topics="div.node-topics div.field__item",
        components="div.node-component div.field__item",
        marker="div.node-press-release div.field_body",
    ),
    # The White House (WordPress block theme, 2025–).
    "whitehouse.gov": SiteRule(
        content=".entry-content.wp-block-post-content",
        title="h1.wp-block-whitehouse-topper__headline",
        date="meta[property='article:published_time']",
        marker="h1.wp-block-whitehouse-topper__headline",
    ),
    # Global News (Canada): ads sit inside the article as div.c-ad; the date is in the JSON-LD.
    "globalnews.ca": SiteRule(
        content="article.l-article__text",
        title="h1.l-article__title",
        drop=".c-ad, .c-inlineSignup, form, script, style",
        marker="article.l-article__text",
    ),
    # Government of Canada pages (Canada.ca's WET template): www.canada.ca hangs for non-browser clients.
    "canada.ca": SiteRule(
        content="main[property='mainContentOfPage']",
        title="meta[name='dcterms.title']",
        date="meta[name='dcterms.issued']",
        drop="h1, div.pagedetails, section.pagedetails, .gc-prtts, nav, aside",
        marker="main[property='mainContentOfPage']",
    ),
    # The Prime Minister of Canada (Drupal).
    "pm.gc.ca": SiteRule(
        content="div.content-news-article div.field--name-body",
        title="div.title-header-inner h1",
        date="div.field--name-field-date-released time",
        marker="div.content-news-article div.field--name-body",
    ),
    # ICE news releases (selectors of 2023).
    "ice.gov": SiteRule(
        content=".nr-content-area .nr-body",
        title="h1",
        marker=".nr-content-area .nr-body",
    ),
    # DHS news releases (selectors of 2023): the date is written out after "Release Date:".
    "dhs.gov": SiteRule(
        content="div#block-mainpagecontent > article",
        title="h1.page-title",
        date_text="span.news-release-date-label",
        drop="nav, .usa-social-share, .field--name-field-tags",
        marker="span.news-release-date-label",
    ),
    # The Epoch Times: its pages are only known to hold the article in <article> (low confidence).
    "theepochtimes.com": SiteRule(content="article", title="h1", drop="h1, header, figure figcaption, aside"),
    # La Presse (Montréal).
    "lapresse.ca": SiteRule(content="article.mainStory", title="h1", drop="h1, header, aside",
                            marker="article.mainStory"),
    # -- News outlets near the beat: only what is not the article is named. --------------------------------
    "nationalpost.com": SiteRule(**_POSTMEDIA),
    "financialpost.com": SiteRule(**_POSTMEDIA),
    "ottawacitizen.com": SiteRule(**_POSTMEDIA),
    "theprovince.com": SiteRule(**_POSTMEDIA),
    "canada.com": SiteRule(**_POSTMEDIA),
    # Mexico News Daily quotes posts from X whole.
    "mexiconewsdaily.com": SiteRule(drop=EMBEDS),
    # AP: an "What to know about…" box of links inside the story; "___" before the credits.
    "apnews.com": SiteRule(drop=f".Infobox, {EMBEDS}", drop_lines=r"_{3,}"),
    "reuters.com": SiteRule(drop_lines=r"Our Standards: The Thomson Reuters Trust Principles\.?"),
    # Fox News sets related stories into the body as a paragraph that is one capitalised link.
    "foxnews.com": SiteRule(drop=EMBEDS, drop_xpath=LINK_ONLY),
    "washingtontimes.com": SiteRule(drop="div.permission"),  # "Copyright © 2023 The Washington Times, LLC."
    # ABC (Spain), templates of 2024 (voc-) and 2026 (v-): the section's label over the headline, author boxes,
    # "Noticia relacionada" boxes, the subscribers-only menus, a related story as a second subtitle.
    "abc.es": SiteRule(drop=".v-a-p-t, .v-ath, .v-cmp-rld, .voc-author, .voc-modal-dropdown, .voc-save-news",
                       drop_xpath=LINK_ONLY),
    "eldiario.es": SiteRule(drop="p.comments"),  # the number of comments, under the date
    "elmundo.es": SiteRule(drop=".ue-c-article__subtitles, .ue-c-article__listing"),  # related stories
    "elpais.com": SiteRule(drop="#me-dis"),  # "Tu suscripción se está usando en otro dispositivo"
    "lavanguardia.com": SiteRule(drop="figcaption"),
    "publico.es": SiteRule(drop="div.published"),  # "Madrid-29/05/2025 20:00": the dateline
    # Le Figaro: "Passer la publicité" before each ad, "À lire aussi" links between paragraphs.
    "lefigaro.fr": SiteRule(drop=".fig-a11y-skip, .fig-ad-content, .fig-body-link"),
    "lemonde.fr": SiteRule(drop_lines=r"Il vous reste [\d.,]+ ?% de cet article à lire\..*"),
    # Les Echos: the byline is a paragraph "Par <span>Les Echos</span>" (its classes are generated).
    "lesechos.fr": SiteRule(drop_xpath=".//p[span[1][normalize-space(.) = 'Par']]"),
}


def rule_for(url: str, tree: Any) -> SiteRule | None:
    """The rule of the page's host (or a parent domain's), else the first whose marker the page shows."""
    host = host_of(url)
    while host:
        if host in SITE_RULES:
            return SITE_RULES[host]
        host = host.partition(".")[2]
    for rule in SITE_RULES.values():
        if rule.marker and css(rule.marker)(tree):
            return rule
    return None


@functools.lru_cache(maxsize=256)
def _xpath(expression: str) -> Any:
    return etree.XPath(expression)


@functools.lru_cache(maxsize=256)
def _line_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def drop_junk(root: Any, rule: SiteRule) -> None:
    """Remove from ``root`` (in place) the elements the rule says are not the article, keeping the text
    that follows each."""
    junk = [*(css(rule.drop)(root) if rule.drop else ()), *(_xpath(rule.drop_xpath)(root) if rule.drop_xpath else ())]
    for el in junk:
        if el.getparent() is not None:
            el.drop_tree()


def drop_lines(text: str, rule: SiteRule | None) -> str:
    """The text without the lines the rule says are not the article."""
    if rule is None or not rule.drop_lines or not text:
        return text
    pattern = _line_pattern(rule.drop_lines)
    return "\n".join(line for line in text.splitlines() if not pattern.fullmatch(line.strip()))
