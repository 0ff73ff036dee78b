"""Benchmark: search latency over a large generated store, on SQLite and on PostgreSQL.

    python bench/search.py [--items 1000000] [--db sqlite|postgresql|both] [--dir DIR] [--pg ADMIN_URL]
                           [--runs 20] [--keep]

Generates ``--items`` items (English 60 %, Spanish 30 %, French 10 %; titles of 8-16 words, texts of about
450 words on a log-normal spread, 60-4,000 words; a long-tail vocabulary; domain words and phrases at
realistic rates; a quarter of the items with topics; 20 sources; dates over three years), stores them
through the migrations' schema (so the FTS5 triggers / the generated tsvector do the indexing), then times
the engine as the CLI and the web UI call it:

- ``word``: one word (rare to very common), a page of 20 hits with the total count;
- ``phrase``: a quoted phrase;
- ``word+topic``: a word and a ``topic:`` filter;
- ``facets``: topic, source, language and month counts over a broad match (a word in ~25 % of the items);
- ``page``: what a search page does: the page of hits, then the facets and the timeline (``overview``).

Each query runs ``--runs`` times after one warm-up; p50 and p95 per kind are printed. A generated store is
kept in ``--dir`` (SQLite) or in the database ``bw_bench_search_<items>`` (PostgreSQL) and reused by the next
run of the same size unless ``--fresh``; ``--keep`` false drops the PostgreSQL database at the end. Opening a
kept store migrates it to the code's schema first (``0013_search_keys`` on a store made before it: a minute
or two at 1,000,000 items), so a rerun measures the code as it is on the same items.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from pipelines.db import Database  # noqa: E402
from pipelines.models import Item  # noqa: E402
from pipelines.search import count_matches, facets, overview, parse, search  # noqa: E402

COMMON = {
    "en": ("the of and to in a for that on was with is by as at from he said it were his has an be have are "
           "which their had been who they this or after not but also more two one years against case court "
           "federal state office police department attorney district charged sentenced prison drug according "
           "investigation agents authorities officials border security united states government county city "
           "people told members group arrested week according statement report public investigators judge"),
    "es": ("de la que el en y a los del se las por un para con no una su al es lo como más pero sus le ya o "
           "fue este ha sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo "
           "nos durante todos uno les ni contra otros ese eso ante ellos policía fiscalía gobierno frontera "
           "autoridades investigación detenidos tribunal juez cárcel droga estado ciudad informó según años"),
    "fr": ("de la le et les des en un une du est que pour dans qui par sur au pas plus ne avec il se ce sont "
           "ont été elle aux son mais comme ou leur sa ses tout cette deux entre après selon police enquête "
           "gouvernement frontière autorités justice tribunal prison drogue ministre ville pays personnes"),
}
SYLLABLES = {
    "en": "ar bel cor den fal gan hil jor kel lan mor nel por quin ran sel tor vin wel yor zan ston ley ford ton",
    "es": "ca de fi go la me ni po ra so ta ve za llo rro cha que gue ción dad mos ña ero illa ado",
    "fr": "ba ce di fo la mé ni pé ra sé te vi zo eau eux ille ette ion ais ant eur oix ère",
}
# (term, share of the items of that language that carry it): what the queries look for.
DOMAIN = {
    "en": [("fentanyl", 0.06), ("Tren de Aragua", 0.015), ("extradition", 0.02), ("firearms", 0.05),
           ("cartel", 0.08), ("border patrol", 0.04), ("federal prison", 0.05), ("rifles", 0.02),
           ("counterfeit pills", 0.015), ("security agreement", 0.01), ("money laundering", 0.03)],
    "es": [("fentanilo", 0.06), ("Tren de Aragua", 0.03), ("extradición", 0.03), ("armas de fuego", 0.05),
           ("cártel", 0.08), ("contrabando", 0.04), ("lavado de dinero", 0.03), ("acuerdo de seguridad", 0.01)],
    "fr": [("fentanyl", 0.05), ("armes à feu", 0.05), ("extradition", 0.02), ("trafic", 0.06),
           ("Gendarmerie royale", 0.03), ("frontière canado-américaine", 0.02)],
}
TOPIC_TERMS = {"tda": ("Tren de Aragua",), "fentanyl": ("fentanyl", "fentanilo", "counterfeit pills"),
               "firearms": ("firearms", "armas de fuego", "armes à feu", "rifles"),
               "agreement": ("security agreement", "acuerdo de seguridad", "frontière canado-américaine")}
LANGS = [("en", 0.6), ("es", 0.3), ("fr", 0.1)]
SOURCES = [f"source-{i:02d}" for i in range(20)]
START = datetime(2023, 11, 1, tzinfo=UTC)
SPAN_DAYS = 3 * 365

QUERIES = {
    "word": ["extradition", "fentanyl", "cartel", "contrabando", "frontière", "sentenced", "police",
             "gendarmerie", "rifles", "lavado"],
    "phrase": ['"tren de aragua"', '"border patrol"', '"armas de fuego"', '"federal prison"',
               '"money laundering"', '"armes a feu"'],
    "word+topic": ["extradition topic:tda", "pills topic:fentanyl", "rifles topic:firearms", "police topic:tda",
                   "frontera topic:agreement"],
    "facets": ["police", "border", "policia", "autorites"],
    "page": ["fentanyl", '"tren de aragua" -cartel', "extradicion OR extradition lang:es"],
}


class Vocabulary:
    """Words of one language: the common ones first, then a long tail, drawn on a Zipf law (s = 1)."""

    def __init__(self, lang: str, rng: random.Random, tail: int = 40_000) -> None:
        words = COMMON[lang].split()
        syl = SYLLABLES[lang].split()
        seen = set(words)
        while len(words) < len(COMMON[lang].split()) + tail:
            w = "".join(rng.choice(syl) for _ in range(rng.randint(2, 4)))
            if w not in seen:
                seen.add(w)
                words.append(w)
        self.words = words
        weights = [1.0 / (rank + 1) for rank in range(len(words))]
        total = 0.0
        self.cum = []
        for w_ in weights:
            total += w_
            self.cum.append(total)

    def draw(self, rng: random.Random, n: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cum, k=n)


def _sentences(words: list[str], rng: random.Random) -> str:
    out, i = [], 0
    while i < len(words):
        n = rng.randint(8, 28)
        chunk = words[i:i + n]
        out.append(chunk[0].capitalize() + " " + " ".join(chunk[1:]) + ".")
        i += n
    return " ".join(out)


def generate(n: int, seed: int = 7) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """(an items row, its topics) ``n`` times."""
    rng = random.Random(seed)
    vocab = {lang: Vocabulary(lang, rng) for lang, _ in LANGS}
    langs, lang_weights = zip(*LANGS, strict=True)
    for i in range(n):
        lang = rng.choices(langs, lang_weights)[0]
        v = vocab[lang]
        length = int(min(4000, max(60, rng.lognormvariate(math.log(420), 0.5))))
        words = v.draw(rng, length)
        title = v.draw(rng, rng.randint(8, 16))
        carried = [term for term, share in DOMAIN[lang] if rng.random() < share]
        for term in carried:
            for _ in range(rng.randint(1, 3)):
                words.insert(rng.randrange(len(words)), term)
            if rng.random() < 0.3:
                title.insert(rng.randrange(len(title)), term)
        topics = [t for t, terms in TOPIC_TERMS.items() if any(term in carried for term in terms)]
        if not topics and rng.random() < 0.1:  # the classifier also finds topics from other evidence
            topics = [rng.choice(list(TOPIC_TERMS))]
        # Stored in crawl order: dates rise with the id, a few days either way (a late copy, a backfill).
        when = START + timedelta(days=SPAN_DAYS * i / n + rng.uniform(-5, 1))
        source = SOURCES[rng.randrange(len(SOURCES))]
        row = {
            "id": i + 1, "key": f"https://bench.example/{source}/{i}", "url": f"https://bench.example/{source}/{i}",
            "source": source, "title": " ".join(title).capitalize(), "text": _sentences(words, rng),
            "published": when, "first_seen": when, "updated": when, "content_hash": f"{i:064x}",
            "language": lang if rng.random() > 0.05 else None, "revision_count": 0, "authority": 2,
            "doj_topics": [], "doj_components": [],
        }
        yield row, topics


COLUMNS = ["id", "key", "url", "source", "title", "text", "published", "first_seen", "updated", "content_hash",
           "language", "revision_count", "authority", "doj_topics", "doj_components"]
TOPIC_COLUMNS = ["item_id", "topic", "score", "evidence", "classified_at"]


def _rows(n: int, start: int = 0) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Batches of (items rows, item_topics rows) as tuples in ``COLUMNS`` / ``TOPIC_COLUMNS`` order; with
    ``start``, the items after the first ``start`` (generated all the same: the same items as in one go)."""
    items: list[tuple[Any, ...]] = []
    topics: list[tuple[Any, ...]] = []
    for k, (row, item_topics) in enumerate(generate(n)):
        if k < start:
            continue
        items.append(tuple(row[c] for c in COLUMNS))
        topics.extend((row["id"], t, 1.0, "[]", row["first_seen"]) for t in item_topics)
        if len(items) == 10_000:
            yield items, topics
            items, topics = [], []
    if items:
        yield items, topics


