"""The web UI's pure parts, table-driven: evidence highlighting, the SVG timeline, facet links."""

from __future__ import annotations

import re
from datetime import date, timedelta
from itertools import pairwise
from xml.etree import ElementTree

import pytest

from crawler.web.highlight import highlighted, spans
from crawler.web.site import _safe_next, month_filter, with_filter, without_filter
from crawler.web.timeline import TICK_ROOM, _ticks, timeline_svg


@pytest.mark.parametrize(("text", "phrases", "marked"), [
    ("Tren de Aragua members were charged.", {"tda": ["Tren de Aragua"]}, ["Tren de Aragua"]),
    ("EXTRADICIÓN de miembros", {"tda": ["extradicion"]}, ["EXTRADICIÓN"]),  # case and accents folded
    ("The TdAx group and TdA.", {"tda": ["TdA"]}, ["TdA"]),  # whole words only
    ("fentanyl-laced pills", {"fentanyl": ["fentanyl"]}, ["fentanyl"]),
    ("a fentanyl pill press", {"fentanyl": ["fentanyl", "fentanyl pill"]}, ["fentanyl pill"]),  # overlaps merge
    ("nothing here", {"tda": ["Aragua"]}, []),
    ("Straße und Aragua", {"tda": ["aragua"], "x": [""]}, ["Aragua"]),
])
def test_evidence_is_marked_where_it_occurs(text: str, phrases: dict[str, list[str]], marked: list[str]) -> None:
    html = str(highlighted(text, phrases))
    assert re.findall(r"<mark[^>]*>(.*?)</mark>", html) == marked


def test_highlighting_escapes_the_text_and_keeps_paragraphs() -> None:
    html = str(highlighted("<script>alert(1)</script> Tren de Aragua\n\nSecond & last", {"tda": ["tren de aragua"]}))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.count("<p>") == 2 and "Second &amp; last" in html
    assert 'data-topics="tda"' in html


def test_spans_name_every_topic_of_a_shared_phrase() -> None:
    assert spans("Tren de Aragua", {"tda": ["Aragua"], "other": ["Tren de Aragua"]}) == [(0, 14, ["other", "tda"])]


def _svg(bucket: str, periods: list[date], series: dict[str, list[int]]) -> ElementTree.Element:
    return ElementTree.fromstring(str(timeline_svg(bucket, periods, series, {"tda": "Tren de Aragua <TdA>"})))


def test_timeline_draws_one_bar_per_nonzero_period_with_its_count() -> None:
    periods = [date(2026, m, 1) for m in range(1, 7)]
    root = _svg("month", periods, {"tda": [1, 0, 4, 0, 0, 2], "fentanyl": [0, 0, 0, 0, 0, 0]})
    ns = "{http://www.w3.org/2000/svg}"
    bands = root.findall(f"{ns}g")
    assert [b.get("data-topic") for b in bands] == ["tda"]  # a topic with no match draws no band
    bars = bands[0].findall(f"{ns}rect")
    assert [b.find(f"{ns}title").text for b in bars] == [  # type: ignore[union-attr]
        "Tren de Aragua <TdA>, month of 2026-01: 1", "Tren de Aragua <TdA>, month of 2026-03: 4",
        "Tren de Aragua <TdA>, month of 2026-06: 2"]
    heights = [float(b.get("height", 0)) for b in bars]
    assert heights[1] == max(heights) and heights[0] < heights[2] < heights[1]
    assert root.get("role") == "img" and root.find(f"{ns}desc") is not None


def test_an_empty_timeline_draws_nothing() -> None:
    assert str(timeline_svg("week", [], {})) == ""
    assert str(timeline_svg("week", [date(2026, 1, 5)], {"tda": [0]})) == ""


@pytest.mark.parametrize("count", [1, 2, 5, 13, 27, 52, 160])
def test_axis_labels_never_collide(count: int) -> None:
    step = (640 - 160 - 10) / count
    ticks = _ticks(count, step)
    assert ticks[0] == 0 and ticks[-1] == count - 1
    assert all((b - a) * step >= TICK_ROOM for a, b in pairwise(ticks))
    if len(ticks) > 1:  # the last label ends at its bar: half a label more room before it
        assert (ticks[-1] - ticks[-2]) * step >= TICK_ROOM * 1.5
    periods = [date(2026, 1, 5) + timedelta(weeks=i) for i in range(count)]
    assert _svg("week", periods, {"tda": [1] * count}) is not None


@pytest.mark.parametrize(("q", "name", "value", "expected"), [
    ("", "topic", "tda", "topic:tda"),
    ("fentanyl", "lang", "es", "fentanyl lang:es"),
    ("fentanyl lang:en", "lang", "es", "fentanyl lang:es"),  # replaces the filter of the same name
    ('"tren de aragua" source:doj', "topic", "tda", '"tren de aragua" source:doj topic:tda'),
])
def test_facet_links_narrow_the_query(q: str, name: str, value: str, expected: str) -> None:
    assert with_filter(q, name, value) == expected
    assert without_filter(expected, name) == (q if name not in q else "fentanyl")


def test_month_facet_is_a_date_range() -> None:
    assert month_filter("fentanyl", "2026-02") == "fentanyl since:2026-02-01 until:2026-03-01"
    assert month_filter("", "2025-12") == "since:2025-12-01 until:2026-01-01"


@pytest.mark.parametrize(("target", "safe"), [
    ("/sources", "/sources"), ("/?q=a", "/?q=a"), ("//evil.example/", "/"), ("https://evil.example/", "/"),
    ("/\\evil.example", "/"), ("", "/"),
])
def test_login_only_returns_to_this_site(target: str, safe: str) -> None:
    assert _safe_next(target) == safe
