"""The source catalogue (config/catalogue.yaml): its entries, how a config uses them, and a crawl of every
feed and listing entry against a local replica of its way in.

The replica serves what each way in serves: feeds (with the White House's full text in ``content:encoded``),
the DOJ API, and listings made from the saved real whitehouse.gov, dhs.gov and gob.mx listings (links pointed
at the local site). Article pages are the saved real Global News page, or pages built from each publisher's
documented structure (tests/publisher_pages.py). The ``gc_news``, ``drupal_views`` and ``embedded_json``
entries are crawled in test_gc_news.py, test_drupal_views.py and test_embedded_json.py. Shipped-disabled entries
are enabled here by name to prove their way in; the shipped config keeps them off.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import bw
from localsite import Site, api_record_2024, serve
from publisher_pages import (
    TEXT_EN,
    TEXT_ES,
    TEXT_FENTANYL_EN,
    TEXT_FR,
    TEXT_OFF_EN,
    catalogue_config,
    dhs_page,
    epoch_page,
    generic_news_page,
    globalnews_page,
    globalnews_saved,
    ice_page,
    lapresse_page,
    rss_full,
    saved_listing,
    stored,
    unmatched,
    whitehouse_page,
)

from crawler.config import CATALOGUE, ConfigError, catalogue_entries, load_config
from crawler.fetch.spiders.feed import full_text, read_feed

ROOT = Path(__file__).resolve().parent.parent
NOW = int(time.time())
DAY = 86400


# -- the catalogue itself ---------------------------------------------------------------------------------------
def test_every_entry_is_valid_commented_and_says_how_well_it_is_known() -> None:
    config = load_config(ROOT / "config" / "borderwatch.yaml", env={})
    names = [e["name"] for e in catalogue_entries()]
    assert [s.name for s in config.sources] == names  # the shipped config reads the whole catalogue
    lines = CATALOGUE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  - name: "):
            above = lines[i - 1].strip()
            assert above.startswith("#"), f"{line.strip()}: no comment saying what it is"
    for source in config.sources:
        assert source.note and source.language in ("en", "es", "fr") and source.label, source.name
        if not source.enabled:
            assert "disabled:" in source.note, source.name  # and why
        else:
            assert "confidence" in source.note, source.name
    by_name = {s.name: s for s in config.sources}
    # the walled ways in are shipped disabled, with the reason
    assert not by_name["sspc-prensa"].enabled and "Cloudflare" in (by_name["sspc-prensa"].note or "")
    assert not by_name["gc-publicsafety-pages"].enabled and "canada.ca" in (by_name["gc-publicsafety-pages"].note or "")
    # press offices keep everything, general outlets what matches
    assert {n for n, s in by_name.items() if s.keep == "all"} >= {"doj-api", "doj-news", "dhs-news", "ice-news",
                                                                  "gc-publicsafety-en", "gc-publicsafety-fr"}
    assert {n for n, s in by_name.items() if s.keep == "matching"} >= {"globalnews", "epochtimes-us", "eluniversal",
                                                                       "proceso", "lajornada-politica",
                                                                       "lapresse-justice", "radiocanada-justice"}
    # every way in the issue names is there
    urls = " ".join(s.url for s in config.sources)
    for way_in in ("justice.gov/api/v1/press_releases.json", "justice.gov/news/rss", "whitehouse.gov/news/feed/",
                   "globalnews.ca/feed/", "api.io.canada.ca/io-server/gc/news/en/v2", "/gc/news/fr/v2",
                   "pm.gc.ca/views/ajax", "ice.gov/rss/ice-breaking-news", "ice.gov/rss/news/166", "dhs.gov/news",
                   "feed.theepochtimes.com", "eluniversal.com.mx", "proceso.com.mx", "jornada.com.mx",
                   "lapresse.ca/actualites/justice-et-faits-divers/rss", "ici.radio-canada.ca/rss/92411",
                   "gob.mx/sspc"):
        assert way_in in urls, way_in


def test_the_readme_table_lists_every_entry() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The source catalogue", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    listed = {name for row in rows for name in re.findall(r"`([a-z0-9-]+)`", row)}
    assert listed == {e["name"] for e in catalogue_entries()}


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, env={})


def test_a_config_uses_the_catalogue_without_copying_it(tmp_path: Path) -> None:
    # by name, with overrides, and sources of one's own beside them
    config = _load(tmp_path, "catalogue: [doj-api, globalnews]\nsources:\n"
                             " - {name: globalnews, keep: all, every: 15m}\n"
                             " - {name: mine, kind: feed, url: 'http://127.0.0.1/feed'}\n")
    assert [s.name for s in config.sources] == ["doj-api", "globalnews", "mine"]
    gn = config.source("globalnews")
    assert gn.keep == "all" and gn.every.total_seconds() == 900 and gn.url == "https://globalnews.ca/feed/"
    assert gn.language == "en" and gn.label == "Global News"
    # a name alone pulls one entry in; a disabled one can be turned on
    config = _load(tmp_path, "sources:\n - {name: ice-gangs}\n - {name: sspc-prensa, enabled: true}\n")
    assert [s.name for s in config.sources] == ["ice-gangs", "sspc-prensa"]
    assert config.source("sspc-prensa").enabled
    # everything, with one entry turned off
    config = _load(tmp_path, "catalogue: true\nsources:\n - {name: epochtimes-us, enabled: false}\n")
    assert len(config.sources) == len(catalogue_entries())
    assert not config.source("epochtimes-us").enabled and config.source("epochtimes-world").enabled
    # no catalogue: only one's own sources
    config = _load(tmp_path, "sources:\n - {name: doj-api, kind: doj_api, url: 'http://127.0.0.1/api'}\n")
    assert [s.name for s in config.sources] == ["doj-api"] and config.source("doj-api").language is None


BAD = [
    ("catalogue: [doj-api, globalnewz]\n", "catalogue[1]: no catalogue entry named 'globalnewz'"),
    ("catalogue: maybe\n", "catalogue: expected true, false or a list of catalogue entry names"),
    ("sources:\n - {name: globalnewz}\n", "sources[0].kind: missing"),
    ("sources:\n - {name: globalnewz}\n", "'globalnewz' names no catalogue entry"),
    ("catalogue: true\nsources:\n - {name: globalnews, every: soon}\n", "sources[0].every: not a duration"),
    ("catalogue: true\nsources:\n - {name: proceso, keep: some}\n", "sources[0].keep"),
    ("sources:\n - {name: ice-news, colour: red}\n", "sources[0].colour: unknown key"),
    ("sources:\n - {name: globalnews-sitemap, exclude: ['(']}\n", "sources[0].exclude: '(' is not a regular expression"),
    ("catalogue: true\nsources:\n - {name: x, kind: feed, url: 'http://127.0.0.1/f'}\n"
     " - {name: x, kind: feed, url: 'http://127.0.0.1/g'}\n", "sources[1].name: duplicate source name 'x'"),
]


@pytest.mark.parametrize(("content", "message"), BAD)
def test_a_bad_reference_is_one_line_naming_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert message in str(err.value) and str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_bad_reference_exits_2_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"database: 'sqlite:///{tmp_path}/bw.db'\ncatalogue: [doj-api, nope]\n", encoding="utf-8")
    proc = bw(path, "crawl")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"borderwatch: {path}: catalogue[1]: no catalogue entry named 'nope' (see config/catalogue.yaml)"


# -- full text in feeds -----------------------------------------------------------------------------------------
def _entry_with(content: str) -> dict[str, Any]:
    return {"content": [{"type": "text/html", "value": content}]}


def test_a_feeds_full_text_is_used_only_when_complete() -> None:
    article = "".join(f"<p>{p}</p>" for p in TEXT_FENTANYL_EN)
    text = full_text(_entry_with(article + "<p>The post Trilateral Fentanyl Committee appeared first on "
                                           "The White House.</p>"))
    assert text is not None and text.splitlines() == TEXT_FENTANYL_EN  # WordPress's footer line is not the article
    assert full_text(_entry_with(article + "<p>The meeting went on into the evening and …</p>")) is None
    assert full_text(_entry_with(article + '<p><a href="/x">Read more</a></p>')) is None
    assert full_text(_entry_with(article + "<p>Lire la suite</p>")) is None
    assert full_text(_entry_with("<p>A teaser of one sentence.</p>")) is None
    assert full_text({}) is None


def test_a_feeds_language_and_full_text_are_read() -> None:
    feed = rss_full([{"title": "T", "link": "https://www.whitehouse.gov/x/", "pubDate": "Tue, 17 Nov 2026 15:00:00 +0000",
                      "content": "".join(f"<p>{p}</p>" for p in TEXT_EN)}], title="The White House", language="en-US")
    [(link, hints, _summary, text)] = read_feed(feed.encode())[0]
    assert link == "https://www.whitehouse.gov/x/" and hints["language"] == "en"
    assert text is not None and text.splitlines() == TEXT_EN


# -- crawl of every feed and listing entry against its local replica -------------------------------------------
def rfc822(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


# What each story is: (path, title, paragraphs, seconds ago, page builder or None for "not served")
Story = tuple[str, str, list[str], int, Callable[[str, list[str], str], str] | None]

FEEDS: dict[str, tuple[str, str, list[Story]]] = {
    # entry: (feed path, feed language, stories)
    "ice-news": ("/rss/ice-breaking-news", "en-us", [
        ("/ice/news/releases/tda-arrests", "ICE arrests Tren de Aragua members", TEXT_EN, DAY, ice_page)]),
    "ice-gangs": ("/rss/news/166", "en-us", [
        ("/ice/news/releases/fentanyl-ring", "ICE dismantles fentanyl ring", TEXT_FENTANYL_EN, 2 * DAY, ice_page)]),
    "epochtimes-us": ("/et/us/feed", "en-US", [
        ("/et/us/gang-charged-5900001", "Gang members charged in three states", TEXT_EN, DAY, epoch_page),
        ("/et/us/library-budget-5900002", "Council approves library budget", TEXT_OFF_EN, DAY, epoch_page)]),
    "epochtimes-world": ("/et/world/feed", "en-US", [
        ("/et/world/fentanyl-border-5900003", "Fentanyl seized at border crossing", TEXT_FENTANYL_EN, DAY,
         epoch_page)]),
    "globalnews": ("/gn/feed/", "en-US", [
        ("/gn/news/11900001/fentanyl-seized/", "Fentanyl seized at the border", TEXT_FENTANYL_EN, DAY,
         globalnews_page)]),  # (+ the saved real page, off the beat: counted as unmatched)
    "lapresse-justice": ("/lp/actualites/justice-et-faits-divers/rss", "fr-CA", [
        ("/lp/actualites/justice-et-faits-divers/2026-11-18/saisie.php", "Saisie de fentanyl à Montréal", TEXT_FR, DAY,
         lapresse_page)]),
    "radiocanada-justice": ("/rc/rss/92411", "fr-CA", [
        ("/rc/nouvelle/2101234/saisie-fentanyl", "Saisie de 25 kg de fentanyl", TEXT_FR, DAY,
         lambda t, p, d: generic_news_page(t, p, d, "fr"))]),
    "eluniversal": ("/eu/arc/outboundfeeds/rss/", "es", [
        ("/eu/nacion/detienen-tren-de-aragua/", "Detienen a integrantes del Tren de Aragua", TEXT_ES, DAY,
         lambda t, p, d: generic_news_page(t, p, d, "es"))]),
    "proceso": ("/pr/rss/feed.html", "es", [
        ("/pr/nacional/2026/11/18/tren-de-aragua/", "Caen cuatro del Tren de Aragua", TEXT_ES, 2 * DAY,
         lambda t, p, d: generic_news_page(t, p, d, "es"))]),
    "lajornada-politica": ("/lj/rss/politica.xml", "es-mx", [
        ("/lj/2026/11/18/politica/008n1pol", "Detienen a cuatro del Tren de Aragua", TEXT_ES, DAY,
         lambda t, p, d: generic_news_page(t, p, d, "es"))]),
}
WHITEHOUSE = [  # stored from the feed's content:encoded: the pages are served but must never be fetched
    ("/wh/briefings-statements/2026/11/trilateral-fentanyl-committee/", "Trilateral Fentanyl Committee Meets",
     TEXT_FENTANYL_EN, DAY),
    ("/wh/briefings-statements/2026/11/library-week/", "Proclamation on National Library Week", [
        *TEXT_OFF_EN, "The proclamation asks every American to visit a local library this week and to thank the librarians who "
        "serve their communities all year round."], DAY),
    # (only in the briefings feed)
    ("/wh/briefings-statements/2026/11/gang-designation/", "Statement on the Designation of a Gang", TEXT_EN, 2 * DAY),
]


def _lines(text: object, title: str) -> list[str]:
    lines = str(text).splitlines()
    return lines[1:] if lines and lines[0] == title else lines  # trafilatura alone keeps the headline


def build(site: Site) -> dict[str, dict[str, Any]]:
    """Serve every replica; return the per-entry overrides (the local URL, and `enabled` for shipped-off ones)."""
    over: dict[str, dict[str, Any]] = {}
    for name, (path, lang, stories) in FEEDS.items():
        items = []
        for spath, title, paras, ago, page in stories:
            assert page is not None
            site.add(spath, page(title, paras, iso(NOW - ago)))
            items.append({"title": title, "link": site.url(spath), "pubDate": rfc822(NOW - ago),
                          "description": paras[0][:80]})
        if name == "globalnews":
            real, _real_url, expected = globalnews_saved()
            site.add("/gn/news/11862251/russia-missile-attack-kyiv-ukraine/", real)
            items.append({"title": str(expected["title"]), "pubDate": rfc822(NOW - DAY),
                          "link": site.url("/gn/news/11862251/russia-missile-attack-kyiv-ukraine/")})
        site.add(path, rss_full(items, title=name, language=lang), content_type="application/rss+xml")
        over[name] = {"url": site.url(path)}
    # Global News's news sitemap: one story, and a sponsored /the-curator/ page that is never fetched.
    site.add("/gn/news/11900002/tda-charges/", globalnews_page("Gang members charged in Ontario", TEXT_EN, iso(NOW - DAY)))
    site.add("/gn/the-curator/best-mattresses/", globalnews_page("The best mattresses", TEXT_OFF_EN, iso(NOW - DAY)))
    news_ns = "http://www.google.com/schemas/sitemap-news/0.9"
    urls = "".join(
        f"<url><loc>{site.url(p)}</loc><news:news><news:publication><news:name>Global News</news:name>"
        f"<news:language>en</news:language></news:publication><news:publication_date>{iso(NOW - DAY)}"
        f"</news:publication_date><news:title>{t}</news:title></news:news></url>"
        for p, t in (("/gn/news/11900002/tda-charges/", "Gang members charged in Ontario"),
                     ("/gn/the-curator/best-mattresses/", "The best mattresses")))
    site.add("/gn/news-sitemap.xml", f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/'
             f'schemas/sitemap/0.9" xmlns:news="{news_ns}">{urls}</urlset>', content_type="application/xml")
    over["globalnews-sitemap"] = {"url": site.url("/gn/news-sitemap.xml"), "enabled": True}
    # The White House: full articles in the feed (with WordPress's footer line), pages never fetched.
    wh_items = []
    for spath, title, paras, ago in WHITEHOUSE:
        site.add(spath, whitehouse_page(title, paras, iso(NOW - ago)))
        content = "".join(f"<p>{p}</p>" for p in paras) + f"<p>The post {title} appeared first on The White House.</p>"
        wh_items.append({"title": title, "link": site.url(spath), "pubDate": rfc822(NOW - ago), "content": content,
                         "description": paras[0][:60] + " [&#8230;]"})
    site.add("/wh/news/feed/", rss_full(wh_items[:2], title="The White House", language="en-US"),
             content_type="application/rss+xml")
    site.add("/wh/briefings-statements/feed/", rss_full(wh_items[2:], title="The White House", language="en-US"),
             content_type="application/rss+xml")
    over["whitehouse-news"] = {"url": site.url("/wh/news/feed/")}
    over["whitehouse-briefings"] = {"url": site.url("/wh/briefings-statements/feed/"), "enabled": True}
    # The saved real whitehouse.gov listing, its links pointed here; one page built per link.
    listing = saved_listing("whitehouse_news_listing_2025-01.html").replace("https://www.whitehouse.gov/", "/whl/")
    site.add("/whl/news/", listing)
    site.add("/whl/news/page/2/", "<html><body><ul class='wp-block-post-template'></ul></body></html>")
    for n, href in enumerate(sorted(set(re.findall(r'href="(/whl/(?:briefings-statements|presidential-actions)/[^"]+)"',
                                                   listing)))):
        paras = TEXT_EN if n == 0 else TEXT_OFF_EN
        site.add(href, whitehouse_page(f"White House listing item {n}", paras, iso(NOW - DAY)))
    over["whitehouse-listing"] = {"url": site.url("/whl/news/"), "enabled": True}
    # The saved real dhs.gov listing (relative links), its two releases built.
    from localsite import CORPUS

    dhs = (CORPUS / "agencies" / "dhs_newsroom_listing_2026.html").read_text(encoding="utf-8")
    site.add("/news-releases", dhs)
    site.add("/news/2026/07/31/dhs-announces-addition-43-companies-uflpa-entity-list",
             dhs_page("DHS Adds Companies to Entity List", TEXT_OFF_EN, "July 31, 2026"))
    site.add("/news/2026/07/30/ice-asks-south-carolina-not-release-illegal-alien-charged-fatal-hit-and-run-killed",
             dhs_page("Fentanyl Smuggler Arrested at the Border", TEXT_FENTANYL_EN, "July 30, 2026"))
    over["dhs-news"] = {"url": site.url("/news-releases"), "since": "2026-07-01"}
    # The saved real gob.mx listing (relative links): the SSPC entry's selectors on the CMS every office shares.
    gob = saved_listing("gobmx_sep_prensa_listing_2025-11.html")
    site.add("/sep/archivo/prensa", gob)
    for n, href in enumerate(sorted(set(re.findall(r'href="(/sep/prensa/[^"?]+)', gob)))):
        site.add(href, generic_news_page(f"Boletín {n}", TEXT_ES if n == 0 else TEXT_OFF_EN, "2025-11-25T18:21:00Z",
                                         "es"))
    over["sspc-prensa"] = {"url": site.url("/sep/archivo/prensa"), "enabled": True, "since": "2025-11-01"}
    # The DOJ API and RSS feed.
    site.api_path = "/api/v1/press_releases.json"
    site.api_records = [api_record_2024(
        "Tren de Aragua Leader Extradited to the United States", site.url("/opa/pr/tda-leader-extradited"),
        TEXT_EN, date=NOW - DAY, changed=NOW - DAY, number="26-555", topics=["Transnational Organized Crime"])]
    site.add("/news/rss", rss_full([{"title": "Fentanyl Distributor Sentenced", "link": site.url("/opa/pr/fent"),
                                     "pubDate": rfc822(NOW - DAY), "description": " ".join(TEXT_FENTANYL_EN)}],
                                   title="Justice News", language="en"), content_type="application/rss+xml")
    over["doj-api"] = {"url": site.url("/api/v1/press_releases.json")}
    over["doj-news"] = {"url": site.url("/news/rss")}
    return over


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        yield s


def test_every_feed_and_listing_entry_crawled_from_a_local_replica(
    site: Site, database_url: str, tmp_path: Path
) -> None:
    overrides = build(site)
    config = catalogue_config(tmp_path / "c.yaml", database_url, overrides)
    proc = bw(config, "crawl", "--no-alerts", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in overrides:
        assert re.search(rf"^{re.escape(name)}: ok: [1-9]\d* new", proc.stdout, re.M), (name, proc.stdout)
    items = stored(database_url)
    day_ago = datetime.fromtimestamp(NOW - DAY, UTC)

    def check(path: str, source: str, title: str, paras: list[str], lang: str, published: datetime | None) -> None:
        item = items.get(path)
        assert item is not None, (source, path, sorted(items))
        assert item["source"] == source and item["title"] == title and item["language"] == lang, item
        assert _lines(item["text"], title) == paras, (source, item["text"])
        if published is not None:
            stamp = item["published"]
            assert isinstance(stamp, datetime) and stamp.replace(tzinfo=UTC) == published, (source, stamp)

    for name, (_path, _lang, stories) in FEEDS.items():
        language = next(e["language"] for e in catalogue_entries() if e["name"] == name)
        for spath, title, paras, ago, _page in stories:
            if paras is TEXT_OFF_EN:
                continue
            check(spath, name, title, paras, language, datetime.fromtimestamp(NOW - ago, UTC))
    # general outlets keep what matches; the rest is counted and recorded, not stored
    assert "/et/us/library-budget-5900002" not in items
    assert "/gn/news/11862251/russia-missile-attack-kyiv-ukraine/" not in items
    left = unmatched(database_url)
    assert {"/et/us/library-budget-5900002", "/gn/news/11862251/russia-missile-attack-kyiv-ukraine",
            "/wh/briefings-statements/2026/11/library-week"} <= left
    assert re.search(r"^globalnews: ok: 1 new.*1 matched no topic \(not kept\)", proc.stdout, re.M)

    # The news sitemap: its story stored, the sponsored section never fetched.
    check("/gn/news/11900002/tda-charges/", "globalnews-sitemap", "Gang members charged in Ontario", TEXT_EN, "en",
          day_ago)
    assert site.served("/gn/the-curator/best-mattresses/") == 0
    assert re.search(r"^globalnews-sitemap: ok: 1 new.*1 excluded by pattern", proc.stdout, re.M)

    # The White House: stored from the feed, WordPress's footer dropped, the pages never fetched.
    for (wh_path, wh_title, wh_paras, ago), source in zip(WHITEHOUSE[::2], ("whitehouse-news", "whitehouse-briefings"),
                                                          strict=True):
        check(wh_path, source, wh_title, wh_paras, "en", datetime.fromtimestamp(NOW - ago, UTC))
    for spath, *_ in WHITEHOUSE:
        assert site.served(spath) == 0
    assert "stored from the feed" in proc.stdout

    # Listings made from the saved real pages: the entries' selectors found the links, the rules the text.
    whl = {p: i for p, i in items.items() if i["source"] == "whitehouse-listing"}
    assert len(whl) == 1
    [(whl_path, whl_item)] = whl.items()
    assert whl_item["title"] == "White House listing item 0" and _lines(whl_item["text"], "") == TEXT_EN
    assert len(left & {p.rstrip("/") for p in site.pages if p.startswith("/whl/") and p != whl_path}) == 8
    check("/news/2026/07/30/ice-asks-south-carolina-not-release-illegal-alien-charged-fatal-hit-and-run-killed",
          "dhs-news", "Fentanyl Smuggler Arrested at the Border", TEXT_FENTANYL_EN, "en",
          datetime(2026, 7, 30, tzinfo=UTC))
    check("/news/2026/07/31/dhs-announces-addition-43-companies-uflpa-entity-list",  # keep: all
          "dhs-news", "DHS Adds Companies to Entity List", TEXT_OFF_EN, "en", datetime(2026, 7, 31, tzinfo=UTC))
    sspc = {p: i for p, i in items.items() if i["source"] == "sspc-prensa"}
    assert len(sspc) == 9  # keep: all
    assert any(_lines(i["text"], str(i["title"])) == TEXT_ES and i["language"] == "es" for i in sspc.values())

    # DOJ: the API's full body, the feed's text.
    check("/opa/pr/tda-leader-extradited", "doj-api", "Tren de Aragua Leader Extradited to the United States",
          TEXT_EN, "en", day_ago)
    fent = items["/opa/pr/fent"]
    assert fent["source"] == "doj-news" and fent["language"] == "en"
    assert str(fent["text"]) == " ".join(TEXT_FENTANYL_EN)

    # A second pass fetches none of what the first read (unmatched pages included).
    site.reset_counts()
    again = bw(config, "crawl", "--no-alerts", timeout=300)
    assert again.returncode == 0, again.stderr
    article_paths = {p for p in site.pages if not p.endswith(("feed/", "rss", ".xml", ".html", "/news/",
                                                              "/news-releases", "/prensa", "92411", "166",
                                                              "/page/2/", "sitemap.xml"))}
    fetched = {p for (p, status) in site.hits if status == 200 and p in article_paths}
    assert not fetched, fetched


def _feed_spider(**keys: Any) -> Any:
    from datetime import timedelta

    from crawler.config import FeedSource
    from crawler.fetch.spiders.feed import FeedSpider
    from crawler.passes.context import PassContext

    source = FeedSource(name="wh", kind="feed", url="https://www.whitehouse.gov/news/feed/", **keys)
    now = datetime.now(UTC)
    ctx = PassContext(source="wh", now=now, since=now - timedelta(days=30), revisit=timedelta(days=3),
                      first_pass=True)
    return FeedSpider(source, ctx)


@pytest.mark.parametrize("full", [True, False])
def test_full_text_entries_are_stored_from_the_feed_unless_turned_off(full: bool) -> None:
    import scrapy
    from scrapy.http import TextResponse

    from pipelines.items import PAGE_TEXT, Article

    body = rss_full([
        {"title": "Whole", "link": "https://www.whitehouse.gov/a/", "pubDate": rfc822(NOW - DAY),
         "content": "".join(f"<p>{p}</p>" for p in TEXT_FENTANYL_EN)},
        {"title": "Cut", "link": "https://www.whitehouse.gov/b/", "pubDate": rfc822(NOW - DAY),
         "content": "".join(f"<p>{p}</p>" for p in TEXT_FENTANYL_EN) + "<p>Read more</p>"},
    ], title="The White House", language="en-US").encode()
    spider = _feed_spider(full_text=full, keep="matching")
    response = TextResponse("https://www.whitehouse.gov/news/feed/", body=body, encoding="utf-8",
                            request=scrapy.Request("https://www.whitehouse.gov/news/feed/"))
    out = list(spider.parse_feed(response))
    articles = [o for o in out if isinstance(o, Article)]
    requests = [o.url for o in out if isinstance(o, scrapy.Request)]
    if full:
        [article] = articles
        assert article.url == "https://www.whitehouse.gov/a/" and article.authority == PAGE_TEXT
        assert article.text is not None and article.text.splitlines() == TEXT_FENTANYL_EN
        assert article.keep == "matching" and article.language == "en" and article.title == "Whole"
        assert requests == ["https://www.whitehouse.gov/b/"]  # cut short: its page is fetched
        assert spider.ctx.tally["from_feed"] == 1
    else:
        assert not articles and requests == ["https://www.whitehouse.gov/a/", "https://www.whitehouse.gov/b/"]
