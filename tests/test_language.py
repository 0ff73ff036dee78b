"""Every item records its language: declared by the page or the feed, hinted by the source, else detected.

Tag normalisation is table-driven; detection is tried on the real news pages of the corpus in English,
Spanish and French; a crawl of the local site shows each way a language reaches the store.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from helpers import bw, items_json, write_config
from localsite import Site, news_page, rss, serve

from pipelines.extract import _parse, extract, page_language
from pipelines.language import decide_language, detect_language, primary_tag, resolve_language


@pytest.mark.parametrize(("value", "expected"), [
    ("en", "en"), ("en-US", "en"), ("EN-us", "en"), ("fr_CA", "fr"), ("es-419", "es"), ("es-MX", "es"),
    (" fr ", "fr"), ("es, en", "es"), ("spa", "es"), ("fre", "fr"), ("zh-Hant-TW", "zh"),
    ("und", None), ("mul", None), ("", None), (None, None), ("english", None), ("e", None), ("12", None),
    ("en-", "en"), ("x-klingon", None), ("utf", None), ("utf-8", None), ("xx", None),
])
def test_primary_tag(value: str | None, expected: str | None) -> None:
    assert primary_tag(value) == expected


@pytest.mark.parametrize(("html", "expected"), [
    ('<html lang="es-MX"><body><p>x</p></body></html>', "es"),
    ('<html xml:lang="fr-CA"><body><p>x</p></body></html>', "fr"),
    ('<html><head><meta http-equiv="Content-Language" content="fr"></head><body><p>x</p></body></html>', "fr"),
    ('<html><head><meta property="og:locale" content="es_ES"></head><body><p>x</p></body></html>', "es"),
    ('<html lang=""><head><meta property="og:locale" content="en_CA"></head><body><p>x</p></body></html>', "en"),
    ("<html><body><p>x</p></body></html>", None),
])
def test_page_language_declarations(html: str, expected: str | None) -> None:
    assert page_language(_parse(html)) == expected


def test_detection_answers_only_when_sure() -> None:
    assert detect_language("Hello") is None  # too short to tell
    assert detect_language("Fentanyl", None, "") is None
    assert detect_language("La Policía Federal detuvo en Sinaloa a tres presuntos integrantes del cártel con "
                           "armas largas y pastillas de fentanilo.") == "es"
    assert resolve_language(None, "", "fr-CA", title="anything") == "fr"  # the first declaration wins
    assert resolve_language(None, None, text="The border agency seized fentanyl.") is None  # too short
    long_es = " ".join(ES)
    assert decide_language([("en", "page")], None, long_es) == ("es", "detected (the page says en)")
    assert decide_language([("en", "page")], None, long_es[:60]) == ("en", "page")  # too short to overrule
    assert decide_language([(None, "page"), ("fr-CA", "feed")], None, "") == ("fr", "feed")
    assert decide_language([], None, "") == (None, "unknown")


# The outlets near the beat whose pages the corpus holds, with the language they publish in.
OUTLETS = {
    "ca/GlobalNews": "en", "ca/CBCNews": "en", "ca/NationalPost": "en", "ca/TheGlobeAndMail": "en",
    "mx/MexicoNewsDaily": "en", "us/APNews": "en", "us/Reuters": "en", "us/FoxNews": "en",
    "us/WashingtonTimes": "en", "us/VoiceOfAmerica": "en",
    "es/ElPais": "es", "es/ElMundo": "es", "es/ABC": "es", "es/ElDiario": "es", "es/LaVanguardia": "es",
    "es/Publico": "es",
    "fr/LeMonde": "fr", "fr/LeFigaro": "fr", "fr/LesEchos": "fr", "fr/EuronewsFR": "fr",
}


def test_news_pages_in_three_languages(corpus: Path) -> None:
    """Each page's text, its declaration taken away, is detected as the language its outlet publishes in;
    where the page declares one, the declaration agrees."""
    pages = [(p, lang) for outlet, lang in OUTLETS.items()
             for p in sorted((corpus / "news_pages").glob(f"{outlet}_*.html.gz"))]
    assert {lang for _, lang in pages} == {"en", "es", "fr"} and len(pages) >= 25
    for path, lang in pages:
        html = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        doc = extract(html, "https://example.org/article")
        assert doc.text, path.name
        assert detect_language(doc.title, doc.text) == lang, path.name
        assert doc.language in (None, lang), path.name


# -- a crawl: page, feed, source hint, detection -----------------------------------------------------------

ES = ["La Guardia Nacional aseguró en Sonora un cargamento de pastillas de fentanilo ocultas en un camión "
      "de carga que se dirigía a la frontera con Arizona.",
      "Según la Secretaría de Seguridad, los detenidos forman parte de una célula que abastece a grupos "
      "criminales en ambos lados de la frontera."]
FR = ["La Gendarmerie royale du Canada a démantelé un réseau de trafic d'armes à feu qui faisait entrer des "
      "pistolets depuis les États-Unis par le poste frontalier de Lacolle.",
      "Les enquêteurs ont saisi une quarantaine d'armes et arrêté quatre suspects dans la région de Montréal."]
EN = ["Border officers in Windsor seized a shipment of counterfeit pills containing fentanyl hidden in a "
      "commercial truck arriving from Detroit.",
      "Two drivers were charged and the investigation continues with partners in the United States."]


def _bare(headline: str, paragraphs: list[str]) -> str:
    """A page that declares no language at all."""
    return news_page(headline, paragraphs).replace('<html lang="en">', "<html>")


def test_crawl_records_each_items_language(tmp_path: Path) -> None:
    site = Site()
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    site.add("/es/1", news_page("Aseguran fentanilo en Sonora", ES).replace('lang="en"', 'lang="es-MX"'))
    site.add("/fr/1", _bare("Démantèlement d'un réseau d'armes", FR))  # the feed says fr-CA
    site.add("/hint/1", _bare("Saisie de fentanyl", FR))  # nothing declared: the source's hint
    site.add("/plain/1", _bare("Aseguramiento en la frontera", ES))  # nothing at all: detected
    site.add("/plain/2", _bare("Fentanyl seizure in Windsor", EN))
    # An English template around a French text (a translation on an English site): the text wins.
    site.add("/wrong/1", news_page("Démantèlement à Lacolle", FR))
    with serve(site):
        site.add("/feed-es.xml", rss([{"title": "Aseguran fentanilo", "link": site.url("/es/1")}]),
                 content_type="application/rss+xml")
        site.add("/feed-fr.xml", rss([{"title": "Réseau d'armes", "link": site.url("/fr/1")}]).replace(
            "<description>news</description>", "<description>news</description><language>fr-CA</language>"),
            content_type="application/rss+xml")
        site.add("/feed-hint.xml", rss([{"title": "Saisie", "link": site.url("/hint/1")}]),
                 content_type="application/rss+xml")
        site.add("/feed-plain.xml", rss([{"title": "Aseguramiento", "link": site.url("/plain/1")},
                                         {"title": "Seizure", "link": site.url("/plain/2")},
                                         {"title": "Lacolle", "link": site.url("/wrong/1")}]),
                 content_type="application/rss+xml")
        site.add("/feed-only.xml", rss([{"title": "Résumé", "link": site.url("/nowhere/1"),
                                         "description": " ".join(FR)}]), content_type="application/rss+xml")
        config = write_config(tmp_path / "c.yaml", {
            "database": f"sqlite:///{tmp_path / 'bw.db'}",
            "crawl": {"download_delay": 0, "retries": 0},
            "sources": [
                {"name": "es", "kind": "feed", "url": site.url("/feed-es.xml"), "language": "fr"},
                {"name": "fr", "kind": "feed", "url": site.url("/feed-fr.xml"), "language": "en"},
                {"name": "hint", "kind": "feed", "url": site.url("/feed-hint.xml"), "language": "fr-CA"},
                {"name": "plain", "kind": "feed", "url": site.url("/feed-plain.xml")},
                {"name": "only", "kind": "feed", "url": site.url("/feed-only.xml"), "fetch_pages": False},
            ],
        })
        proc = bw(config, "crawl", "--no-alerts")
        assert proc.returncode == 0, proc.stderr
    by_url = {i["url"].removeprefix(site.base): i["lang"] for i in items_json(config)}
    assert by_url == {
        "/es/1": "es",      # the page's own declaration wins over the source's hint
        "/fr/1": "fr",      # the feed's <language> where the page declares none
        "/hint/1": "fr",    # the source's `language:` where neither does
        "/plain/1": "es",   # detected from the text
        "/plain/2": "en",
        "/wrong/1": "fr",   # declared en by its template, plainly French
        "/nowhere/1": "fr",  # a feed-only item: detected from the feed's text
    }
    proc = bw(config, "items", "--format", "csv")
    assert proc.returncode == 0 and "lang" in proc.stdout.splitlines()[0].split(",")
    table = bw(config, "items")
    assert table.stdout.splitlines()[0].split()[:4] == ["ID", "PUBLISHED", "SOURCE", "LANG"]
    first = json.loads(bw(config, "items", "--format", "json", "--source", "plain", "--limit", "1").stdout)
    shown = bw(config, "show", str(first["id"]))
    assert f"language:   {first['lang']}" in shown.stdout


def test_a_bad_language_hint_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", {"sources": [
        {"name": "x", "kind": "feed", "url": "https://example.org/feed", "language": "klingon"}]})
    proc = bw(config, "items")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"borderwatch: {config}: sources[0].language: 'klingon' is not a language "
                                   "tag like en, es or fr")
