"""Learned main-content targeting (pipelines/learn.py): learned on real pages of one outlet, checked against the
whole page, dropped and learned again when a site changes its template (a real crawl of a local site), kept in
the database between passes, and never used where a person's rule applies."""

from __future__ import annotations

import gzip
import html as htmllib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import bw, items_json, write_config
from localsite import Site, serve
from sqlalchemy import select

from pipelines.db import Database
from pipelines.extract import extract
from pipelines.learn import LEARN_AFTER, LearnedRule, Learner, agreement, load_rules, save_rules
from pipelines.models import LearnedRule as Row

WHEN = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _through(learner: Learner, url: str, page: str, content: str | None = None) -> Any:
    """One page as the worker pool handles it: plan, extract, observe."""
    learned, verify, learn = learner.plan(url) if not content else ((), False, False)
    doc = extract(page, url, content, learned, verify, learn, learner.unproven(url))
    learner.observe(url, doc.learn, WHEN)
    return doc


def _outlet(corpus: Path, country: str, outlet: str) -> list[tuple[str, str]]:
    folder = corpus / "news_pages" / country
    meta = json.loads((folder / "meta.info").read_text(encoding="utf-8"))
    pages = sorted(folder.glob(f"{outlet}_*.html.gz"))
    return [(meta[p.name]["url"], gzip.decompress(p.read_bytes()).decode("utf-8", "replace")) for p in pages]


def test_learned_on_real_pages_of_one_outlet(corpus: Path) -> None:
    pages = _outlet(corpus, "de", "BR")  # three pages of Bayerischer Rundfunk, two years apart
    assert len(pages) >= LEARN_AFTER
    learner = Learner()
    full = [_through(learner, url, page).text for url, page in pages]
    assert [r.selector for r in learner.rules()] == ["section#articlebody"]
    assert learner.rules()[0].host == "br.de"
    # The host's next pages go through the element alone, and say the same as the whole page.
    for (url, page), whole in zip(pages, full, strict=True):
        learned, _verify, learn = learner.plan(url)
        assert learned == ("section#articlebody",)
        doc = extract(page, url, None, learned, True, learn)
        assert doc.targeted and doc.learn is not None and doc.learn.verified is True
        assert agreement(doc.text, whole) >= 0.9 and len(doc.text) > 1000


def test_no_rule_where_the_pages_share_no_container(corpus: Path) -> None:
    # Deutsche Welle's three pages span two redesigns (one with generated class names): no container is found
    # twice, nothing is learned, and each text comes from the whole page.
    learner = Learner()
    for url, page in _outlet(corpus, "de", "DW"):
        assert _through(learner, url, page).text
    assert learner.rules() == []


# -- a county press office's site, in two templates -------------------------------------------------------
NAV = "".join(f"<li><a href='/section/{n}'>Section {n} of the county web site</a></li>" for n in range(12))
RELATED = "".join(f"<li><a href='/related/{n}'>An older release about road works in district {n}</a></li>"
                  for n in range(8))


def _paragraphs(n: int) -> list[str]:
    return [f"Release {n}, paragraph {i}: the county drug task force reports that shipment {n * 100 + i} of "
            f"counterfeit pills was stopped at the northern crossing after a joint inspection." for i in range(10)]


def old_template(title: str, paragraphs: Sequence[str]) -> str:
    body = "".join(f"<p>{htmllib.escape(p)}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html lang='en'><head><title>{htmllib.escape(title)}</title></head><body>"
            f"<header><ul class='menu'>{NAV}</ul></header><div id='page'><div class='region-content'>"
            f"<h1>{htmllib.escape(title)}</h1><div class='release-body'>{body}</div>"
            f"<div class='share'>Share this release by mail or on social media</div></div>"
            f"<aside class='sidebar'><h2>Related releases</h2><ul>{RELATED}</ul></aside></div>"
            f"<footer><p>County Sheriff's Office, 100 Main Street. All rights reserved.</p></footer></body></html>")


