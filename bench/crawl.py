"""Benchmark: whole passes from a local server against trafilatura alone on the same pages, in the same run.

Prints pages/s, CPU per page and the peak RSS of the whole pass (the crawl process and its extraction
workers), next to trafilatura alone on the same pages (one core, default settings), for three cases:

- ``justice``: 2,000 pages (60–120 KB) on justice.gov's real template (a built-in site rule targets its body),
  through a sitemap; bodies from real DOJ releases (the corpus's API page);
- ``unknown``: 2,000 pages (60–120 KB) of a government template no rule knows, through a ``listing`` (the
  learned main-content rule of ``pipelines.learn`` is what targets it);
- ``news``: the 258 real pages of ``../shared/corpus/news_pages/`` through a sitemap, each outlet served from a
  loopback address of its own (127.0.0.2, 127.0.0.3…: one "host" per outlet, so the learner is keyed per
  host as on the web), with the mean token F1 of each stored text against the page's expected body, and the
  agreement of the text through the learned rules with the whole page's (every page extracted both ways in
  this process).

    python bench/crawl.py [--case all|justice|unknown|news] [--pages 2000] [--stages] [--content-selector]

Default settings with no per-host delay. "pages/s" counts from the command's start (process start, imports
and worker start-up included).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from localsite import Site, justice_page, serve  # noqa: E402

CORPUS = Path(os.environ.get("BORDERWATCH_CORPUS", ROOT.parent / "shared" / "corpus"))


def real_bodies() -> list[list[str]]:
    from pipelines.extract import html_to_text

    data = json.loads((CORPUS / "justice_gov" / "api_v1_press_releases_page0_2020.json").read_text())
    bodies = []
    for r in data["results"]:
        paras = [p for p in html_to_text(r.get("body") or "").splitlines() if len(p) > 40]
        if len(paras) >= 3:
            bodies.append(paras)
    return bodies


def build(site: Site, n: int) -> list[str]:
    rng = random.Random(7)
    bodies = real_bodies()
    paths = []
    for i in range(n):
        paras = list(rng.choice(bodies))
        rng.shuffle(paras)
        paras.append(f"Case number {i}: reference {rng.randrange(10**9)}.")
        size_kb = rng.randrange(60, 121)
        page = justice_page(f"Press release number {i}", paras, pad_kb=0)
        pad = max(0, size_kb * 1024 - len(page.encode())) // 1024
        page = justice_page(f"Press release number {i}", paras, pad_kb=pad)
        path = f"/pr/{i:05d}"
        site.add(path, page)
        paths.append(path)
    urls = "".join(f"<url><loc>{site.url(p)}</loc></url>" for p in paths)
    site.add("/sitemap.xml", f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"{urls}</urlset>", content_type="application/xml")
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    return paths


NAV_UNKNOWN = "".join(f"<li class='menu-item'><a href='/services/{i}'>County service number {i}: forms, fees and "
                      f"opening hours</a></li>" for i in range(40))


def unknown_page(title: str, paras: list[str], n: int, size_kb: int) -> str:
    """A county government's press release, a template no built-in rule knows: header and mega menu, a
    breadcrumb, the release in ``div.pane-release > div.release-text``, a contact box, related releases and a
    heavy footer, padded with inline styles and scripts to ``size_kb``."""
    body = "".join(f"<p>{p}</p>" for p in paras)
    related = "".join(f"<li><a href='/news/{(n + k) % 997}'>Earlier release {k}: county board agenda and minutes"
                      f"</a></li>" for k in range(10))
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title} | County of Example"
            f"</title><meta property='og:title' content='{title}'>"
            f"<meta name='dcterms.date' content='2026-11-{1 + n % 28:02d}'>@@HEAD@@</head><body class='page-node'>"
            f"<header class='site-header'><a class='logo' href='/'>County of Example</a>"
            f"<nav class='main-menu'><ul>{NAV_UNKNOWN}</ul></nav></header>"
            f"<div class='layout'><ol class='breadcrumb'><li><a href='/'>Home</a></li><li><a href='/news'>News</a>"
            f"</li></ol><div class='content-wrap'><div class='pane-release'><h1 class='release-title'>{title}</h1>"
            f"<div class='release-meta'>Published November {1 + n % 28}, 2026</div>"
            f"<div class='release-text'>{body}</div></div>"
            f"<div class='pane-contact'><h2>Media contact</h2><p>Public Information Office, 555-0100</p></div>"
            f"<div class='pane-related'><h2>Related releases</h2><ul>{related}</ul></div></div></div>"
            f"<footer class='site-footer'>@@FOOT@@<p>County of Example. Accessibility. Privacy policy.</p>"
            f"</footer></body></html>")
    from localsite import _footer_weight, _head_weight

    pad = max(0, size_kb * 1024 - len(page))
    return page.replace("@@HEAD@@", _head_weight(pad * 2 // 3)).replace("@@FOOT@@", _footer_weight(pad // 3))


def build_unknown(site: Site, n: int) -> list[str]:
    import html

    rng = random.Random(11)
    bodies = real_bodies()
    paths = []
    for i in range(n):
        paras = [html.escape(p) for p in rng.choice(bodies)]
        rng.shuffle(paras)
        paras.append(f"Case number {i}: reference {rng.randrange(10**9)}.")
        path = f"/news/release-{i:05d}"
        site.add(path, unknown_page(f"County press release number {i}", paras, i, rng.randrange(60, 121)))
        paths.append(path)
    per = 50
    chunks = [paths[k:k + per] for k in range(0, len(paths), per)]
    for k, chunk in enumerate(chunks):
        links = "".join(f"<li><h3><a href='{p}'>Release {p}</a></h3></li>" for p in chunk)
        nxt = f"<a class='next' href='/news?page={k + 1}'>Next</a>" if k + 1 < len(chunks) else ""
        site.add("/news" if k == 0 else f"/news?page={k}", f"<html><body><ul>{links}</ul>{nxt}</body></html>")
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    return paths


def news_pages() -> list[tuple[str, str, str, list[str]]]:
    """(path, original URL, page, expected body paragraphs) of the corpus's 258 real news pages."""
    import gzip
    import re

    out = []
    root = CORPUS / "news_pages"
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        meta = json.loads((folder / "meta.info").read_text(encoding="utf-8"))
        for expected_file in sorted(folder.glob("*.json")):
            outlet = expected_file.stem
            versions = list(json.loads(expected_file.read_text(encoding="utf-8")).values())
            pages = sorted(folder.glob(f"{outlet}_*.html.gz"), key=lambda p: re.sub(r"\D", "", p.name))
            for page, version in zip(pages, versions, strict=False):
                body = version.get("body") or {}
                expected = [*(body.get("summary") or [])]
                for section in body.get("sections") or []:
                    expected += [*(section.get("headline") or []), *(section.get("paragraphs") or [])]
                html = gzip.decompress(page.read_bytes()).decode("utf-8", "replace")
                out.append((f"/{folder.name}/{page.name.removesuffix('.html.gz')}", meta[page.name]["url"], html,
                            expected))
    return out


