"""Benchmark: an incremental pass over a 10,000-item source where nothing changed.

Two sources of 10,000 items each, first crawled in full, then passed over again unchanged:
- a DOJ API (records in the 2024 format), read newest-changed first down to the last watermark;
- a sitemap of article pages published over the last 60 days (known pages older than the revisit
  window are skipped; younger ones are revisited with conditional GETs, answered 304).
Prints, for the second pass: requests made, bytes downloaded, wall time.

    python bench/incremental.py [--items 10000]
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from localsite import Site, api_record_2024, justice_page, serve  # noqa: E402

DAY = 86400


def build(site: Site, n: int) -> None:
    now = int(time.time())
    site.api_path = "/api/v1/press_releases.json"
    site.api_records = [
        api_record_2024(f"Release {i}", site.url(f"/api-pr/{i}"), [f"Body of release {i}.", "Second paragraph."],
                        date=now - (i * 60 * DAY) // n, changed=now - (i * 60 * DAY) // n, number=f"26-{i}")
        for i in range(n)
    ]
    urls = []
    for i in range(n):
        ts = now - (i * 60 * DAY) // n
        path = f"/pr/{i:05d}"
        site.add(path, justice_page(f"Article {i}", [f"Text of article {i} about nothing in particular.",
                                                      "A second paragraph."],
                                    date=datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
        lastmod = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        urls.append(f"<url><loc>{site.url(path)}</loc><lastmod>{lastmod}</lastmod></url>")
    site.add("/sitemap.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             + "".join(urls) + "</urlset>", content_type="application/xml")
    site.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")


def crawl(config: Path, source: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "crawler", "--config", str(config), "crawl", source, "--no-alerts"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stderr)
        sys.exit(1)
    return time.perf_counter() - t0, (proc.stdout + proc.stderr).strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10_000)
    args = ap.parse_args()
    site = Site()
    with serve(site), tempfile.TemporaryDirectory() as tmp:
        build(site, args.items)
        db = f"{tmp}/bench.db"
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump({
            "database": f"sqlite:///{db}", "crawl": {"download_delay": 0},
            "sources": [
                {"name": "api", "kind": "doj_api", "url": site.url("/api/v1/press_releases.json"), "since": "90d",
                 "rate": 4.0, "max_pages": 1000},
                {"name": "sitemap", "kind": "sitemap", "url": site.url("/sitemap.xml"), "since": "90d",
                 "max_pages": args.items + 10},
            ],
        }))
        for source in ("api", "sitemap"):
            site.reset_counts()
            wall, line = crawl(config, source)
            requests = sum(site.hits.values())
            print(f"first pass  {source:8s}: {requests:6d} requests in {wall:6.1f} s — {line}")
            site.reset_counts()
            wall, line = crawl(config, source)
            requests = sum(site.hits.values())
            full = sum(n for (p, st), n in site.hits.items() if st == 200 and p.startswith("/pr/"))
            not_modified = sum(n for (_, st), n in site.hits.items() if st == 304)
            row = sqlite3.connect(db).execute(
                "select stats from passes where source = ? order by id desc limit 1", (source,)).fetchone()
            print(f"second pass {source:8s}: {requests:6d} requests ({full} full article downloads, "
                  f"{not_modified} answered 304), {wall:6.1f} s wall — {line}")
            print(f"    recorded: {row[0]}")
        stored = sqlite3.connect(db).execute("select count(*) from items").fetchone()[0]
        print(f"items stored: {stored}")


if __name__ == "__main__":
    main()
