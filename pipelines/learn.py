"""Learned main-content targeting: find, per host, the element that holds the article on its template.

Pages of one site share a template. After a few full extractions of a host's pages, the element that holds
the extracted text (the smallest container holding nearly all of it) is named by a CSS path of stable ids and
classes (``div#main > article.post``); once the same path has been found on ``LEARN_AFTER`` pages it becomes
the host's rule, and the host's next pages hand only that element to trafilatura. A new rule's first page is
extracted both ways and compared (its probation): finding a container costs a walk down the tree, not a
second extraction, so a host with a page or two (most news outlets in a crawl) pays little for being looked at.
Worker processes do the finding and the checking (``container_path``, ``agreement``); the parent process
(``Learner``, one per pass, fed by ``WorkerPool``) keeps the rules, decides which pages are verified, and drops
a rule whose text disagrees with the full page's.

A rule written by a person (a source's ``content:``, the built-in ``SITE_RULES``) always wins: a host where
one applied is never learned.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines.canonical import host_of

# The same container path found on this many full extractions of a host makes it the host's rule.
LEARN_AFTER = 3
# A targeted page out of this many is also extracted in full and the two texts compared.
VERIFY_EVERY = 10
# Templates per host kept at once (a site with an article and a video template has two).
MAX_RULES = 3
# Targeted text holding less than this share of the full text's words disagrees with it.
AGREEMENT = 0.9
# Text of an element that is not the article's: shorter than this (characters) is suspect.
MIN_TEXT = 200
# The container may hold this many times the extracted text's characters (captions, bylines, share links…).
MAX_SPREAD = 3.0
# Full extractions of a host without finding a container twice the same: stop looking (until a rule is dropped).
GIVE_UP = 12
# Lines of the extracted text looked for in the page (at most, spread through the text).
SAMPLES = 12
# The container holds at least this share of the sampled lines.
COVERAGE = 0.9

_WS = re.compile(r"\s+")
_VOLATILE = re.compile(r"\d{3,}|[0-9a-f]{8,}")  # ids and classes that change per page (post-12345, hashes)
_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=1024)
def css(selector: str) -> Any:
    """A CSS selector compiled once (``el.cssselect(s)`` translates it to XPath on every call: a third of the
    CPU of extracting a page through its main element). Call the result on an element: its matches."""
    from lxml.cssselect import CSSSelector

    return CSSSelector(selector, translator="html")


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


def _samples(text: str) -> list[str]:
    lines = [_norm(line)[:80] for line in text.splitlines() if len(line.strip()) >= 40]
    if len(lines) <= SAMPLES:
        return lines
    step = len(lines) / SAMPLES
    return [lines[int(i * step)] for i in range(SAMPLES)]


def _stable(token: str) -> bool:
    return bool(token) and not _VOLATILE.search(token) and re.fullmatch(r"[A-Za-z_][\w-]*", token) is not None


def _steps(el: Any) -> list[str]:
    """CSS steps naming ``el`` alone, most general first: its id, one of its classes, all of them, its tag."""
    tag = el.tag if isinstance(el.tag, str) else "*"
    ident = (el.get("id") or "").strip()
    classes = sorted(c for c in (el.get("class") or "").split() if _stable(c))
    steps = [f"{tag}#{ident}"] if _stable(ident) else []
    steps += [f"{tag}.{c}" for c in classes]
    if len(classes) > 1:
        steps.append(tag + "".join(f".{c}" for c in classes))
    steps.append(tag)
    return steps


def selector_of(tree: Any, el: Any) -> str | None:
    """The shortest CSS selector naming ``el`` alone in ``tree``: its own id or class, else under one of its
    ancestors' (up to four levels up); None when no such selector is short (the template names nothing)."""
    def unique(selector: str) -> bool:
        try:
            found = css(selector)(tree)
        except Exception:  # a class that is not a CSS identifier after all
            return False
        return len(found) == 1 and found[0] is el

    own = _steps(el)
    for step in own[:-1]:
        if unique(step):
            return step
    node = el.getparent()
    for _ in range(4):
        if node is None or not isinstance(node.tag, str) or node.tag in ("body", "html"):
            return None
        for outer in _steps(node)[:-1]:
            for step in own:
                if unique(f"{outer} {step}"):
                    return f"{outer} {step}"
        node = node.getparent()
    return None


def container_path(tree: Any, text: str) -> str | None:
    """The selector of the smallest element of ``tree`` holding the extracted ``text`` and little else, or
    None when there is none (the text is spread over the page, or too short to tell)."""
    samples = _samples(text)
    if len(samples) < 2:
        return None
    body = tree.find("body") if tree.tag == "html" else tree
    if body is None:
        return None
    need = COVERAGE * len(samples)
    node = body
    while True:
        nxt = None
        for child in node:
            if not isinstance(child.tag, str) or child.tag in ("script", "style", "noscript", "template"):
                continue
            content = _norm(child.text_content())
            if sum(s in content for s in samples) >= need:
                nxt = child
                break
        if nxt is None:
            break
        node = nxt
    if node is body:
        return None
    size = len(_WS.sub("", node.text_content()))
    if size > MAX_SPREAD * max(len(_WS.sub("", text)), 1):
        return None
    return selector_of(tree, node)


def _words(text: str) -> Counter[str]:
    return Counter(w.lower() for w in _WORD.findall(text))


