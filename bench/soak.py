"""Soak: ``borderwatch run`` against a local site for N minutes, with new releases appearing all the time.

Prints the daemon's RSS at start and end (and its low and high), the passes run by status, and the alert
latency — from a release appearing on the site to its alert reaching the webhook — median and max.

    python bench/soak.py [--minutes 10] [--sources 3] [--every 3s] [--publish-every 15]

Every source is an RSS feed on a local server with justice.gov-template pages; a publisher thread adds an
on-topic release to one feed after another; a local webhook (apprise ``json://``) receives the alerts.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/alerts.py would shadow the `alerts` package: the project root and tests/ go first instead.
sys.path[0:1] = [str(ROOT), str(ROOT / "tests")]

from alert_support import Webhook  # noqa: E402
from helpers import write_config  # noqa: E402
from localsite import Site, justice_page, rss, serve  # noqa: E402

FIRST = ["Luis", "Carlos", "Jose", "Maria", "Ana", "Pedro", "Jorge", "Rosa", "Miguel", "Elena", "Raul", "Diego"]
LAST = ["Ramirez", "Castillo", "Mendoza", "Herrera", "Villalobos", "Quintero", "Salazar", "Bermudez", "Ochoa",
        "Zamora", "Arriaga", "Benavides", "Cardenas", "Duarte", "Espinoza", "Galindo"]
CITIES = ["Nashville", "El Paso", "Laredo", "Houston", "Phoenix", "Tucson", "San Diego", "Denver", "Atlanta",
          "Chicago", "Miami", "Omaha", "Tulsa", "Albuquerque", "Boise", "Richmond", "Newark", "Charlotte"]
KINDS = [
    ("{who}, {age}, a member of the Tren de Aragua gang, was charged in {city} with sex trafficking and "
     "extortion of {n} women held in motels.",
     "Tren de Aragua Member {who} Charged in {city}"),
    ("{who}, {age}, of {city}, was sentenced to {n} years in prison for distributing fentanyl pills that "
     "caused a fatal overdose.",
     "{city} Man {who} Sentenced for Fentanyl Distribution"),
    ("{who}, {age}, pleaded guilty in {city} to buying {n} rifles as a straw purchaser for a cartel that "
     "smuggled the firearms into Mexico.",
     "Straw Purchaser {who} Pleads Guilty to Trafficking {n} Rifles"),
]


def release(k: int, rng: random.Random) -> tuple[str, list[str]]:
    who = f"{rng.choice(FIRST)} {rng.choice(LAST)}-{rng.choice(LAST)}"
    city = rng.choice(CITIES)
    body, title = KINDS[k % len(KINDS)]
    values = {"who": who, "age": rng.randrange(19, 60), "city": city, "n": rng.randrange(3, 90)}
    paragraphs = [
        body.format(**values),
        f"According to court documents, the case number {rng.randrange(10**6)} began when agents in {city} "
        f"traced {rng.randrange(2, 40)} transfers worth ${rng.randrange(10, 900)},000 to accounts abroad.",
        f"Assistant U.S. Attorney {rng.choice(FIRST)} {rng.choice(LAST)} is prosecuting release {k}.",
    ]
    return title.format(**values), paragraphs


class Feeds:
    """N RSS feeds on one site; ``publish`` adds a release to one of them."""

    def __init__(self, site: Site, n: int) -> None:
        self.site = site
        self.entries: list[list[dict[str, str]]] = [[] for _ in range(n)]
        for i in range(n):
            site.add(f"/feed{i}.rss", rss([]), content_type="application/rss+xml")

    def publish(self, i: int, slug: str, title: str, paragraphs: list[str]) -> None:
        now = datetime.now(UTC)
        self.site.add(f"/pr/{slug}", justice_page(title, paragraphs, date=now.strftime("%Y-%m-%dT%H:%M:%SZ")))
        # Feeds keep their 20 newest entries, as real ones do.
        self.entries[i] = [{"title": title, "link": self.site.url(f"/pr/{slug}"),
                            "pubDate": format_datetime(now, usegmt=True)}, *self.entries[i]][:20]
        self.site.change(f"/feed{i}.rss", rss(self.entries[i]))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--sources", type=int, default=3)
    ap.add_argument("--every", default="3s", help="each source's schedule")
    ap.add_argument("--publish-every", type=float, default=15.0, help="seconds between two new releases")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--database", default=None, help="a SQLAlchemy URL (default: SQLite in a temp folder)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bw-soak-"))
    database = args.database or f"sqlite:///{tmp / 'soak.db'}"
    site = Site()
    rng = random.Random(11)
    appeared: dict[str, float] = {}
    with serve(site), Webhook() as hook:
        feeds = Feeds(site, args.sources)
        config = write_config(tmp / "borderwatch.yaml", {
            "database": database,
            "crawl": {"download_delay": 0, "extract_workers": 1, "retries": 1, "timeout": 20},
            "sources": [{"name": f"feed{i}", "kind": "feed", "url": site.url(f"/feed{i}.rss"), "every": args.every}
                        for i in range(args.sources)],
            "watchers": [{"name": "desk", "notify": [hook.url()], "admin": True}],
            "run": {"dispatch_every": "5s", "parallel": args.parallel, "pass_timeout": "2m", "grace": "30s"},
        })
        log_path = tmp / "daemon.log"
        env = {k: v for k, v in os.environ.items() if k != "BORDERWATCH_CONFIG"}
        with open(log_path, "wb") as log:
            daemon = subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(config), "run"],
                                      stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        started = time.monotonic()
        end = started + args.minutes * 60
        stop = threading.Event()

        def publisher() -> None:
            k = 0
            while not stop.wait(args.publish_every):
                title, paragraphs = release(k, rng)
                appeared[title] = time.monotonic()
                feeds.publish(k % args.sources, f"r{k}", title, paragraphs)
                k += 1

        arrived: list[float] = []  # when each webhook post was first seen (the webhook keeps no time)

        def clock() -> None:
            while not done.is_set():
                while len(arrived) < len(hook.received):
                    arrived.append(time.monotonic())
                time.sleep(0.05)

        done = threading.Event()
        samples: list[tuple[float, int]] = []
        threading.Thread(target=publisher, daemon=True).start()
        threading.Thread(target=clock, daemon=True).start()
        try:
            while time.monotonic() < end and daemon.poll() is None:
                samples.append((time.monotonic() - started, rss_kb(daemon.pid)))
                time.sleep(5)
            stop.set()
            if daemon.poll() is not None:
                print(f"the daemon exited early ({daemon.returncode}); see {log_path}")
            # Let the last releases' alerts arrive before the daemon is stopped.
            time.sleep(min(20.0, args.publish_every))
            samples.append((time.monotonic() - started, rss_kb(daemon.pid)))
            t = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(120)
            stop_seconds = time.monotonic() - t
        finally:
            if daemon.poll() is None:
                daemon.kill()
            time.sleep(0.2)
            done.set()
        received: dict[str, float] = {}
        for r, at in zip(hook.received, arrived, strict=False):
            title = str(r.payload.get("title", ""))
            for name in appeared:
                if name in title and name not in received:
                    received[name] = at
    report(database, samples, appeared, received, code, stop_seconds, log_path, args)


def report(database: str, samples: list[tuple[float, int]], appeared: dict[str, float], received: dict[str, float],
           code: int, stop_seconds: float, log_path: Path, args: Any) -> None:
    from sqlalchemy import func, select

    from pipelines.db import Database
    from pipelines.models import Pass

    db = Database(database)
    with db.read() as s:
        by_status = Counter({r.status: r.n for r in s.execute(
            select(Pass.status, func.count().label("n")).group_by(Pass.status))})
        seconds = [(p.finished - p.started).total_seconds() for p in s.scalars(select(Pass)) if p.finished]
    db.dispose()
    # "Start": once the daemon is up (imports done, first passes run); a sample taken at spawn says nothing.
    start = next((kb for t, kb in samples if t >= 10), samples[0][1])
    warm = next((kb for t, kb in samples if t >= 60), samples[-1][1])
    latencies = sorted(received[t] - appeared[t] for t in received)
    print(f"soak: {args.minutes:g} min, {args.sources} sources every {args.every}, a new release every "
          f"{args.publish_every:g}s, {args.parallel} passes at once")
    steady = [kb for t, kb in samples if t >= 10] or [kb for _, kb in samples]
    print(f"daemon RSS: start (10s) {start / 1024:.1f} MB, after 1 min {warm / 1024:.1f} MB, end "
          f"{samples[-1][1] / 1024:.1f} MB (low {min(steady) / 1024:.1f}, high {max(steady) / 1024:.1f})")
    # The daemon's pass lines end "… in 3.1s": the child's whole life, process start-up included.
    walls = [float(m) for m in re.findall(r": \w+: \d+ new, .* responses in (\d+\.\d+)s", log_path.read_text())]
    by_minute = [next(kb for t, kb in samples if t >= m * 60) for m in range(int(samples[-1][0] // 60) + 1)]
    print("daemon RSS by minute (MB): " + " ".join(f"{kb / 1024:.1f}" for kb in by_minute))
    print(f"passes: {sum(by_status.values())} ({', '.join(f'{n} {k}' for k, n in by_status.most_common())}); "
          f"median {statistics.median(walls) if walls else 0:.1f}s per pass process "
          f"({statistics.median(seconds) if seconds else 0:.1f}s of it crawling)")
    if latencies:
        print(f"alert latency (on the site → at the webhook): median {statistics.median(latencies):.1f}s, "
              f"max {latencies[-1]:.1f}s over {len(latencies)} of {len(appeared)} releases")
    else:
        print(f"alert latency: no alert received for {len(appeared)} releases")
    print(f"SIGTERM → exit {code} in {stop_seconds:.1f}s; log: {log_path}")


if __name__ == "__main__":
    main()
