"""Benchmark: language detection (pipelines/language.py) on the corpus's real news pages.

    python bench/language.py [--corpus ../shared/corpus]

Extracts every page of news_pages/ (258 pages, 40 countries), then times ``detect_language`` on each text
with its declaration ignored, and prints: the model's load time, ms per page, and how often the detected
language agrees with the one the page declares (``<html lang>``…), overall and for en, es and fr.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from pipelines import language
    from pipelines.extract import extract

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("BORDERWATCH_CORPUS", str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--corpus", default=default)
    args = parser.parse_args()
    pages = sorted((Path(args.corpus) / "news_pages").glob("*/*.html.gz"))
    if not pages:
        sys.exit(f"no pages under {args.corpus}/news_pages")
    docs = [extract(gzip.decompress(p.read_bytes()).decode("utf-8", "replace"), "https://example.org/a")
            for p in pages]
    started = time.perf_counter()
    language._model()
    load = time.perf_counter() - started
    started = time.perf_counter()
    detected = [language.detect_language(d.title, d.text) for d in docs]
    per_page = (time.perf_counter() - started) / len(docs) * 1000
    agree: Counter[str] = Counter()
    declared: Counter[str] = Counter()
    unknown = 0
    for doc, found in zip(docs, detected, strict=True):
        if found is None:
            unknown += 1
        if doc.language:
            declared[doc.language] += 1
            agree[doc.language] += found == doc.language
    total_declared = sum(declared.values())
    print(f"pages: {len(docs)}; model load {load:.2f} s; detection {per_page:.2f} ms/page; "
          f"left unknown: {unknown}")
    print(f"agrees with the page's declaration: {sum(agree.values())}/{total_declared}")
    for lang in ("en", "es", "fr"):
        print(f"  {lang}: {agree[lang]}/{declared[lang]}")


if __name__ == "__main__":
    main()
