"""Parsers on the real corpus: DOJ API records (both formats), justice.gov pages, bot walls, feeds."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.fetch.botwall import detect_bot_wall
from crawler.fetch.spiders.doj_api import parse_names, parse_record, parse_time
from crawler.fetch.spiders.feed import parse_feed
from pipelines.extract import PageTooComplex, extract, html_to_text


def test_api_2020_format_all_records(corpus: Path) -> None:
    data = json.loads((corpus / "justice_gov" / "api_v1_press_releases_page0_2020.json").read_text())
    articles = [parse_record(r, "doj-api") for r in data["results"]]
    assert len(articles) == 100 and all(a is not None for a in articles)
    for a, r in zip(articles, data["results"], strict=True):
        assert a is not None
        # The address shown is the API's own (www. kept: it opens); the key, for dedup only, folds it.
        assert a.url == r["url"].strip() and a.url.startswith("https://www.justice.gov/")
        assert a.key.startswith("https://justice.gov/")
        assert a.title == r["title"].strip()
        assert a.published is not None and a.published.tzinfo is not None
        assert a.text and "<p>" not in a.text and "&nbsp;" not in a.text
        assert a.doj_number is None or a.doj_number not in ("None", "")
        assert a.authority == 3
    first = articles[0]
    assert first is not None and first.doj_components == ["Interpol Washington"]
    assert first.published == datetime.fromtimestamp(1368676800, UTC)


def test_api_2024_format(corpus: Path) -> None:
    data = json.loads((corpus / "justice_gov" / "api_v1_press_release_record_2024.json").read_text())
    a = parse_record(data["results"][0], "doj-api")
    assert a is not None
    assert a.url == data["results"][0]["url"]  # the URL the API gives (this record has no www.)
    assert a.key == "https://justice.gov/usao-mn/pr/rochester-man-indicted-illegal-possession-firearm-fentanyl-trafficking"
    assert a.doj_topics == ["Drug Trafficking", "Firearms Offenses"]
    assert a.doj_components == ["USAO - Minnesota"]
    assert a.doj_number is None
    assert a.source_changed == "2024-08-07T22:06:46+00:00"
    assert a.text.splitlines()[0].startswith("ST. PAUL, Minn. – A Rochester man has been indicted")
    assert len(a.text.splitlines()) == 7


@pytest.mark.parametrize(("value", "expected"), [
    ("1723032000", datetime(2024, 8, 7, 12, 0, tzinfo=UTC)),
    (1723032000, datetime(2024, 8, 7, 12, 0, tzinfo=UTC)),
    ('<time datetime="2024-08-07T22:06:46+00:00">1723068406</time>\n', datetime(2024, 8, 7, 22, 6, 46, tzinfo=UTC)),
    ("2024-08-07T22:06:46Z", datetime(2024, 8, 7, 22, 6, 46, tzinfo=UTC)),
    ("", None), (None, None), ("None", None),
])
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ([{"uuid": "x", "name": "Drug Trafficking"}], ["Drug Trafficking"]),
    ("[{'uuid': 'b0', 'name': 'Interpol Washington'}]", ["Interpol Washington"]),
    ('[{"uuid": "b0", "name": "USAO - Texas, Southern"}]', ["USAO - Texas, Southern"]),
    ("[]", []), ("", []), (None, []), ("None", []),
])
def test_parse_names(value: object, expected: list[str]) -> None:
    assert parse_names(value) == expected


@pytest.mark.parametrize(("page", "must_include", "must_exclude"), [
    ("pr_2025_tda_extradition_main.html",
     ["On Sept. 30, the United States extradited to Chile three fugitives", "Tren de Aragua (TdA)"],
     ["Related Content", "Share on Facebook", "Office of Public Affairs", "Updated November 14, 2025", "Topics"]),
    ("pr_2025_pharmacist_main.html", [], ["Related Content", "Share on Facebook", "Updated"]),
])
def test_justice_gov_page_extraction(corpus: Path, page: str, must_include: list[str], must_exclude: list[str]) -> None:
    html = (corpus / "justice_gov" / page).read_text(encoding="utf-8")
    doc = extract(html, "https://www.justice.gov/opa/pr/x")
    assert doc.targeted and doc.title and doc.published is not None
    assert len(doc.text) > 500
    for snippet in must_include:
        assert snippet in doc.text
    for snippet in must_exclude:
        assert snippet not in doc.text
    assert doc.components and doc.topics


def test_tda_page_metadata(corpus: Path) -> None:
    html = (corpus / "justice_gov" / "pr_2025_tda_extradition_main.html").read_text(encoding="utf-8")
    doc = extract(html, "https://www.justice.gov/opa/pr/x")
    assert doc.title is not None and doc.title.startswith("United States Extradites Three Alleged Members of Tren de Aragua")
    assert doc.published == datetime(2025, 11, 14, 12, 0, tzinfo=UTC)
    assert doc.topics == ("Human Smuggling", "Violent Crime")
    assert "Criminal Division" in doc.components


def test_extract_survives_garbage() -> None:
    for junk in ("", "   ", "<html>", "\x00\x01\x02", "<?xml version='1.0' encoding='latin-1'?><a/>", "<p>" * 5000):
        doc = extract(junk, "https://example.org/x")
        # Nothing worth storing comes out of it: no word of text, no title, no date.
        assert re.search(r"\w", doc.text) is None, (junk[:20], doc.text[:80])
        assert (doc.title, doc.published, doc.author) == (None, None, None)


SENTENCE = "Federal agents seized rifles bound for Mexico at the Laredo port of entry on Tuesday. "


@pytest.mark.parametrize(("html", "reason"), [
    # every word lies deeper than libxml2's 256 levels: the parser leaves it out
    ("<html><body>" + "<div>" * 300 + f"<p>{SENTENCE * 5}</p>" + "</div>" * 300 + "</body></html>",
     "Excessive depth in document"),
    # one text node over libxml2's 10 MB
    (f"<html><body><article><p>{SENTENCE * 130_000}</p></article></body></html>", "Buffer size limit exceeded"),
])
def test_a_page_past_the_parsers_limits_is_too_complex(html: str, reason: str) -> None:
    with pytest.raises(PageTooComplex, match=reason):
        extract(html, "https://example.org/pr/deep")


def test_a_deep_page_whose_article_the_parser_reads_is_extracted() -> None:
    html = ("<html><body><article>" + f"<p>{SENTENCE}</p>" * 5 + "</article>" + "<div>" * 300 + "x"
            + "</div>" * 300 + "</body></html>")
    assert "Laredo port of entry" in extract(html, "https://example.org/pr/deep").text


def test_html_to_text_keeps_paragraphs() -> None:
    assert html_to_text("<p>One&nbsp;two</p><p>Three<br>four</p><script>x()</script>") == "One two\nThree\nfour"


BOT_WALL = (
    b'<html><head><meta http-equiv="refresh" content="5; URL=\'/_sec/verify?provider=interstitial\'"></head>'
    b'<body><script src="/_sec/cp_challenge/ak-challenge-4-3.js"></script><div class="bm-verify"></div></body></html>'
)


@pytest.mark.parametrize(("status", "body", "blocked"), [
    (200, BOT_WALL, True),
    (403, BOT_WALL, True),
    (403, b"<html><body>Forbidden</body></html>", True),
    (503, b"<html><title>Just a moment...</title><script>window._cf_chl_opt={}</script></html>", True),
    (200, b'<html><head><meta http-equiv="refresh" content="0;url=/x"></head></html>', True),
    (200, b"<html><body><p>" + b"A real article about bm-verify tokens. " * 2000 + b"</p></body></html>", False),
    (200, b"<html><body><article><p>A short but real release.</p></article></body></html>", False),
])
def test_bot_wall_detection(status: int, body: bytes, blocked: bool) -> None:
    assert (detect_bot_wall(status, body) is not None) is blocked


def test_feed_entries_without_link_are_counted() -> None:
    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            b"<item><title>A</title><link>https://example.org/a?utm_source=rss</link>"
            b"<pubDate>Fri, 20 Nov 2026 12:00:00 +0000</pubDate><description>&lt;p&gt;Sum&lt;/p&gt;</description></item>"
            b"<item><title>No link</title></item></channel></rss>")
    entries, no_link, problem = parse_feed(feed)
    assert problem is None and no_link == 1 and len(entries) == 1
    link, hints, summary = entries[0]
    assert link == "https://example.org/a?utm_source=rss"
    assert hints["published"] == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert summary == "Sum"


def test_atom_feed() -> None:
    feed = (b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
            b'<entry><title>Comunicado</title><link href="https://example.org/es/c1"/><updated>2026-11-20T10:00:00Z</updated>'
            b"<summary>Texto</summary></entry></feed>")
    entries, no_link, problem = parse_feed(feed)
    assert (problem, no_link, [e[0] for e in entries]) == (None, 0, ["https://example.org/es/c1"])


def test_not_a_feed() -> None:
    _, _, problem = parse_feed(b"<html><body>Not a feed</body></html>")
    assert problem is not None