def new_template(title: str, paragraphs: Sequence[str]) -> str:
    """The redesign: ``div.release-body`` is now a one-line summary box; the release is in a section."""
    body = "".join(f"<p>{htmllib.escape(p)}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html lang='en'><head><title>{htmllib.escape(title)}</title></head><body>"
            f"<nav class='top'><ul>{NAV}</ul></nav><main class='layout'><h1>{htmllib.escape(title)}</h1>"
            f"<div class='release-body'><p>In brief: pills seized.</p></div>"
            f"<section class='release-text'>{body}</section>"
            f"<div class='related'><h2>More news</h2><ul>{RELATED}</ul></div></main>"
            f"<footer><p>County Sheriff's Office. Accessibility. Privacy.</p></footer></body></html>")


def _publish(site: Site, pages: dict[str, str]) -> None:
    for path, page in pages.items():
        site.add(path, page)
    links = "".join(f"<li><h3><a href='{p}'>{p}</a></h3></li>" for p in sorted(site.pages) if p.startswith("/r/"))
    site.add("/releases", f"<html><body><ul>{links}</ul></body></html>")


@pytest.fixture
def county() -> Iterator[Site]:
    s = Site()
    with serve(s):
        yield s


def _rules(url: str) -> dict[str, Row]:
    db = Database(url)
    try:
        with db.read() as s:
            return {r.selector: r for r in s.scalars(select(Row))}
    finally:
        db.dispose()


def test_template_change_drops_the_rule_and_learns_again(county: Site, sqlite_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "borderwatch.yaml", {
        "database": sqlite_url,
        "crawl": {"download_delay": 0, "extract_workers": 1, "timeout": 10},
        "sources": [{"name": "county", "kind": "listing", "url": county.url("/releases"), "links": "h3 a"}],
    })
    paragraphs: dict[str, list[str]] = {}

    def add(kind: str, numbers: range) -> None:
        pages = {}
        for n in numbers:
            paragraphs[f"/r/{n}"] = _paragraphs(n)
            build = old_template if kind == "old" else new_template
            pages[f"/r/{n}"] = build(f"Release {n}", paragraphs[f"/r/{n}"])
        _publish(county, pages)

    def crawl() -> None:
        ran = bw(config, "crawl", "--no-alerts")
        assert ran.returncode == 0, ran.stderr
        assert "Traceback" not in ran.stderr
        items = {i["url"].rsplit("/r/", 1)[1]: i for i in items_json(config)}
        assert len(items) == len(paragraphs)
        for n, item in items.items():  # no article loses text, whichever way it was extracted
            assert all(p in item["text"] for p in paragraphs[f"/r/{n}"]), n
            assert "Related releases" not in item["text"] and "Section 3 of the county" not in item["text"]

    add("old", range(1, 7))
    crawl()
    rules = _rules(sqlite_url)
    assert set(rules) == {"div.release-body"} and rules["div.release-body"].host == "127.0.0.1"

    # The site is redesigned: the learned element still exists but holds a summary. Each new page's text looks
    # wrong through it, the whole page is extracted, the rule is dropped and the new template learned.
    add("new", range(7, 13))
    crawl()
    rules = _rules(sqlite_url)
    assert set(rules) == {"section.release-text"}
    shown = bw(config, "sources")
    assert "county: learned main content on 127.0.0.1: section.release-text" in shown.stdout, shown.stdout

    # Both templates at once (old releases reposted): the new rule is used, the old template learned again.
    add("new", range(13, 17))
    add("old", range(17, 21))
    crawl()
    rules = _rules(sqlite_url)
    assert set(rules) == {"section.release-text", "div.release-body"}
    assert rules["section.release-text"].pages >= 4  # the loaded rule targeted this pass's new-template pages
    item = items_json(config)[0]
    shown = bw(config, "show", str(item["id"]))
    assert "learned main content on 127.0.0.1: section.release-text" in shown.stdout, shown.stdout


