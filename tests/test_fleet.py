"""``borderwatch worker``: several real worker processes on one real PostgreSQL database and a local site.

Every due source passes once, never by two workers at once; a worker killed mid-pass has its pass run again by
another worker with no item or alert doubled; SQLite is refused with one line.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alert_support import Webhook
from helpers import bw, write_config
from localsite import Site, justice_page, rss, serve
from sqlalchemy import select, text
from test_daemon import AVOCADO, FENTANYL, TDA, DaemonProcess, Feed

from pipelines.db import Database
from pipelines.leases import lease
from pipelines.models import Item, Pass


class WorkerProcess:
    """``borderwatch worker`` in its own process (and process group), its log in a file."""

    def __init__(self, config: Path, log: Path, *args: str) -> None:
        self.log = log
        env = {k: v for k, v in os.environ.items() if k != "BORDERWATCH_CONFIG"}
        with open(log, "ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(config), "worker",
                                          "--tick", "1", *args], stdout=f, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"the worker did not stop within {timeout}s:\n{self.text()[-3000:]}") from None


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(config: Path, *args: str) -> WorkerProcess:
        w = WorkerProcess(config, tmp_path / f"worker{len(started)}.log", *args)
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    for w in started:
        try:
            w.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(w.proc.pid, signal.SIGKILL)
            w.proc.wait()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with serve(s):
        s.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        yield s


def wait_until(what: str, check: Callable[[], Any], timeout: float, logs: Callable[[], str] = lambda: "") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs()[-4000:]}")


def fleet_config(tmp_path: Path, url: str, sources: list[dict[str, Any]], grace: str = "10s", **extra: Any) -> Path:
    return write_config(tmp_path / "borderwatch.yaml", {
        "database": url,
        "crawl": {"download_delay": 0, "extract_workers": 1, "retries": 0, "timeout": 60},
        "sources": sources,
        "run": {"dispatch_every": "1s", "grace": grace},
        **extra,
    })


def passes(db: Database, source: str | None = None) -> list[Pass]:
    with db.read() as s:
        q = select(Pass).order_by(Pass.id)
        if source is not None:
            q = q.where(Pass.source == source)
        return list(s.scalars(q))


def test_sqlite_is_refused_with_one_line(tmp_path: Path, sqlite_url: str) -> None:
    cfg = fleet_config(tmp_path, sqlite_url, [{"name": "a", "kind": "feed", "url": "http://127.0.0.1:9/a.rss"}])
    proc = bw(cfg, "worker", timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs PostgreSQL" in lines[0] and "borderwatch run" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_processes_opening_a_new_database_at_once_migrate_it_once(postgres_url: str) -> None:
    """Workers started together on a new database: one applies the migrations, the others wait and find them
    applied (without the advisory lock, one died on a duplicate key in pg_type)."""
    code = "import sys; from pipelines.db import Database; Database(sys.argv[1]).dispose(); print('opened')"
    procs = [subprocess.Popen([sys.executable, "-c", code, postgres_url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-2000:] for _, err in outs]
    assert all(out.strip() == "opened" for out, _ in outs)
    db = Database(postgres_url)
    try:
        with db.read() as s:
            assert s.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        db.dispose()


def test_two_workers_pass_each_due_source_once(tmp_path: Path, postgres_url: str, site: Site,
                                               workers: Callable[..., WorkerProcess]) -> None:
    feeds = [Feed(site, f"/feed{i}.rss") for i in range(4)]
    for i, f in enumerate(feeds):
        f.publish(f"tda{i}", f"Tren de Aragua Case {i}", TDA)
    cfg = fleet_config(tmp_path, postgres_url,
                       [{"name": f"s{i}", "kind": "feed", "url": f.url, "every": "1h"} for i, f in enumerate(feeds)])
    a, b = workers(cfg, "--concurrency", "2"), workers(cfg, "--concurrency", "2")
    db = Database(postgres_url)
    try:
        wait_until("a pass of every source",
                   lambda: {p.source for p in passes(db) if p.status == "ok"} == {f"s{i}" for i in range(4)},
                   90, lambda: a.text() + b.text())
        time.sleep(4)  # several more ticks by both workers: nothing is due again for an hour
        shown = json.loads(bw(cfg, "status", "--format", "json").stdout)["fleet"]
        assert len(shown["workers"]) == 2 and shown["queue"] == {"due": 0, "waiting": 0, "running": 0, "stalled": 0}
        assert sorted(w["pid"] for w in shown["workers"]) == sorted([a.proc.pid, b.proc.pid])
        assert all(w["host"] == socket.gethostname() and w["alive"] and w["concurrency"] == 2 and w["passes"] == []
                   for w in shown["workers"]), shown
        table = bw(cfg, "status").stdout
        assert "workers: 2; passes: 0 due, 0 waiting, 0 running, 0 stalled" in table, table
        assert f"worker {socket.gethostname()} pid {a.proc.pid}: up " in table, table
        # `borderwatch run` beside live workers would pass every source twice: refused with one line.
        refused = bw(cfg, "run", timeout=60)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.count("\n") == 1 and "2 workers" in refused.stderr, refused.stderr
        rows = passes(db)
        assert sorted(p.source for p in rows) == ["s0", "s1", "s2", "s3"], [(p.source, p.status) for p in rows]
        assert all(p.status == "ok" for p in rows)
        with db.read() as s:
            assert s.scalar(select(text("count(*)")).select_from(Item)) == 4
        assert a.stop() == 0 and b.stop() == 0
        logs = a.text() + b.text()
        assert "Traceback" not in logs
        # The work was shared: the tick deferred each pass once, whichever worker ran it.
        assert len(re.findall(r"borderwatch\.worker: s\d: ok: 1 new", logs)) == 4, logs[-3000:]
    finally:
        db.dispose()


def test_never_two_passes_of_a_source_at_once(tmp_path: Path, postgres_url: str, site: Site,
                                              workers: Callable[..., WorkerProcess]) -> None:
    feed = Feed(site, "/slow.rss")
    feed.publish("tda", "Tren de Aragua Members Charged", TDA)
    site.pages["/pr/tda"].hang = 2.0  # each pass takes a while
    cfg = fleet_config(tmp_path, postgres_url, [{"name": "slow", "kind": "feed", "url": feed.url, "every": "1s"}],)
    ws = [workers(cfg, "--concurrency", "2") for _ in range(2)]
    db = Database(postgres_url)
    try:
        # While a pass runs, status names the worker passing over it (its own register, written by the worker).
        def passing() -> list[str]:
            shown = json.loads(bw(cfg, "status", "--format", "json").stdout)["fleet"] or {"workers": []}
            return [p for w in shown["workers"] for p in w["passes"]]

        assert wait_until("status to show the pass running", passing, 60) == ["slow"]
        wait_until("three passes", lambda: len([p for p in passes(db) if p.finished]) >= 3, 90,
                   lambda: "".join(w.text() for w in ws))
        for w in ws:
            assert w.stop() == 0
        rows = [p for p in passes(db) if p.finished]
        spans = sorted((p.started, p.finished) for p in rows)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, spans  # one after the other, never overlapping
    finally:
        db.dispose()


def test_worker_killed_mid_pass_is_rerun_elsewhere_exactly_once(
        tmp_path: Path, postgres_url: str, site: Site, workers: Callable[..., WorkerProcess]) -> None:
    feed = Feed(site, "/news.rss")
    feed.publish("tda", "Tren de Aragua Members Charged", TDA)
    feed.publish("fentanyl", "Texas Man Sentenced for Fentanyl Distribution", FENTANYL)
    feed.publish("avocado", "Avocado Trade Talks Continue", AVOCADO)
    site.pages["/pr/fentanyl"].hang = 6.0  # the pass is still running when its worker is killed
    with Webhook() as hook:
        cfg = fleet_config(tmp_path, postgres_url,
                           [{"name": "news", "kind": "feed", "url": feed.url, "every": "1h"}],
                           watchers=[{"name": "desk", "notify": [hook.url()], "admin": True}])
        db = Database(postgres_url)
        try:
            a = workers(cfg)
            wait_until("the pass to start", lambda: [p for p in passes(db) if p.status == "running"], 60, a.text)
            time.sleep(1.0)
            os.killpg(a.proc.pid, signal.SIGKILL)  # the worker (its fork-server with it); the pass kills itself
            a.proc.wait()
            b = workers(cfg)
            wait_until("the pass to complete elsewhere", lambda: [p for p in passes(db) if p.status == "ok"], 90,
                       lambda: a.text() + b.text())
            wait_until("the alerts", lambda: len([t for t in hook.titles() if "Fentanyl" in t]) >= 1, 30, b.text)
            time.sleep(3)
            assert b.stop() == 0
            with db.read() as s:
                urls = list(s.scalars(select(Item.url)))
            assert len(urls) == len(set(urls)) == 3
            assert len([t for t in hook.titles() if "Fentanyl" in t]) == 1
            assert len([t for t in hook.titles() if "Tren de Aragua" in t]) == 1
            # The killed worker's job was handed back by the stalled-job sweep, and its pass recorded as crashed.
            assert "left running by a worker that is gone: queued again" in b.text(), b.text()[-3000:]
            assert [p.status for p in passes(db)] == ["crashed", "ok"], [(p.status, p.error) for p in passes(db)]
        finally:
            db.dispose()


def test_worker_refused_beside_a_running_daemon(tmp_path: Path, postgres_url: str, site: Site) -> None:
    feed = Feed(site, "/news.rss")
    cfg = fleet_config(tmp_path, postgres_url, [{"name": "news", "kind": "feed", "url": feed.url, "every": "1h"}])
    d = DaemonProcess(cfg, tmp_path / "daemon.log")
    db = Database(postgres_url)
    try:
        wait_until("the daemon's lease", lambda: lease(db, "daemon") is not None, 60, d.text)
        proc = bw(cfg, "worker", timeout=60)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "`borderwatch run`" in lines[0] and str(d.pid) in lines[0], proc.stderr
        with db.read() as s:  # the refused worker left no row behind
            assert s.scalar(select(text("count(*)")).select_from(text("workers"))) == 0
        assert d.stop(30)[0] == 0
    finally:
        d.kill()
        db.dispose()


@pytest.mark.parametrize(("grace", "hang", "expected"), [
    ("30s", 4.0, ["ok"]),  # the pass ends within run.grace: it finishes on the stopping worker
    ("1s", 8.0, ["stopped", "ok"]),  # it does not: stopped, handed back, and run by the next worker
])
def test_sigterm_mid_pass_finishes_or_hands_back_the_pass(
        tmp_path: Path, postgres_url: str, site: Site, workers: Callable[..., WorkerProcess],
        grace: str, hang: float, expected: list[str]) -> None:
    feed = Feed(site, "/news.rss")
    feed.publish("tda", "Tren de Aragua Members Charged", TDA)
    feed.publish("fentanyl", "Texas Man Sentenced for Fentanyl Distribution", FENTANYL)
    feed.publish("avocado", "Avocado Trade Talks Continue", AVOCADO)
    site.pages["/pr/fentanyl"].hang = hang  # the pass is still running when its worker gets SIGTERM
    with Webhook() as hook:
        cfg = fleet_config(tmp_path, postgres_url, [{"name": "news", "kind": "feed", "url": feed.url, "every": "1h"}],
                           grace=grace, watchers=[{"name": "desk", "notify": [hook.url()], "admin": True}])
        db = Database(postgres_url)
        try:
            a = workers(cfg)
            wait_until("the pass to start", lambda: [p for p in passes(db) if p.status == "running"], 60, a.text)
            time.sleep(1.0)
            a.proc.send_signal(signal.SIGTERM)
            assert a.proc.wait(60) == 0, a.text()[-3000:]
            assert [p.status for p in passes(db)] == expected[:1], [(p.status, p.error) for p in passes(db)]
            if expected == ["stopped", "ok"]:
                assert "news: pass handed back to the queue" in a.text(), a.text()[-3000:]
            b = workers(cfg)
            wait_until("an ok pass", lambda: [p for p in passes(db) if p.status == "ok"], 90, b.text)
            wait_until("the alerts", lambda: len([t for t in hook.titles() if "Fentanyl" in t]) >= 1, 30, b.text)
            time.sleep(3)  # more ticks and dispatches: nothing is sent again
            assert b.stop() == 0
            assert [p.status for p in passes(db)] == expected, [(p.status, p.error) for p in passes(db)]
            with db.read() as s:
                urls = list(s.scalars(select(Item.url)))
            assert len(urls) == len(set(urls)) == 3
            assert len([t for t in hook.titles() if "Fentanyl" in t]) == 1
            assert len([t for t in hook.titles() if "Tren de Aragua" in t]) == 1
            assert "Traceback" not in a.text() + b.text()
        finally:
            db.dispose()


def test_two_workers_requests_to_one_host_are_spaced_by_its_delay(
        tmp_path: Path, postgres_url: str, site: Site, workers: Callable[..., WorkerProcess]) -> None:
    """Two sources on one host, each passed by its own worker at the same time: the host's 1 s delay holds
    between every two requests it gets, whichever worker makes them."""
    sources = []
    for name in ("east", "west"):
        entries = []
        for i in range(3):
            path = f"/{name}/pr/{i}"
            site.add(path, justice_page(f"Fentanyl Case {name} {i}", FENTANYL))
            entries.append({"title": f"Fentanyl Case {name} {i}", "link": site.url(path),
                            "pubDate": "Mon, 23 Nov 2026 12:00:00 GMT"})
        site.add(f"/{name}.rss", rss(entries), content_type="application/rss+xml")
        sources.append({"name": name, "kind": "feed", "url": site.url(f"/{name}.rss"), "every": "1h", "delay": 1.0})
    cfg = fleet_config(tmp_path, postgres_url, sources)
    ws = [workers(cfg, "--concurrency", "1") for _ in range(2)]
    db = Database(postgres_url)
    try:
        wait_until("both passes", lambda: len([p for p in passes(db) if p.status == "ok"]) == 2, 120,
                   lambda: "".join(w.text() for w in ws))
        for w in ws:
            assert w.stop() == 0
        pages = [t for t, path, _, _ in site.log if path != "/robots.txt"]
        assert len(pages) == 8  # two feeds, six releases
        both = {w for w in (1, 2) if any(f"borderwatch.worker: {n}: ok" in ws[w - 1].text() for n in ("east", "west"))}
        assert both == {1, 2}  # each worker passed one source: the spacing below is across processes
        times = sorted(t for t, _, _, _ in site.log)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.95, gaps  # (robots.txt too: it is a request to the host like any other)
    finally:
        db.dispose()
