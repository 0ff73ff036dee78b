"""Benchmark: a pass over 2,000 realistic press-release pages (60–120 KB) from a local server.

Prints pages/s, CPU per page and the peak RSS of the whole pass (the crawl process and its extraction
workers), next to trafilatura alone on the same pages in the same run (one core, default settings).

    python bench/crawl.py [--pages 2000] [--content-selector]

Default settings with no per-host delay; the source is a sitemap listing every page. Pages are built
on justice.gov's real template with bodies taken from real DOJ releases (the corpus's API page).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
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

    pages = [site.pages[p].body.decode() for p in paths[:400]]
    t0 = time.perf_counter()
    done = 0
    for page in pages:
        trafilatura.extract(page, deduplicate=False)
        done += 1
        if time.perf_counter() - t0 > seconds:
            break
    return done / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--content-selector", action="store_true",
                    help="set the source's `content:` selector (otherwise the built-in justice.gov rule applies)")
    args = ap.parse_args()
    site = Site()
    with serve(site), tempfile.TemporaryDirectory() as tmp:
        paths = build(site, args.pages)
        sizes = [len(site.pages[p].body) for p in paths]
        print(f"{len(paths)} pages, {min(sizes) // 1024}–{max(sizes) // 1024} KB (mean {sum(sizes) / len(sizes) / 1024:.0f} KB)")
        alone = trafilatura_alone(site, paths)
        print(f"trafilatura alone (default extract, 1 core): {alone:.1f} pages/s")
        source = {"name": "bench", "kind": "sitemap", "url": site.url("/sitemap.xml"), "max_pages": args.pages + 10,
                  "since": "3650d"}
        if args.content_selector:
            source["content"] = "div.field_body"
        config = Path(tmp) / "bench.yaml"
        import yaml

        config.write_text(yaml.safe_dump({"database": f"sqlite:///{tmp}/bench.db", "crawl": {"download_delay": 0},
                                          "sources": [source]}))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(config), "crawl", "--no-alerts"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, tree_rss(proc.pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, err = proc.communicate()
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        served = sum(n for (p, st), n in site.hits.items() if p.startswith("/pr/") and st == 200)
        print((out + err).strip().splitlines()[-1] if (out + err).strip() else "(no output)")
        if proc.returncode != 0:
            print(err)
            sys.exit(1)
        import sqlite3

        stored = sqlite3.connect(f"{tmp}/bench.db").execute("select count(*) from items").fetchone()[0]
        print(f"pass: {served} pages served, {stored} items stored in {wall:.1f} s (process start included)")
        print(f"pages/s: {stored / wall:.1f}   ({stored / wall / alone:.2f}x trafilatura alone on one core)")
        print(f"CPU per page: {cpu / max(stored, 1) * 1000:.1f} ms (crawl process + extraction workers)")
        print(f"peak RSS (crawl process tree): {peak / 1024 / 1024:.0f} MB")


if __name__ == "__main__":
    main()
