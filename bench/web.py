"""Benchmark: `borderwatch serve`'s pages and API as a browser or a feed reader gets them, p50/p95.

    python bench/web.py --database URL             # an existing store (e.g. the one bench/search.py keeps)
    python bench/web.py --items 50000 [--db sqlite|postgresql] [--pg ADMIN_URL]   # a store made here
    [--runs 20]

Requests go through the whole ASGI app in-process (routing, access, the search engine, Jinja2 rendering,
the SVG timeline, Atom) with Starlette's TestClient, so the figures are the server's time for a page,
without a network or a browser. Timed per kind of request:

- ``page``: the search page (`/?q=`): a page of 25 ranked hits, facets and the timeline for one query, the
  facets and timeline computed afresh (a first visit); ``page-topic``: the same with a `topic:` filter;
  ``page-empty``: `/` (no query: the newest items, facets over the whole store);
- ``page-again``: those pages visited again while the store has not changed (facets and timeline kept);
- ``api``: `/api/items?q=&limit=50`; ``facets``: `/api/facets?q=`; ``feed``: `/feeds/search.atom?q=`;
- ``item``: an item's page (topics with evidence highlighted, revisions, copies); ``story``: a story's page.

A store made here (``--items``) repeats the stories dev set (tests/fixtures/stories/docs.jsonl, English,
Spanish and French), each copy with its own URL, date and story, inserted through the schema the
migrations build (so the FTS5 triggers / the tsvector index the text) with the dev set's topic labels.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from crawler.config import Config  # noqa: E402
from crawler.web.access import Access  # noqa: E402
from crawler.web.app import create_app  # noqa: E402
from pipelines.db import Database  # noqa: E402
from pipelines.models import Item, ItemTopic, Story  # noqa: E402

DOCS = ROOT / "tests" / "fixtures" / "stories" / "docs.jsonl"
TOPIC_WORDS = {"tda": ("aragua", "tda"), "fentanyl": ("fentanyl", "fentanilo"),
               "firearms": ("firearm", "rifle", "straw", "armas"), "agreement": ("memorandum", "agreement",
                                                                            "trilateral", "acuerdo")}
QUERIES = {
    "page": ["fentanyl", "Aragua", '"Tren de Aragua"', "extradited OR extradita", "fentanilo lang:es"],
    "page-topic": ["indictment topic:tda", "pills topic:fentanyl", "court topic:firearms"],
}


def make_store(db: Database, n: int) -> None:
    docs = [json.loads(line) for line in DOCS.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(7)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    batch, topics, stories = [], [], []
    with db.write() as s:
        next_id = (s.scalar(select(func.max(Item.id))) or 0) + 1
    for i in range(n):
        d = docs[i % len(docs)]
        when = start + timedelta(minutes=rng.randrange(0, 3 * 365 * 24 * 60))
        item_id = next_id + i
        story_id = (item_id - 1) // 3 + 1  # copies of a story: three items in a row
        lang = "es" if d["id"].endswith("-es") else "fr" if d["id"].endswith("-fr") else "en"
        batch.append({
            "id": item_id, "key": f"https://bench.example/{item_id}", "url": f"https://bench.example/{item_id}",
            "source": f"source-{i % 20}", "title": d["title"], "text": d["text"], "published": when,
            "first_seen": when, "updated": when, "content_hash": uuid.uuid4().hex, "language": lang,
            "story_id": story_id, "revision_count": 0, "authority": 2, "doj_topics": [], "doj_components": [],
        })
        if (item_id - 1) % 3 == 0:
            stories.append({"id": story_id, "title": d["title"], "created": when, "first_item_id": item_id})
        lowered = (d["title"] + " " + d["text"][:3000]).lower()
        for topic, words in TOPIC_WORDS.items():
            found = next((w for w in words if w in lowered), None)
            if found:
                topics.append({"item_id": item_id, "topic": topic, "score": 3.0, "classified_at": when,
                               "evidence": [{"phrase": found, "sentence": "", "weight": 1.0, "where": "body"}]})
        if len(batch) >= 2000 or i == n - 1:
            with db.write() as s:
                if stories:
                    s.execute(insert(Story), stories)
                s.execute(insert(Item), batch)
                if topics:
                    s.execute(insert(ItemTopic), topics)
            batch, topics, stories = [], [], []
            print(f"  {i + 1:,} items", end="\r", file=sys.stderr)
    print(file=sys.stderr)


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


def run(db: Database, runs: int) -> None:
    config = Config.model_validate({"database": db.url})
    with db.read() as s:
        count = s.scalar(select(func.count(Item.id))) or 0
        item_id = s.scalar(select(Item.id).order_by(Item.id.desc()).limit(1))
        story_id = s.scalar(select(Item.story_id).where(Item.story_id.is_not(None)).order_by(Item.id).limit(1))
    print(f"{db.engine.dialect.name}: {count:,} items; {runs} runs per request after one warm-up")
    app = create_app(config, db, Access(open=True))
    client = TestClient(app)

    def get(path: str, params: dict[str, str] | None = None) -> None:
        r = client.get(path, params=params)
        assert r.status_code == 200, (path, params, r.status_code, r.text[:200])

    def cold(path: str, params: dict[str, str] | None = None) -> None:
        app.state.engine._summaries.clear()  # facets and timeline computed again, as on a first visit
        get(path, params)

    kinds: dict[str, list[Callable[[], None]]] = {
        "page": [lambda q=q: cold("/", {"q": q}) for q in QUERIES["page"]],
        "page-topic": [lambda q=q: cold("/", {"q": q}) for q in QUERIES["page-topic"]],
        "page-empty": [lambda: cold("/")],
        "page-again": [lambda q=q: get("/", {"q": q}) for q in ["", *QUERIES["page"]]],
        "api": [lambda q=q: get("/api/items", {"q": q, "limit": "50"}) for q in QUERIES["page"]],
        "facets": [lambda q=q: get("/api/facets", {"q": q}) for q in QUERIES["page"]],
        "feed": [lambda q=q: get("/feeds/search.atom", {"q": q}) for q in QUERIES["page"][:2]],
        "item": [lambda: get(f"/items/{item_id}")],
        "story": [lambda: get(f"/stories/{story_id}")],
    }
    if story_id is None:  # a store without stories (bench/search.py's): no story page to time
        del kinds["story"]
    print(f"{'request':<12} {'p50 ms':>8} {'p95 ms':>8}")
    for kind, calls in kinds.items():
        times: list[float] = []
        for call in calls:
            times += timed(call, max(1, runs // len(calls)))
        print(f"{kind:<12} {statistics.median(times):>8.1f} {pct(times, 95):>8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", help="an existing store's SQLAlchemy URL")
    ap.add_argument("--items", type=int, default=50_000, help="items in a store made here")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--dir", type=Path, default=Path("/tmp"), help="where a SQLite store is made")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    if args.database:
        db = Database(args.database)
        try:
            run(db, args.runs)
        finally:
            db.dispose()
        return
    if args.db == "sqlite":
        path = args.dir / f"bw_bench_web_{args.items}.db"
        fresh = not path.exists()
        db = Database(f"sqlite:///{path}")
        try:
            if fresh:
                make_store(db, args.items)
            run(db, args.runs)
        finally:
            db.dispose()
        return
    name = f"bw_bench_web_{args.items}"
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(make_url(args.pg).set(database=name).render_as_string(hide_password=False))
    try:
        if not exists:
            make_store(db, args.items)
            with db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        run(db, args.runs)
    finally:
        db.dispose()
        admin.dispose()


if __name__ == "__main__":
    main()
