"""Site rules (pipelines/extract.py) of every publisher the catalogue ships: main content, title, date.

Each is tested on a saved real page where the corpus has one (Global News; the DOJ template is covered in
test_parsers.py) and otherwise on a page BUILT from the structure documented in
../shared/corpus/publishers/README.md (tests/publisher_pages.py says which is which). The saved listings
(whitehouse.gov, gob.mx, dhs.gov) are read with the selectors of their catalogue entries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from parsel import Selector
from publisher_pages import (
    NAV,
    TEXT_EN,
    TEXT_ES,
    TEXT_FENTANYL_EN,
    TEXT_FR,
    canada_page,
    dhs_page,
    epoch_page,
    generic_news_page,
    globalnews_page,
    globalnews_saved,
    ice_page,
    lapresse_page,
    pm_page,
    saved_listing,
    whitehouse_page,
)

from crawler.config import catalogue_entries
from pipelines.extract import SITE_RULES, extract

ISO = "2026-11-18T14:30:00+00:00"
WHEN = datetime(2026, 11, 18, 14, 30, tzinfo=UTC)

# (publisher, a URL on its host, page builder, paragraphs, expected date, whether a site rule targets it)
BUILT: list[tuple[str, str, Callable[[], str], list[str], datetime, bool]] = [
    ("whitehouse", "https://www.whitehouse.gov/briefings-statements/2026/11/trilateral-fentanyl-committee/",
     lambda: whitehouse_page("Trilateral Fentanyl Committee Meets", TEXT_FENTANYL_EN, ISO), TEXT_FENTANYL_EN, WHEN,
     True),
    ("canada.ca", "https://www.canada.ca/en/public-safety-canada/news/2026/11/tda-charges.html",
     lambda: canada_page("Charges Against Gang Members", TEXT_EN, "2026-11-18"), TEXT_EN,
     datetime(2026, 11, 18, tzinfo=UTC), True),
    ("canada.ca fr", "https://www.canada.ca/fr/securite-publique-canada/nouvelles/2026/11/saisie.html",
     lambda: canada_page("Saisie de fentanyl", TEXT_FR, "2026-11-18", lang="fr"), TEXT_FR,
     datetime(2026, 11, 18, tzinfo=UTC), True),
    ("pm.gc.ca", "https://www.pm.gc.ca/en/news/news-releases/2026/11/18/border-plan",
     lambda: pm_page("Prime Minister Announces Border Plan", TEXT_FENTANYL_EN, ISO), TEXT_FENTANYL_EN, WHEN, True),
    ("ice.gov", "https://www.ice.gov/news/releases/tda-arrests",
     lambda: ice_page("ICE Arrests Gang Members", TEXT_EN, ISO), TEXT_EN, WHEN, True),
    ("dhs.gov", "https://www.dhs.gov/news/2026/11/18/fentanyl-seizure",
     lambda: dhs_page("Record Fentanyl Seizure", TEXT_FENTANYL_EN, "November 18, 2026"), TEXT_FENTANYL_EN,
     datetime(2026, 11, 18, tzinfo=UTC), True),
    ("epoch times", "https://www.theepochtimes.com/us/gang-charged-5912345",
     lambda: epoch_page("Gang Members Charged", TEXT_EN, ISO), TEXT_EN, WHEN, True),
    ("la presse", "https://www.lapresse.ca/actualites/justice-et-faits-divers/2026-11-18/saisie.php",
     lambda: lapresse_page("Saisie de fentanyl", TEXT_FR, ISO), TEXT_FR, WHEN, True),
    # No documented selectors: trafilatura's own rules on a plain news page.
    ("radio-canada", "https://ici.radio-canada.ca/nouvelle/2101234/saisie-fentanyl",
     lambda: generic_news_page("Saisie de fentanyl", TEXT_FR, ISO, "fr"), TEXT_FR, WHEN, False),
    ("el universal", "https://www.eluniversal.com.mx/nacion/detienen-tren-de-aragua/",
     lambda: generic_news_page("Detienen a integrantes del Tren de Aragua", TEXT_ES, ISO, "es"), TEXT_ES, WHEN,
     False),
    ("proceso", "https://www.proceso.com.mx/nacional/2026/11/18/tren-de-aragua/",
     lambda: generic_news_page("Caen cuatro del Tren de Aragua", TEXT_ES, ISO, "es"), TEXT_ES, WHEN, False),
    ("la jornada", "https://www.jornada.com.mx/2026/11/18/politica/008n1pol",
     lambda: generic_news_page("Detienen a cuatro", TEXT_ES, ISO, "es"), TEXT_ES, WHEN, False),
]


@pytest.mark.parametrize(("name", "url", "build", "paragraphs", "date", "targeted"), BUILT,
                         ids=[b[0] for b in BUILT])
def test_rule_on_a_page_built_from_the_documented_structure(
    name: str, url: str, build: Callable[[], str], paragraphs: list[str], date: datetime, targeted: bool
) -> None:
    doc = extract(build(), url)
    lines = doc.text.splitlines()
    if not targeted and lines and lines[0] == doc.title:
        lines = lines[1:]  # trafilatura alone keeps the headline as the text's first line
    assert lines == paragraphs, name
    for junk in NAV:
        assert junk not in doc.text
    assert doc.published == date
    assert doc.targeted is targeted
    assert doc.title and "Related" not in doc.title


def test_globalnews_rule_on_the_saved_real_page() -> None:
    page, url, expected = globalnews_saved()
    doc = extract(page, url)
    assert doc.targeted
    assert doc.title == expected["title"]
    assert doc.published == datetime.fromisoformat("2026-05-24T10:05:10-04:00")
    paragraphs = [p for section in expected["body"]["sections"] for p in section["paragraphs"]]
    lines = doc.text.splitlines()
    for p in paragraphs:  # every hand-checked paragraph, in order, and nothing around them but headlines
        assert p in lines, p[:60]
    assert [ln for ln in lines if ln in paragraphs] == paragraphs
    headlines = [h for section in expected["body"]["sections"] for h in section["headline"]]
    # (the hand-checked record leaves out the closing wire-service credit, which is the article's own line)
    assert {ln for ln in set(lines) - set(paragraphs) if "contributed to this report" not in ln} <= set(headlines)
    assert "Advertisement" not in doc.text and "gn_monetize" not in doc.text


def test_globalnews_rule_finds_our_text_in_the_real_template() -> None:
    page = globalnews_page("Fentanyl seized at the border", TEXT_FENTANYL_EN, ISO)
    doc = extract(page, "https://globalnews.ca/news/11900001/fentanyl-seized/")
    assert doc.text.splitlines() == TEXT_FENTANYL_EN
    assert doc.title == "Fentanyl seized at the border"
    assert doc.published == WHEN


@pytest.mark.parametrize("host", ["whitehouse.gov", "globalnews.ca", "canada.ca", "pm.gc.ca", "ice.gov", "dhs.gov",
                                  "lapresse.ca"])
def test_a_templated_rule_also_applies_to_a_copy_on_another_host(host: str) -> None:
    """Its marker finds the template anywhere (a mirror; the tests' local replicas)."""
    rule = SITE_RULES[host]
    assert rule.marker
    builders: dict[str, Callable[[], str]] = {
        "whitehouse.gov": lambda: whitehouse_page("T", TEXT_EN, ISO),
        "globalnews.ca": lambda: globalnews_page("T", TEXT_EN, ISO),
        "canada.ca": lambda: canada_page("T", TEXT_EN, ISO),
        "pm.gc.ca": lambda: pm_page("T", TEXT_EN, ISO),
        "ice.gov": lambda: ice_page("T", TEXT_EN, ISO),
        "dhs.gov": lambda: dhs_page("T", TEXT_EN, "November 18, 2026"),
        "lapresse.ca": lambda: lapresse_page("T", TEXT_EN, ISO),
    }
    doc = extract(builders[host](), "http://127.0.0.1:8080/a/page")
    assert doc.targeted and doc.text.splitlines() == TEXT_EN


def _entry(name: str) -> dict[str, Any]:
    return next(e for e in catalogue_entries() if e["name"] == name)


@pytest.mark.parametrize(("entry", "saved", "first_link", "count", "next_href"), [
    ("whitehouse-listing", "whitehouse_news_listing_2025-01.html",
     "https://www.whitehouse.gov/briefings-statements/2025/01/fact-sheet-president-donald-j-trump-takes-action-to-"
     "enhance-americas-ai-leadership/", 9, "https://www.whitehouse.gov/news/page/2/"),
    ("sspc-prensa", "gobmx_sep_prensa_listing_2025-11.html",
     "/sep/prensa/boletin-386-a-traves-del-inea-se-atiende-a-20-mil-jovenes-adultos-indigenas-y-personas-con-"
     "discapacidad-en-rezago-educativo-secretario?idiom=es", 9, "/sep/archivo/prensa?order=DESC&page=2"),
])
def test_catalogue_listing_selectors_on_saved_real_listings(
    entry: str, saved: str, first_link: str, count: int, next_href: str
) -> None:
    e = _entry(entry)
    sel = Selector(text=saved_listing(saved))
    links = sel.css(e["links"])
    assert len(links) == count
    assert links[0].attrib["href"] == first_link
    assert sel.css(e["next"]).attrib["href"] == next_href


def test_dhs_listing_selectors_on_the_saved_real_listing() -> None:
    from localsite import CORPUS

    e = _entry("dhs-news")
    sel = Selector(text=(CORPUS / "agencies" / "dhs_newsroom_listing_2026.html").read_text(encoding="utf-8"))
    hrefs = [a.attrib["href"] for a in sel.css(e["links"])]
    assert hrefs == ["/news/2026/07/31/dhs-announces-addition-43-companies-uflpa-entity-list",
                     "/news/2026/07/30/ice-asks-south-carolina-not-release-illegal-alien-charged-fatal-hit-and-run-"
                     "killed"]
