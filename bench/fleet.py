"""Benchmark: ``borderwatch worker`` — CPU of a pass started warm vs cold, and passes per minute of 1, 2, 4 workers.

    python bench/fleet.py cpu [--db URL] [--repeat 3]
    python bench/fleet.py fleet [--db URL] [--sources 40] [--workers 1,2,4] [--concurrency 2] [--seconds 90]

``cpu``: two feed sources on a local site, one that never changes (its passes after the first are unchanged) and
one with two new releases at every fetch of its feed. Each is passed ``--repeat`` times as ``borderwatch run``
starts a pass (``python -m crawler crawl``, CPU from ``RUSAGE_CHILDREN``) and as a worker does (a fork of the warm
fork-server, ``crawler.daemon.warm``; the CPU of the fork and its extraction workers). Prints the medians.

``fleet``: ``--sources`` press offices, each on its own loopback address (127.0.0.2 … 127.0.0.41) with a 1 s delay
and two new releases (each its own story) at every pass, every source due every second, a watcher whose alerts go
to a local webhook. 1, 2 and 4 worker processes in turn (a fresh database each time), each at ``--concurrency``;
after every worker's first pass and ``--warmup`` seconds, a window of ``--seconds``. Prints passes per minute (ok
passes finished in the window) and the ratio to the first row, the median pass wall time and CPU per pass as the
workers logged them, and the alert latency (a release first listed in its feed → its alert at the webhook; median,
p90); then the ``cpu`` figures. The load is politeness-bound while the machine has CPU to spare: a pass is four
requests 1 s apart, so workers x concurrency is what scales it. Needs PostgreSQL (``--db``: a server URL whose user
may create databases; default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Words for the releases' bodies: each release gets its own draw, so no two are one story (stories.py) and each
# gets its own alert.
_WORDS = ("agents seized pills firearms cash vehicles phones ledgers couriers shipments warehouses routes suppliers "
         "brokers accounts wires invoices trucks trailers pallets tablets powder precursors presses labs customers "
         "dealers brothers cousins partners associates judges prosecutors analysts officers deputies inspectors "
         "troopers witnesses tenants landlords drivers pilots mechanics clerks bankers lawyers accountants")
WORDS = _WORDS.split()


def _release(title: str, key: str, published: float) -> bytes:
    import random

    rnd = random.Random(key)
    lead = (f"<p>A federal grand jury returned an indictment charging members of a trafficking network with "
            f"conspiracy to distribute fentanyl across the northern border ({title}).</p>")
    body = "".join("<p>" + " ".join(rnd.choice(WORDS) for _ in range(40)) + ".</p>" for _ in range(4))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(published))
    return (f"<html><head><title>{title}</title><meta property='article:published_time' content='{stamp}'>"
            f"</head><body><article><h1>{title}</h1>{lead}{body}</article></body></html>").encode()


def _handler(period: float | None, label: str, published: dict[str, float]) -> type[BaseHTTPRequestHandler]:
    """A press office: /feed.rss lists two releases; with ``period`` they change every ``period`` seconds, with
    ``period`` 0 at every fetch of the feed (each pass finds two new ones). ``published`` gets the time each
    release was first listed, by ``LABEL/N``: an alert's latency is counted from then."""
    fetches = itertools.count()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def _send(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            host = self.headers.get("Host", "")
            if self.path == "/robots.txt":
                self._send(b"User-agent: *\nAllow: /\n", "text/plain")
            elif self.path == "/feed.rss":
                n = next(fetches) if period == 0 else int(time.time() // period) if period else 0
                for k in (2 * n, 2 * n + 1):
                    published.setdefault(f"{label}/{k}", time.time())
                items = "".join(
                    f"<item><title>Fentanyl case {label} {k}</title><link>http://{host}/pr/{k}</link>"
                    f"<pubDate>{formatdate(published[f'{label}/{k}'], usegmt=True)}</pubDate></item>"
                    for k in (2 * n, 2 * n + 1))
                self._send(f"<?xml version='1.0'?><rss version='2.0'><channel><title>Office</title>{items}"
                           "</channel></rss>".encode(), "application/rss+xml")
            elif self.path.startswith("/pr/"):
                key = f"{label}/{self.path[4:]}"
                self._send(_release(f"Fentanyl case {label} {self.path[4:]} charged", key,
                                    published.get(key, time.time())), "text/html; charset=utf-8")
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

    return H


@contextmanager
def sites(hosts: list[str], period: float | None, published: dict[str, float] | None = None,
          first: int = 0) -> Iterator[list[str]]:
    """One press office per address (``office<first>`` on the first, …), each on its own port."""
    published = {} if published is None else published
    servers = [ThreadingHTTPServer((h, 0), _handler(period, f"office{first + i}", published))
               for i, h in enumerate(hosts)]
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield [f"http://{h}:{s.server_address[1]}/feed.rss" for h, s in zip(hosts, servers, strict=True)]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


class Webhook:
    """An HTTP endpoint apprise's ``json://`` posts alerts to: when each one arrived, and its text."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []
        hook = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
                hook.received.append((time.time(), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def database(admin: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bw_bench_fleet_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def write_config(folder: Path, url: str, feeds: list[str], every: str = "1h", delay: float = 0.0,
                 notify: str | None = None) -> Path:
    path = folder / "borderwatch.yaml"
    path.write_text(yaml.safe_dump({
        "database": url,
        "crawl": {"download_delay": delay, "extract_workers": 1, "retries": 0},
        "sources": [{"name": f"office{i}", "kind": "feed", "url": f, "every": every, "delay": delay}
                    for i, f in enumerate(feeds)],
        "run": {"grace": "5s", "dispatch_every": "1s"},
        **({"watchers": [{"name": "desk", "notify": [notify]}]} if notify else {}),
    }), encoding="utf-8")
    return path


def _cpu_of(crawl: list[str], repeat: int, expect: str) -> tuple[list[float], list[float]]:
    """CPU seconds of ``repeat`` passes run cold (``python -m crawler``), then as many warm (forked)."""
    from crawler.daemon.child import StopRequest
    from crawler.daemon.warm import run_warm
    from crawler.passes.report import read_reports

    cold: list[float] = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([sys.executable, "-m", "crawler", *crawl], capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert re.search(expect, out.stdout + out.stderr), out.stdout + out.stderr
        cold.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    warm: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        for _ in range(repeat):
            outcome = run_warm([*crawl, "--report-json", report], timeout=120, stop=StopRequest())
            assert outcome.exit_code == 0 and outcome.cpu is not None, outcome
            line = " ".join(r.line() for r in read_reports(report))
            assert re.search(expect, line), line
            warm.append(outcome.cpu)
    return cold, warm


def cpu(args: argparse.Namespace) -> None:
    from crawler.daemon.warm import warm_up

    warm_up(None)
    # office0's feed never changes (its passes after the first are unchanged); office1's lists two new releases
    # at every fetch.
    with tempfile.TemporaryDirectory() as tmp, database(args.db) as url, \
            sites(["127.0.0.1"], None) as same, sites(["127.0.0.1"], 0, first=1) as changing:
        cfg = write_config(Path(tmp), url, same + changing)
        crawl = ["--config", str(cfg), "crawl", "office0", "--no-alerts"]
        first = subprocess.run([sys.executable, "-m", "crawler", *crawl], capture_output=True, text=True)
        print("first pass:", (first.stdout + first.stderr).strip().splitlines()[-1])
        for what, name, expect in (("unchanged pass", "office0", r"\b0 new"), ("pass with 2 new pages", "office1",
                                                                              r"\b2 new")):
            cold, warm = _cpu_of(["--config", str(cfg), "crawl", name, "--no-alerts"], args.repeat, expect)
            print(f"{what}, CPU seconds (median of {args.repeat}): cold process {statistics.median(cold):.2f} "
                  f"{[round(c, 2) for c in cold]}; warm fork {statistics.median(warm):.2f} "
                  f"{[round(w, 2) for w in warm]}", flush=True)


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def fleet(args: argparse.Namespace) -> None:
    from sqlalchemy import create_engine, text

    hosts = [f"127.0.0.{2 + i}" for i in range(args.sources)]
    results: dict[int, float] = {}
    for n in [int(x) for x in args.workers.split(",")]:
        published: dict[str, float] = {}
        hook = Webhook()
        with tempfile.TemporaryDirectory() as tmp, database(args.db) as url, sites(hosts, 0, published) as feeds:
            # Every source is due every second: the queue always holds more passes than the workers' slots, so
            # passes per minute is what workers x concurrency passes at the sources' 1 s delay.
            cfg = write_config(Path(tmp), url, feeds, every="1s", delay=1.0, notify=hook.url())
            env = {k: v for k, v in os.environ.items() if k != "BORDERWATCH_CONFIG"}
            logs = [Path(tmp) / f"w{i}.log" for i in range(n)]
            procs = []
            for log in logs:
                with open(log, "wb") as f:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-m", "crawler", "--config", str(cfg), "worker", "--tick", "1",
                         "--concurrency", str(args.concurrency)], stdout=f, stderr=subprocess.STDOUT, env=env))
            # Start-up is not counted: the fork-servers' imports, and the first passes, which wait for them.
            end = time.monotonic() + 180
            while time.monotonic() < end and not all(": ok: " in log.read_text(errors="replace") for log in logs):
                time.sleep(1)
            time.sleep(args.warmup)
            engine = create_engine(url)
            q = text("SELECT count(*) FROM passes WHERE status = 'ok' AND finished >= now() - make_interval(secs => :s)")
            t0 = time.time()
            time.sleep(args.seconds)
            with engine.connect() as c:
                done = int(c.execute(q, {"s": args.seconds}).scalar_one())
                items = int(c.execute(text("SELECT count(*) FROM items")).scalar_one())
                failed = int(c.execute(text("SELECT count(*) FROM passes WHERE status NOT IN ('ok', 'running')"))
                             .scalar_one())
            engine.dispose()
            dead = [i for i, p in enumerate(procs) if p.poll() is not None]
            for i in dead:
                print(f"  worker {i} ended early (exit {procs[i].returncode}): "
                      f"{logs[i].read_text(errors='replace').strip().splitlines()[-1:]}", flush=True)
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
            hook.close()
            text_all = "".join(log.read_text(errors="replace") for log in logs)
            cpus = [float(c) for c in re.findall(r"\(([\d.]+)s CPU\)", text_all)]
            walls = [float(w) for w in re.findall(r": ok: .* in ([\d.]+)s", text_all)]
            # Alert latency: from a release's first listing in its feed to its alert reaching the webhook, for
            # releases first listed in the measured window.
            latency = []
            for at, body in hook.received:
                for label, k in set(re.findall(r"Fentanyl case (office\d+) (\d+)", body)):
                    first = published.get(f"{label}/{k}")
                    if first is not None and first >= t0:
                        latency.append(at - first)
            results[n] = done * 60 / args.seconds
            base = results[min(results)]
            print(f"{n} worker{'s' if n > 1 else ''} x concurrency {args.concurrency}: "
                  f"{results[n]:.1f} passes/min ({results[n] / base:.2f}x {min(results)}), {failed} not ok; "
                  f"{items} items; pass wall median {statistics.median(walls) if walls else float('nan'):.1f}s; "
                  f"CPU per pass (2 new pages) median {statistics.median(cpus) if cpus else float('nan'):.2f}s; "
                  f"alert latency median {_pct(latency, 0.5):.1f}s p90 {_pct(latency, 0.9):.1f}s "
                  f"({len(latency)} alerts)", flush=True)
            if "Traceback" in text_all:
                print("  (a worker logged a traceback: see", logs, ")")
    if args.unchanged:
        ns = argparse.Namespace(**{**vars(args), "repeat": 3})
        cpu(ns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["cpu", "fleet"])
    parser.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sources", type=int, default=40)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=90)
    parser.add_argument("--warmup", type=int, default=10,
                        help="fleet: seconds after every worker's first pass before the measured window")
    parser.add_argument("--no-unchanged", dest="unchanged", action="store_false",
                        help="fleet: skip the closing CPU figures of an unchanged pass (the cpu mode)")
    args = parser.parse_args()
    cpu(args) if args.mode == "cpu" else fleet(args)


if __name__ == "__main__":
    main()
