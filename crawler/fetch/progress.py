"""What a long pass shows while it runs: per source, pages fetched of those queued, new items, elapsed time.

On a terminal (stderr is a TTY) a live display (rich) keeps one line per source up to date; anywhere else (a
log file, the daemon's children) one log line per source every ``crawl.progress_every``, through logging
(logger ``borderwatch.progress``, at INFO, shown without ``-v``).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TextIO

from scrapy.crawler import Crawler

from crawler.daemon.health import human
from crawler.daemon.logs import fields
from crawler.passes.context import PassContext

log = logging.getLogger("borderwatch.progress")

# How often the live display is refreshed: often enough to look alive, rarely enough to cost nothing.
LIVE_REFRESH = 0.5


@dataclass(frozen=True)
class SourceProgress:
    source: str
    fetched: int  # responses received (pages, feeds, listing pages, API pages)
    queued: int  # requests scheduled so far (the total grows as pages are discovered)
    new: int
    updated: int
    done: bool

    def line(self, elapsed: float) -> str:
        state = "done" if self.done else "running"
        return (f"{self.source}: {state}, {self.fetched} of {self.queued} pages fetched, {self.new} new, "
                f"{self.updated} updated, {human(timedelta(seconds=elapsed))} elapsed")


def snapshot(source: str, crawler: Crawler, ctx: PassContext) -> SourceProgress:
    """Read from another thread: single reads of counters the reactor thread updates, never an iteration."""
    try:
        stats = crawler.stats
    except RuntimeError:  # the crawl has not started yet
        stats = None
    get = stats.get_value if stats is not None else (lambda _key, default=0: default)
    return SourceProgress(
        source=source,
        fetched=int(get("downloader/response_count", 0) or 0),
        queued=int(get("scheduler/enqueued", 0) or 0),
        new=ctx.tally.new,
        updated=ctx.tally.updated,
        done=get("finish_reason", None) is not None,
    )


class PassProgress:
    """Reports the progress of the sources of one pass from a thread of its own until ``stop``."""

    def __init__(self, runs: Sequence[tuple[str, Crawler, PassContext]], *, every: float,
                 stream: TextIO | None = None, live: bool | None = None) -> None:
        self.runs = list(runs)
        self.every = every
        self.stream = stream or sys.stderr
        if live is None:  # a closed or absent stderr (a service) is no terminal
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty()) if callable(isatty) and not getattr(self.stream, "closed", False) else False
        self.live = live
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def __enter__(self) -> PassProgress:
        if self.runs:
            self._started = time.monotonic()
            target = self._live if self.live else self._log
            self._thread = threading.Thread(target=target, name="pass-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def snapshots(self) -> list[SourceProgress]:
        return [snapshot(name, crawler, ctx) for name, crawler, ctx in self.runs]

    def _log(self) -> None:
        while not self._stop.wait(self.every):
            elapsed = time.monotonic() - self._started
            for p in self.snapshots():
                if p.done:
                    continue
                log.info(p.line(elapsed), extra=fields(
                    event="progress", source=p.source, fetched=p.fetched, queued=p.queued, new=p.new,
                    updated=p.updated, seconds=round(elapsed, 1)))

    def _live(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(file=self.stream)
        columns = (
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("pages"),
            TextColumn("{task.fields[new]} new"), TimeElapsedColumn(),
        )
        # Transient: the pass's summary lines, printed once it ends, say the last word.
        with Progress(*columns, console=console, transient=True, refresh_per_second=4) as bars:
            tasks = {name: bars.add_task(name, total=None, new=0) for name, _, _ in self.runs}
            while True:
                for p in self.snapshots():
                    task = tasks[p.source]
                    if p.done:
                        bars.update(task, completed=p.fetched, total=max(p.fetched, 1), new=p.new)
                    else:
                        bars.update(task, completed=p.fetched, total=max(p.queued, p.fetched) or None, new=p.new)
                if self._stop.wait(LIVE_REFRESH):
                    break