def token_f1(got: str, expected: str) -> float:
    import re
    from collections import Counter

    a, b = Counter(re.findall(r"\w+", got.lower())), Counter(re.findall(r"\w+", expected.lower()))
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def outlet_of(path: str) -> str:
    """``/de/Golem_2025_09_09`` → ``de/Golem``: the outlet a corpus page is from."""
    return path.strip("/").rsplit("_", 3)[0]


def build_news(site: Site, stack: contextlib.ExitStack) -> tuple[list[str], dict[str, list[str]]]:
    """The corpus's news pages, each outlet on a loopback address of its own (a site of its own, served from
    127.0.0.2 up); the sitemap, on ``site``, lists them all. Returns their URLs and expected bodies by URL
    (``site.pages`` holds every page by URL too, for the bench's own reading)."""
    outlets: dict[str, Site] = {}
    urls: list[str] = []
    expected: dict[str, list[str]] = {}
    for path, _url, html, body in news_pages():
        outlet = outlet_of(path)
        if outlet not in outlets:
            n = len(outlets) + 2
            host = stack.enter_context(serve(Site(), host=f"127.0.{n // 250}.{n % 250}"))
            host.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
            outlets[outlet] = host
        outlets[outlet].add(path, html)
        url = outlets[outlet].url(path)
        urls.append(url)
        expected[url] = body
        site.pages[url] = outlets[outlet].pages[path]
    locs = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    site.add("/sitemap.xml", f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"{locs}</urlset>", content_type="application/xml")
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    return urls, expected


