"""A store for the web tests: stories of the dev set (tests/fixtures/stories/docs.jsonl) saved through the real
``Store`` (classified, grouped into stories), one material revision, planned alerts; and ``serve`` run as a
real child process on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx

from pipelines.classify import Classifier
from pipelines.db import Database
from pipelines.items import Article
from pipelines.store import Store
from pipelines.tally import Tally

DOCS = Path(__file__).parent / "fixtures" / "stories" / "docs.jsonl"
# Stories of the dev set the web tests show: Tren de Aragua, fentanyl, firearms, agreements; in English,
# Spanish and French; copies by DOJ, US Attorneys, an aggregator, news sites.
STORIES = ("tda-chile", "anti-tren", "denver-tda-indictment", "az-fentanyl-reyes", "laredo-straw", "mou-interpol",
           "trilateral-fentanyl", "sspc-culiacan", "sdny-tda-robbery")
# The copy that gets a material correction after it was stored (a revision).
REVISED = "tda-chile-news"
CORRECTION = ("Update: prosecutors in Santiago said on Monday that a fourth suspect, arrested in Colombia, "
              "will be extradited next month.")


@dataclass
class Fixture:
    ids: dict[str, int]  # dev-set doc id -> item id
    stories: dict[str, int]  # dev-set story label -> story id
    revised_at: datetime


def _source(doc: dict[str, Any]) -> str:
    host = urlsplit(doc["url"]).netloc
    if not host:
        return "aggregator"
    if host == "www.justice.gov":
        return "usao" if "/usao-" in doc["url"] else "doj"
    return host.removeprefix("www.").split(".")[0]


def _lang(doc: dict[str, Any]) -> str:
    if doc["id"].endswith("-es") or doc["id"] == "sspc-culiacan":
        return "es"
    if doc["id"].endswith("-fr"):
        return "fr"
    return "en"


def _article(doc: dict[str, Any], text: str | None = None) -> Article:
    url = doc["url"] if doc["url"].startswith("http") else f"https://aggregator.example/{doc['id']}"
    published = datetime.fromisoformat(doc["published"]).replace(tzinfo=UTC) + timedelta(hours=12)
    return Article(url=url, source=_source(doc), title=doc["title"], text=text or doc["text"], published=published,
                   language=_lang(doc), doj_number=doc.get("release_number"))


def docs() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DOCS.read_text(encoding="utf-8").splitlines()]
    return sorted((d for d in rows if d["story"] in STORIES), key=lambda d: (d["published"], d["id"]))


def populate(url: str, *, watcher: Any = None) -> Fixture:
    """Save the chosen documents as they would have arrived (each a day after publication), then a
    correction of one copy; with ``watcher``, plan its alerts (pending deliveries in the outbox)."""
    db = Database(url)
    try:
        classifier = Classifier.from_file(None)
        chosen = docs()
        for d in chosen:
            seen = datetime.fromisoformat(d["published"]).replace(tzinfo=UTC) + timedelta(days=1)
            store = Store(db, classifier, now=lambda seen=seen: seen)
            store.load_stories(window=timedelta(days=36500))
            counts: Tally = Tally()
            store.save([_article(d)], counts)
        revised = next(d for d in chosen if d["id"] == REVISED)
        revised_at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        store = Store(db, classifier, now=lambda: revised_at)
        counts = Tally()
        store.save([_article(revised, text=revised["text"] + "\n\n" + CORRECTION)], counts)
        assert counts["updated"] == 1, counts
        from sqlalchemy import select

        from pipelines.canonical import canonical_url
        from pipelines.models import Item

        with db.read() as s:
            by_key = {k: (i, sid) for k, i, sid in s.execute(select(Item.key, Item.id, Item.story_id))}
        ids: dict[str, int] = {}
        stories: dict[str, int] = {}
        for d in chosen:
            key = canonical_url(_article(d).url)
            if key in by_key:
                ids[d["id"]], sid = by_key[key]
                if sid is not None:
                    stories.setdefault(d["story"], sid)
        if watcher is not None:
            from alerts.plan import plan

            plan(db, [watcher], revised_at + timedelta(hours=1))
        return Fixture(ids, stories, revised_at)
    finally:
        db.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(config: Path, host: str = "127.0.0.1", env: dict[str, str] | None = None) -> Iterator[str]:
    """``borderwatch serve`` in a child process; yields its base URL once ``/healthz`` answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "crawler", "--config", str(config), "serve", "--host", host, "--port", str(port)]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    base = f"http://{host}:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
            try:
                if httpx.get(base + "healthz", timeout=2).status_code in (200, 401):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("serve did not answer within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
