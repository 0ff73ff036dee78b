"""Benchmark: 1,000 new matching items for 20 watchers, delivered to a local webhook.

    python bench/alerts.py [--items 1000] [--watchers 20] [--db URL]

Prints how long ``plan`` and ``deliver`` take (what alerting adds to a crawl) and alerts delivered per second.
The webhook runs in its own process (a thread would share our GIL and slow both sides down), answers 200 to
every POST and counts them; the count is checked against what ``deliver`` reports.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = """
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
count = 0
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            count += 1
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        body = str(count).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""


def seed(db_url: str, items: int) -> None:
    """Items as the store writes them: each its own story, one or two topics, a `new` event."""
    from pipelines.db import Database
    from pipelines.models import AlertEvent, Item, ItemTopic, Story
    from pipelines.timeutil import utcnow

    db = Database(db_url)
    now = utcnow()
    topics = ["tda", "fentanyl", "firearms", "agreement"]
    with db.write() as s:
        for n in range(items):
            story = Story(title=f"Story {n}", created=now)
            s.add(story)
            s.flush()
            item = Item(url=f"https://www.justice.gov/opa/pr/bench-{n}", source="doj-api",
                        title=f"Eight charged in case {n}", text="text", published=now - timedelta(hours=1),
                        first_seen=now, updated=now, content_hash=f"{n:064x}", story_id=story.id)
            s.add(item)
            s.flush()
            for topic in {topics[n % 4], topics[(n // 4) % 4]}:
                s.add(ItemTopic(item_id=item.id, topic=topic, score=0.9, classified_at=now, evidence=[
                    {"phrase": topic, "sentence": f"The case is about {topic}.", "weight": 1.0, "where": "text"}
                ]))
            s.add(AlertEvent(kind="new", item_id=item.id, story_id=story.id, created=now))
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--watchers", type=int, default=20)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    # apprise 2.2 imports the deprecated stdlib `imghdr` when it loads its e-mail plugin: not ours to fix.
    warnings.filterwarnings("ignore", message="'imghdr' is deprecated", category=DeprecationWarning)

    from alerts.config import WatcherConfig
    from alerts.dispatch import deliver, plan
    from pipelines.db import Database

    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
            seed(url, args.items)
            watchers = [
                WatcherConfig.model_validate({"name": f"w{i}", "notify": [f"json://127.0.0.1:{port}/w{i}"]})
                for i in range(args.watchers)
            ]
            db = Database(url, create=False)
            t0 = time.perf_counter()
            planned = plan(db, watchers)
            t1 = time.perf_counter()
            report = deliver(db, watchers)
            t2 = time.perf_counter()
            db.dispose()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/count") as answer:
            received = int(answer.read())
    finally:
        server.terminate()
        server.wait()

    backend = (args.db or "sqlite").split(":", 1)[0]
    print(f"{args.items} items x {args.watchers} watchers on {backend}, webhook at 127.0.0.1:{port}")
    print(f"plan:    {planned} deliveries in {t1 - t0:.2f}s ({planned / (t1 - t0):,.0f}/s)")
    print(f"deliver: {report.sent} sent, {report.retrying} retrying, {report.failed} failed in {t2 - t1:.2f}s "
          f"= {report.sent / (t2 - t1):,.0f} alerts/s ({(t2 - t1) / max(report.sent, 1) * 1000:.2f} ms each)")
    print(f"plan+deliver: {t2 - t0:.2f}s for {args.items} items = {(t2 - t0) / args.items * 1000:.1f} ms per item")
    print(f"webhook received {received} (expected {report.sent})")
    if received != report.sent or report.sent != planned:
        sys.exit(1)


if __name__ == "__main__":
    main()