def url_of(site: Site, path: str) -> str:
    """A page's URL: ``path`` on ``site``, or ``path`` itself when it is a URL (the news case's outlets)."""
    return path if "://" in path else site.url(path)


def learned_agreement(site: Site, paths: list[str]) -> tuple[float, int, int]:
    """Pages through the learner in this process as a pass would see them (keyed per host): mean agreement of
    the targeted text with the whole page's on the pages a learned rule targeted, their count, and the pages."""
    from pipelines.extract import _full_text, _parse, extract
    from pipelines.learn import Learner, agreement

    learner = Learner()
    scores = []
    for path in paths:
        url, page = url_of(site, path), site.pages[path].body.decode("utf-8", "replace")
        learned, verify, learn = learner.plan(url)
        doc = extract(page, url, None, learned, verify, learn)
        learner.observe(url, doc.learn, datetime.now(UTC))
        if doc.targeted and doc.learn is not None and doc.learn.used:
            scores.append(agreement(doc.text, _full_text(_parse(page), url)))
    return (sum(scores) / len(scores) if scores else 1.0), len(scores), len(paths)


def stage_cpu(site: Site, paths: list[str], limit: int = 150) -> None:
    """CPU per page (one core, this process, ``time.process_time``) of each piece of a worker's work, on the
    case's pages: trafilatura alone, ``extract()`` in full and through the learned rule, the topic rules, the
    story fingerprint with features and the content hash."""
    import trafilatura

    from pipelines.classify import Classifier
    from pipelines.extract import extract
    from pipelines.learn import Learner
    from pipelines.revisions import content_hash
    from pipelines.stories import _analyse, fingerprint, story_features

    pages = [(url_of(site, p), site.pages[p].body.decode("utf-8", "replace")) for p in paths[:limit]]
    learner = Learner()
    for url, page in pages[:10]:  # what a pass learns on its first pages
        learned, verify, learn = learner.plan(url)
        learner.observe(url, extract(page, url, None, learned, verify, learn).learn, datetime.now(UTC))
    rules = tuple(r.selector for r in learner.rules())
    classifier = Classifier.from_file(None)

    def timed(fn: object) -> float:
        t0 = time.process_time()
        for url, page in pages:
            fn(url, page)  # type: ignore[operator]
        return (time.process_time() - t0) / len(pages) * 1000

    docs = {url: extract(page, url, None, rules) for url, page in pages}
    rows = [
        ("trafilatura alone (default)", timed(lambda u, p: trafilatura.extract(p, deduplicate=False))),
        ("extract(): whole page", timed(lambda u, p: extract(p, u))),
        (f"extract(): learned rule {', '.join(rules) or '(none learned)'}", timed(lambda u, p: extract(p, u, None, rules))),
        ("topic rules", timed(lambda u, p: classifier.matched(docs[u].title or "", docs[u].text, {}))),
    ]

    def stories(u: str, p: str) -> None:
        _analyse.cache_clear()
        fingerprint(docs[u].title or "", docs[u].text)
        story_features(docs[u].title or "", docs[u].text)

    rows.append(("fingerprint + story features", timed(stories)))
    rows.append(("content hash", timed(lambda u, p: content_hash(docs[u].title or "", docs[u].text))))
    print(f"  CPU per page, one core, {len(pages)} pages:")
    for name, ms in rows:
        print(f"    {name:<60} {ms:6.1f} ms")


def tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants."""
    total = 0
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
        stack.extend(children.get(p, []))
    return total


def trafilatura_alone(site: Site, paths: list[str], seconds: float = 20.0) -> float:
    import trafilatura

    pages = [site.pages[p].body.decode("utf-8", "replace") for p in paths[:400]]
    t0 = time.perf_counter()
    done = 0
    for page in pages:
        trafilatura.extract(page, deduplicate=False)
        done += 1
        if time.perf_counter() - t0 > seconds:
            break
    return done / (time.perf_counter() - t0)


def run_pass(site: Site, tmp: str, source: dict[str, object], alone: float, label: str) -> str:
    """One crawl process over the source; prints its figures; returns the database path."""
    import sqlite3

    import yaml

    db = f"{tmp}/{label}.db"
    config = Path(tmp) / f"{label}.yaml"
    config.write_text(yaml.safe_dump({"database": f"sqlite:///{db}", "crawl": {"download_delay": 0},
                                      "sources": [source]}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(config), "crawl", "--no-alerts"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    main_cpu = 0.0  # the crawl process's own CPU (seconds), as last seen before it ended
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, main_cpu
        while not stop.is_set():
            peak = max(peak, tree_rss(proc.pid))
            try:
                with open(f"/proc/{proc.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                main_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print("  " + ((out + err).strip().splitlines()[-1] if (out + err).strip() else "(no output)"))
    if proc.returncode != 0:
        print(err)
        sys.exit(1)
    stored = sqlite3.connect(db).execute("select count(*) from items").fetchone()[0]
    rules = sqlite3.connect(db).execute("select host, selector, pages, checks from learned_rules").fetchall()
    print(f"  pass: {stored} items stored in {wall:.1f} s (process start included)")
    print(f"  pages/s: {stored / wall:.1f}   ({stored / wall / alone:.2f}x trafilatura alone on one core)")
    print(f"  CPU per page: {cpu / max(stored, 1) * 1000:.1f} ms (crawl process + extraction workers), of which the "
          f"crawl process (Scrapy, the store) {main_cpu / max(stored, 1) * 1000:.1f} ms (start-up included)")
    print(f"  peak RSS (crawl process tree): {peak / 1024 / 1024:.0f} MB")
    for host, selector, pages, checks in rules[:5]:
        print(f"  learned on {host}: {selector} ({pages} pages, {checks} checks passed)")
    if len(rules) > 5:
        print(f"  … and {len(rules) - 5} more learned rules ({len({r[0] for r in rules})} hosts in all)")
    return db


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=["all", "justice", "unknown", "news"], default="all")
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--content-selector", action="store_true",
                    help="justice: set the source's `content:` selector (otherwise the built-in justice.gov rule)")
    ap.add_argument("--stages", action="store_true", help="also the CPU per page of each piece of a worker's work")
    args = ap.parse_args()
    cases = ["justice", "unknown", "news"] if args.case == "all" else [args.case]
    site = Site()
    with serve(site), tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as outlets:
        for case in cases:
            print(f"== {case}")
            if case == "justice":
                paths = build(site, args.pages)
                source: dict[str, object] = {"name": "bench", "kind": "sitemap", "url": site.url("/sitemap.xml"),
                                             "max_pages": args.pages + 10, "since": "3650d"}
                if args.content_selector:
                    source["content"] = "div.field_body"
            elif case == "unknown":
                paths = build_unknown(site, args.pages)
                source = {"name": "county", "kind": "listing", "url": site.url("/news"), "links": "h3 a",
                          "next": "a.next", "max_pages": args.pages // 50 + 5}
            else:
                paths, expected = build_news(site, outlets)
                source = {"name": "news", "kind": "sitemap", "url": site.url("/sitemap.xml"), "max_pages": 1000,
                          "since": "36500d", "allow_networks": ["127.0.0.0/8"]}
            sizes = [len(site.pages[p].body) for p in paths]
            print(f"  {len(paths)} pages, {min(sizes) // 1024}–{max(sizes) // 1024} KB "
                  f"(mean {sum(sizes) / len(sizes) / 1024:.0f} KB)")
            if args.stages:
                stage_cpu(site, paths)
            alone = trafilatura_alone(site, paths)
            print(f"  trafilatura alone (default extract, 1 core): {alone:.1f} pages/s")
            db = run_pass(site, tmp, source, alone, case)
            if case == "news":
                import sqlite3

                # By the address each page was fetched from: a page's own canonical link may name another.
                texts = {u: t or "" for u, t in sqlite3.connect(db).execute(
                    "select coalesce(final_url, url), text from items")}
                scores = [token_f1(texts.get(p, ""), "\n".join(expected[p])) for p in paths]
                print(f"  text quality: mean token F1 against the expected bodies {sum(scores) / len(scores):.3f} "
                      f"({len(texts)} of {len(paths)} pages stored)")
                mean, targeted, total = learned_agreement(site, paths)
                print(f"  learned targeting, in-process replay: {targeted} of {total} pages targeted, mean agreement "
                      f"with the whole page's text {mean:.3f}")


if __name__ == "__main__":
    main()
