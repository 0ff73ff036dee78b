"""Benchmark: what the site rules (pipelines/siterules.py) do to extracted text on the corpus's real news pages.

    python bench/site_rules.py [--corpus ../shared/corpus] [--all] [--json]

For each page of an outlet that has a site rule (with --all: every one of the 258 pages), extracts the text
twice — as from the page's own address (its rule applies) and as from another host (trafilatura alone) — and
prints the token F1 of each against the page's hand-checked body, the lines the rule removed, and the time
per page both ways. Text quality is measured here, not asserted in timed tests.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def token_f1(got: str, expected: str) -> float:
    a, b = Counter(re.findall(r"\w+", got.lower())), Counter(re.findall(r"\w+", expected.lower()))
    common = sum((a & b).values())
    return 0.0 if not common else 2 * common / (sum(a.values()) + sum(b.values()))


def pages(corpus: Path) -> list[tuple[str, str, str, str]]:
    """(name, URL, page, expected body) of every saved news page; an outlet's pages sorted by name pair with
    its records in order (the corpus README)."""
    out = []
    for folder in sorted(p for p in (corpus / "news_pages").iterdir() if p.is_dir()):
        meta = json.loads((folder / "meta.info").read_text(encoding="utf-8"))
        for expected_file in sorted(folder.glob("*.json")):
            records = list(json.loads(expected_file.read_text(encoding="utf-8")).values())
            saved = sorted(folder.glob(f"{expected_file.stem}_*.html.gz"))
            for page, record in zip(saved, records, strict=False):
                body = record.get("body") or {}
                lines = [*(body.get("summary") or [])]
                for section in body.get("sections") or []:
                    lines += [*(section.get("headline") or []), *(section.get("paragraphs") or [])]
                name = f"{folder.name}/{page.name.removesuffix('.html.gz')}"
                html = gzip.decompress(page.read_bytes()).decode("utf-8", "replace")
                out.append((name, meta[page.name]["url"], html, "\n".join(lines)))
    return out


def main() -> None:
    from pipelines.canonical import host_of
    from pipelines.extract import extract
    from pipelines.siterules import SITE_RULES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("BORDERWATCH_CORPUS", str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--corpus", default=default)
    parser.add_argument("--all", action="store_true", help="every saved page, not only those of ruled outlets")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()

    def ruled(url: str) -> bool:
        host = host_of(url)
        return any(host == h or host.endswith("." + h) for h in SITE_RULES)

    chosen = [p for p in pages(Path(args.corpus)) if args.all or ruled(p[1])]
    if not chosen:
        sys.exit(f"no pages under {args.corpus}/news_pages")
    for _name, url, html, _expected in chosen[:5]:  # warm up (imports, compiled selectors) before timing
        extract(html, url)
    rows, timing = [], {"rules": 0.0, "generic": 0.0}
    for name, url, html, expected in chosen:
        started = time.perf_counter()
        with_rules = extract(html, url).text
        timing["rules"] += time.perf_counter() - started
        started = time.perf_counter()
        generic = extract(html, "https://outlet.example/" + url.split("/", 3)[-1]).text
        timing["generic"] += time.perf_counter() - started
        removed = sorted(set(generic.splitlines()) - set(with_rules.splitlines()))
        rows.append({"page": name, "f1_rules": round(token_f1(with_rules, expected), 4),
                     "f1_generic": round(token_f1(generic, expected), 4), "removed": removed})
    n = len(rows)
    summary = {
        "pages": n,
        "mean_f1_rules": round(sum(r["f1_rules"] for r in rows) / n, 4),
        "mean_f1_generic": round(sum(r["f1_generic"] for r in rows) / n, 4),
        "worse": [r["page"] for r in rows if r["f1_rules"] < r["f1_generic"] - 0.001],
        "ms_per_page_rules": round(1000 * timing["rules"] / n, 1),
        "ms_per_page_generic": round(1000 * timing["generic"] / n, 1),
    }
    if args.json:
        print(json.dumps({**summary, "rows": rows}, ensure_ascii=False))
        return
    for r in rows:
        print(f"{r['page']:40} F1 {r['f1_generic']:.3f} -> {r['f1_rules']:.3f}  {len(r['removed'])} lines removed")
        for line in r["removed"][:6]:
            print(f"      - {line[:110]}")
    print(f"{n} pages: mean token F1 {summary['mean_f1_generic']:.4f} (trafilatura alone) -> "
          f"{summary['mean_f1_rules']:.4f} (with site rules); worse: {summary['worse'] or 'none'}; "
          f"{summary['ms_per_page_generic']} -> {summary['ms_per_page_rules']} ms/page")


if __name__ == "__main__":
    main()
