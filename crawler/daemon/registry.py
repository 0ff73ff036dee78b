"""The fleet's register of workers (the ``workers`` table): where each ``borderwatch worker`` runs, its heartbeat
and what it is passing over now.

procrastinate keeps a worker id and a heartbeat only; ``borderwatch status`` shows host, pid, start, heartbeat and
current passes from here. It also keeps ``borderwatch run`` and workers off one database: both would schedule
every source. Each side writes its own mark first (the daemon its lease, a worker its row) and then looks for the
other's, so of two starting at once at least one sees the other and refuses.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from pipelines.db import Database
from pipelines.leases import lease, owner_gone
from pipelines.models import Worker
from pipelines.timeutil import utcnow

log = logging.getLogger("borderwatch.worker")

# A worker whose heartbeat is older than this is taken for dead (its jobs are run again elsewhere, status says so,
# `borderwatch run` may start). Heartbeats are written every HEARTBEAT_EVERY seconds.
HEARTBEAT_EVERY = 5.0
SILENT_AFTER = 20.0
# A row silent this long is a worker that died (SIGKILL, a lost machine): shown as such by status, then forgotten.
FORGET_AFTER = timedelta(hours=1)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def register(db: Database, name: str, concurrency: int, now: datetime) -> None:
    """This worker's row (a row of a dead worker that had this name, a reused pid, is replaced)."""
    host, _, pid = name.rpartition(":")
    with db.write() as s:
        s.execute(delete(Worker).where((Worker.name == name) | (Worker.heartbeat < now - FORGET_AFTER)))
        s.add(Worker(name=name, host=host, pid=int(pid), concurrency=concurrency, started=now, heartbeat=now,
                     passing=[]))


def beat(db: Database, name: str, passing: list[str], now: datetime) -> None:
    with db.write() as s:
        s.execute(update(Worker).where(Worker.name == name).values(heartbeat=now, passing=passing))


def unregister(db: Database, name: str) -> None:
    with db.write() as s:
        s.execute(delete(Worker).where(Worker.name == name))


def all_workers(db: Database) -> list[Worker]:
    with db.read() as s:
        return list(s.scalars(select(Worker).order_by(Worker.host, Worker.pid)))


def live_workers(db: Database, now: datetime, silent_after: float, but: str | None = None) -> list[Worker]:
    """Workers whose heartbeat is newer than ``silent_after`` seconds (other than ``but``)."""
    return [w for w in all_workers(db)
            if w.name != but and w.heartbeat > now - timedelta(seconds=silent_after)]


def live_daemon(db: Database, now: datetime) -> str | None:
    """The ``borderwatch run`` holding this database's daemon lease, if it is alive."""
    from crawler.daemon.scheduler import DAEMON_LEASE_NAME

    held = lease(db, DAEMON_LEASE_NAME)
    if held is None or held[1] <= now or owner_gone(held[0]):
        return None
    return held[0]


def describe(workers: list[Worker]) -> str:
    names = ", ".join(w.name for w in workers[:3]) + (f" and {len(workers) - 3} more" if len(workers) > 3 else "")
    return f"{len(workers)} worker{'s' if len(workers) != 1 else ''} ({names})"


class Heartbeat:
    """A thread that writes this worker's heartbeat and current passes every ``every`` seconds, and at once when
    ``poke``-d (a pass started or ended)."""

    def __init__(self, db: Database, name: str, every: float, passing: Callable[[], list[str]]) -> None:
        self.db, self.name, self.every, self.passing = db, name, every, passing
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="borderwatch-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.every)
            self._wake.clear()
            if self._stop:
                return
            try:
                beat(self.db, self.name, sorted(self.passing()), utcnow())
            except Exception as exc:  # the database is away for a moment: the next beat tries again
                log.warning("heartbeat not written: %s", str(exc).splitlines()[0] if str(exc) else exc)