def agreement(targeted: str, full: str) -> float:
    """The share of the full text's words that the targeted text holds (1.0 when the full text is empty)."""
    want = _words(full)
    total = sum(want.values())
    if not total:
        return 1.0
    got = _words(targeted)
    return sum(min(n, got[w]) for w, n in want.items()) / total


@dataclass(frozen=True)
class LearnReport:
    """What a worker tells the learner about one page."""

    person: bool = False  # a rule written by a person applied: this host is never learned
    used: str | None = None  # the learned selector whose element was extracted
    candidate: str | None = None  # the container found from a full extraction
    verified: bool | None = None  # targeted text compared with the full page's: True agreed, False did not
    score: float | None = None  # the agreement when verified


@dataclass
class LearnedRule:
    host: str
    selector: str
    learned: datetime | None = None
    pages: int = 0  # pages extracted through it
    checks: int = 0  # verifications it passed
    dirty: bool = False


@dataclass
class _Host:
    rules: list[LearnedRule] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)  # candidate selectors found so far
    person: bool = False
    since_check: int = 0
    tries: int = 0  # full extractions looked at since the host's last new rule


class Learner:
    """The learned rules of every host, in the parent process (one event loop thread: no locks)."""

    def __init__(self, rules: list[LearnedRule] | None = None) -> None:
        self._hosts: dict[str, _Host] = {}
        self.dropped: list[tuple[str, str]] = []  # (host, selector) dropped this pass, for the store
        for rule in rules or []:
            self._host(rule.host).rules.append(rule)

    def _host(self, host: str) -> _Host:
        return self._hosts.setdefault(host, _Host())

    def rules(self) -> list[LearnedRule]:
        return [r for h in self._hosts.values() for r in h.rules]

    def plan(self, url: str) -> tuple[tuple[str, ...], bool, bool]:
        """The learned selectors to try on this page, whether to verify it against a full extraction, and
        whether to look for its container (to learn) when no selector fits."""
        h = self._hosts.get(host_of(url))
        if h is None:
            return (), False, True
        if h.person:
            return (), False, False
        learn = h.tries < GIVE_UP
        if not h.rules:
            return (), False, learn
        h.since_check += 1
        verify = h.since_check >= VERIFY_EVERY
        if verify:
            h.since_check = 0
        return tuple(r.selector for r in h.rules), verify, learn

    def unproven(self, url: str) -> tuple[str, ...]:
        """The host's rules never used yet (on probation): a page targeted through one is extracted whole too
        and compared (candidates are counted without extracting their container alone, so this is where a
        rule is first checked)."""
        h = self._hosts.get(host_of(url))
        return tuple(r.selector for r in h.rules if r.pages == 0 and r.checks == 0) if h is not None else ()

    def observe(self, url: str, report: LearnReport | None, when: datetime) -> None:
        if report is None:
            return
        h = self._host(host_of(url))
        if report.person:
            self.dropped += [(r.host, r.selector) for r in h.rules]
            h.person, h.rules, h.seen = True, [], Counter()
            return
        rule = next((r for r in h.rules if r.selector == report.used), None) if report.used else None
        if rule is not None:
            rule.pages += 1
            rule.dirty = True
            if report.verified is True:
                rule.checks += 1
            elif report.verified is False:  # the template changed under it: drop it, learn again
                h.rules.remove(rule)
                h.seen.pop(rule.selector, None)
                h.tries = 0
                self.dropped.append((rule.host, rule.selector))
        if report.used is None:
            h.tries += 1
        if report.candidate and not any(r.selector == report.candidate for r in h.rules):
            h.seen[report.candidate] += 1
            if h.seen[report.candidate] >= LEARN_AFTER:
                del h.seen[report.candidate]
                if len(h.rules) >= MAX_RULES:  # the least used template gives way
                    old = min(h.rules, key=lambda r: r.pages)
                    h.rules.remove(old)
                    self.dropped.append((old.host, old.selector))
                h.rules.append(LearnedRule(host_of(url), report.candidate, when, dirty=True))
                h.tries = 0


# -- the store ------------------------------------------------------------------------------------------
def load_rules(db: Any) -> list[LearnedRule]:
    """The learned rules stored by earlier passes."""
    from sqlalchemy import select

    from pipelines.models import LearnedRule as Row

    with db.read() as s:
        return [LearnedRule(r.host, r.selector, r.learned, r.pages, r.checks)
                for r in s.scalars(select(Row).order_by(Row.host, Row.learned))]


def save_rules(db: Any, learner: Learner, now: datetime) -> None:
    """Store what the pass learned: new and used rules written, dropped ones deleted."""
    from sqlalchemy import delete

    from pipelines.models import LearnedRule as Row

    keep = {(r.host, r.selector) for r in learner.rules()}
    with db.write() as s:
        for host, selector in learner.dropped:
            if (host, selector) not in keep:
                s.execute(delete(Row).where(Row.host == host, Row.selector == selector))
        for rule in learner.rules():
            if rule.dirty:
                s.merge(Row(host=rule.host, selector=rule.selector, learned=rule.learned or now, pages=rule.pages,
                            checks=rule.checks, updated=now))
                rule.dirty = False
    learner.dropped.clear()


def rules_by_host(db: Any) -> dict[str, list[LearnedRule]]:
    """Every stored rule, by host (for ``borderwatch sources`` and ``show``)."""
    out: dict[str, list[LearnedRule]] = {}
    for rule in load_rules(db):
        out.setdefault(rule.host, []).append(rule)
    return out