def _progress(k: int, started: float) -> None:
    if k % 100_000 == 0:
        print(f"  {k:,} items stored ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)


def load_sqlite(path: Path, n: int, start: int = 0) -> float:
    """Rows written straight through sqlite3 in large transactions; the FTS5 triggers index them as in use."""
    import sqlite3

    started = time.monotonic()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # a generated store: a crash means generating again
    marks = ",".join("?" * len(COLUMNS))
    stored = start
    for items, topics in _rows(n, start):
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO items ({','.join(COLUMNS)}) VALUES ({marks})",
                         [(*r[:6], _sqlite_time(r[6]), _sqlite_time(r[7]), _sqlite_time(r[8]), *r[9:13], "[]", "[]")
                          for r in items])
        conn.executemany(f"INSERT INTO item_topics ({','.join(TOPIC_COLUMNS)}) VALUES (?,?,?,?,?)",
                         [(*t[:4], _sqlite_time(t[4])) for t in topics])
        conn.execute("COMMIT")
        before, stored = stored, stored + len(items)
        if stored // 100_000 != before // 100_000:
            _progress(stored // 100_000 * 100_000, started)
    conn.execute("INSERT INTO items_fts(items_fts) VALUES ('optimize')")
    conn.execute("ANALYZE")
    conn.close()
    return time.monotonic() - started


def _sqlite_time(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")  # as SQLAlchemy stores it


def load_postgresql(db: Database, n: int, start: int = 0) -> float:
    """COPY in batches (the generated tsvector is computed per row); the GIN index built once at the end."""
    import json

    started = time.monotonic()
    with db.engine.begin() as conn:
        conn.execute(text("DROP INDEX IF EXISTS ix_items_search_vector"))
    raw = db.engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert dbapi is not None
        stored = start
        for items, topics in _rows(n, start):
            with dbapi.cursor() as cur:
                with cur.copy(f"COPY items ({','.join(COLUMNS)}) FROM STDIN") as copy:
                    for r in items:
                        copy.write_row((*r[:13], json.dumps(r[13]), json.dumps(r[14])))
                with cur.copy(f"COPY item_topics ({','.join(TOPIC_COLUMNS)}) FROM STDIN") as copy:
                    for t in topics:
                        copy.write_row(t)
            dbapi.commit()
            before, stored = stored, stored + len(items)
            if stored // 100_000 != before // 100_000:
                _progress(stored // 100_000 * 100_000, started)
    finally:
        raw.close()
    with db.engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_items_search_vector ON items USING gin (search_vector)"))
        conn.execute(text("SELECT setval(pg_get_serial_sequence('items', 'id'), (SELECT max(id) FROM items))"))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return time.monotonic() - started


def store_for(kind: str, n: int, folder: Path, pg_admin: str, fresh: bool, as_is: bool = False,
              resume: bool = False) -> Database:
    if kind == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"search-{n}.db"
        if fresh:
            for p in folder.glob(f"search-{n}.db*"):
                p.unlink()
        db = Database(f"sqlite:///{path}")
    else:
        from sqlalchemy.engine import make_url

        name = f"bw_bench_search_{n}"
        admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists and fresh:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                exists = None
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        db = Database(make_url(pg_admin).set(database=name).render_as_string(hide_password=False))
    with db.read() as s:
        have = int(s.scalar(select(func.count(Item.id))) or 0)
    if as_is:
        print(f"{kind}: measuring the store as it is: {have:,} items", file=sys.stderr, flush=True)
    elif have != n:
        if have and not (resume and have < n):
            raise SystemExit(f"{kind}: the store holds {have:,} items, not {n:,}: run with --fresh "
                             "(or --resume, for a generation stopped part-way)")
        print(f"{kind}: generating and storing {n - have:,} items of {n:,} …", file=sys.stderr, flush=True)
        took = (load_postgresql(db, n, have) if kind == "postgresql"
                else load_sqlite(folder / f"search-{n}.db", n, have))
        print(f"{kind}: stored {n:,} items in {took:.0f} s", file=sys.stderr, flush=True)
    return db


def _time(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()  # warm-up: the page cache, the statement cache
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def measure(db: Database, runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    for kind, queries in QUERIES.items():
        times: list[float] = []
        for text_ in queries:
            q = parse(text_)

            def once(q: Any = q, kind: str = kind) -> Any:
                with db.read() as s:
                    if kind == "facets":
                        return facets(s, q)
                    page = search(s, q, limit=20)
                    if kind == "page":
                        return page, overview(s, q)
                    return page

            t = _time(once, runs)
            with db.read() as s:
                total = count_matches(s, q)
            print(f"    {kind:10} {text_:42} matches {total:>9,}  p50 {statistics.median(t):7.1f} ms  "
                  f"max {max(t):7.1f} ms", file=sys.stderr, flush=True)
            times += t
        results[kind] = times
    return results


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/borderwatch-bench-search"))
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--fresh", action="store_true", help="Generate the store again even if one exists.")
    parser.add_argument("--as-is", action="store_true",
                        help="Measure the store of --items as it is (a generation stopped part-way), without generating.")
    parser.add_argument("--resume", action="store_true",
                        help="Finish a generation stopped part-way (the same items as in one go), then measure.")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for kind in kinds:
        db = store_for(kind, args.items, args.dir, args.pg, args.fresh, args.as_is, args.resume)
        try:
            with db.read() as s:
                size = int(s.scalar(select(func.count(Item.id))) or 0)
            print(f"{kind}, {size:,} items:", file=sys.stderr)
            results = measure(db, args.runs)
        finally:
            db.dispose()
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"{kind}: load average while measuring {load} on {os.cpu_count()} CPUs (figures are wall-clock)")
        for name, values in results.items():
            print(f"{kind:10} {size:>9,} items  {name:10}  p50 {statistics.median(values):7.1f} ms  "
                  f"p95 {p95(values):7.1f} ms  ({len(values)} runs)")


if __name__ == "__main__":
    main()