def test_a_new_rule_is_checked_on_its_first_page_then_every_tenth() -> None:
    learner = Learner()
    for n in range(LEARN_AFTER):  # full extractions: the container is found, not extracted a second time
        doc = _through(learner, f"https://county.example/r/{n}", old_template(f"Release {n}", _paragraphs(n)))
        assert doc.learn is not None and doc.learn.candidate == "div.release-body" and doc.learn.verified is None
    assert [r.selector for r in learner.rules()] == ["div.release-body"]
    # Its first page is extracted both ways and compared (the rule's probation), the next ones through it alone.
    doc = _through(learner, "https://county.example/r/5", old_template("Release 5", _paragraphs(5)))
    assert doc.targeted and doc.learn is not None and doc.learn.verified is True
    assert learner.unproven("https://county.example/r/6") == ()
    plans = [learner.plan(f"https://county.example/r/{n}")[1] for n in range(6, 16)]
    assert plans == [False] * 8 + [True, False]  # (the 9th targeted page after the first one's check)


def test_an_unused_second_rule_does_not_make_every_page_a_check() -> None:
    # Two templates learned; the second's pages stop coming: the first's pages are not verified for its sake.
    learner = Learner([LearnedRule("county.example", "div.release-body", WHEN, pages=5, checks=1),
                       LearnedRule("county.example", "section.release-text", WHEN)])
    assert learner.unproven("https://county.example/r/1") == ("section.release-text",)
    doc = _through(learner, "https://county.example/r/1", old_template("Release 1", _paragraphs(1)))
    assert doc.learn is not None and doc.learn.used == "div.release-body" and doc.learn.verified is None
    page = new_template("Release 2", _paragraphs(2)).replace(
        "<div class='release-body'><p>In brief: pills seized.</p></div>", "")
    doc = _through(learner, "https://county.example/r/2", page)
    assert doc.learn is not None and doc.learn.used == "section.release-text" and doc.learn.verified is True


def test_an_empty_learned_container_falls_back_to_the_whole_page() -> None:
    url = "https://county.example/r/1"
    learner = Learner([LearnedRule("county.example", "div.release-body", WHEN)])
    page = new_template("Release 1", _paragraphs(1)).replace("<p>In brief: pills seized.</p>", "")
    doc = _through(learner, url, page)
    assert all(p in doc.text for p in _paragraphs(1))
    assert doc.learn is not None and doc.learn.verified is False and not doc.targeted
    assert learner.rules() == [] and learner.dropped == [("county.example", "div.release-body")]


def test_a_person_s_rule_is_never_overridden() -> None:
    # A source's `content:` wins over a learned rule, and the host is not learned from then on.
    url = "https://county.example/r/2"
    learner = Learner([LearnedRule("county.example", "div.release-body", WHEN)])
    page = new_template("Release 2", _paragraphs(2))
    doc = _through(learner, url, page, content="div.related")
    assert "More news" in doc.text and "shipment 200" not in doc.text
    assert doc.learn is not None and doc.learn.person
    assert learner.rules() == [] and learner.plan(url) == ((), False, False)
    # A built-in site rule (justice.gov's div.field_body) wins over a learned selector given to the worker.
    from localsite import justice_page

    justice = justice_page("Fentanyl Ring Charged", ["Five defendants were charged with running a ring."] * 3)
    doc = extract(justice, "https://www.justice.gov/opa/pr/x", None, ("div.region-content",), True, True)
    assert doc.targeted and doc.learn is not None and doc.learn.person and doc.learn.used is None


def test_rules_persist(database_url: str) -> None:
    db = Database(database_url)
    try:
        learner = Learner()
        for n in range(LEARN_AFTER):
            _through(learner, f"https://county.example/r/{n}", old_template(f"Release {n}", _paragraphs(n)))
        save_rules(db, learner, WHEN)
        again = Learner(load_rules(db))
        assert [(r.host, r.selector) for r in again.rules()] == [("county.example", "div.release-body")]
        doc = _through(again, "https://county.example/r/9", old_template("Release 9", _paragraphs(9)))
        assert doc.targeted and doc.learn is not None and doc.learn.used == "div.release-body"
        # a dropped rule is deleted from the store
        _through(again, "https://county.example/r/10", new_template("Release 10", _paragraphs(10)))
        save_rules(db, again, WHEN)
        assert load_rules(db) == []
    finally:
        db.dispose()
