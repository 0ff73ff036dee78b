"""A pass in a child process started from a warm parent: multiprocessing's fork-server with our modules preloaded.

``borderwatch run`` starts each pass as ``python -m crawler crawl`` (about 2.5 s of imports before the first request).
A worker instead starts one fork-server process that imports Scrapy, Twisted, the store and the extraction code
once; each pass is a fork of it (``crawl SOURCE --no-alerts --report-json PATH`` called in-process), so it starts
with everything imported and still gets a reactor of its own. The child leads its own process group (so a
timeout kills its extraction workers too) and kills that group if the worker that asked for it dies (SIGKILL,
OOM): another worker re-runs the pass, and two copies of it must not go on side by side.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import signal
import threading
import time
from multiprocessing.context import ForkServerContext
from typing import Any

from crawler.daemon.child import KILL_AFTER, POLL, ChildOutcome, StopRequest

# Imported once in the fork-server, inherited by every pass it forks.
PRELOAD = [
    "crawler.cli.main", "crawler.passes.run", "crawler.fetch.spiders", "pipelines.store", "pipelines.worker",
    "pipelines.classify", "scrapy.crawler", "twisted.internet.defer", "sqlalchemy", "psycopg",
    # Imported by the extraction code on its first page: half the CPU of a forked extraction worker otherwise.
    "trafilatura",
    "crawler.daemon.preload",  # Scrapy's components, and the topic rules compiled (BORDERWATCH_PRELOAD_TOPICS)
]

_context: ForkServerContext | None = None
_lock = threading.Lock()


def context() -> ForkServerContext:
    """The fork-server context, its preload set (the server itself starts with the first pass)."""
    global _context
    with _lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            assert isinstance(ctx, ForkServerContext)
            ctx.set_forkserver_preload(PRELOAD)
            _context = ctx
        return _context


def warm_up(topics: str | None = None) -> None:
    """Start the fork-server now (its imports take the seconds a first pass would otherwise wait); it compiles
    the topic rules of ``topics`` ("" or None: the shipped ones) once for every pass."""
    from multiprocessing import forkserver

    os.environ["BORDERWATCH_PRELOAD_TOPICS"] = topics or ""
    context()
    forkserver.ensure_running()


def _orphan_guard(worker_pid: int) -> None:
    """In the child: if the worker that started this pass is gone, stop the pass and its whole group."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            os.killpg(0, signal.SIGKILL)
        except PermissionError:  # pragma: no cover - a pid reused by another user's process: gone too
            os.killpg(0, signal.SIGKILL)


def _pass_child(argv: list[str], worker_pid: int, cpu_out: Any) -> None:
    """The child's body: the CLI's ``crawl``, exactly as ``borderwatch crawl`` runs it. Its CPU time (since the
    fork, its extraction workers included) is sent back on ``cpu_out`` as it ends."""
    os.setsid()
    # The pass's one-line summary is the worker's to log (from the report); the child's own stays quiet.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    threading.Thread(target=_orphan_guard, args=(worker_pid,), daemon=True).start()
    import pipelines.worker
    from crawler.cli.main import main

    # Extraction workers forked from this child inherit what the fork-server imported (see START_METHOD).
    pipelines.worker.START_METHOD = "fork"
    from crawler.daemon import preload

    pipelines.worker.PRELOADED_RULES = preload.classifier

    try:
        main.main(args=argv, prog_name="borderwatch", standalone_mode=True)
    finally:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        with contextlib.suppress(OSError):
            cpu_out.send(me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime)


def run_warm(argv: list[str], *, timeout: float, stop: StopRequest,
             on_start: Any = None) -> ChildOutcome:
    """Run ``borderwatch ARGV`` in a fork of the warm parent until it ends, or past ``timeout``/a stop request
    (SIGINT, then SIGKILL to its group after ``KILL_AFTER``)."""
    cpu_in, cpu_out = context().Pipe(duplex=False)
    proc = context().Process(target=_pass_child, args=(argv, os.getpid(), cpu_out), daemon=False)
    started = time.monotonic()
    proc.start()
    cpu_out.close()
    pid = proc.pid
    assert pid is not None
    if on_start is not None:
        on_start(pid)
    timed_out = stopped = False
    try:
        while proc.exitcode is None:
            if time.monotonic() - started >= timeout:
                timed_out = True
            elif stop.due():
                stopped = True
            if timed_out or stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)
                proc.join(KILL_AFTER)
                break
            proc.join(POLL)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if proc.exitcode is None or timed_out or stopped:
                os.killpg(pid, signal.SIGKILL)
        proc.join()
    code = proc.exitcode
    cpu: float | None = None
    with contextlib.suppress(EOFError, OSError):
        if cpu_in.poll(0):
            cpu = float(cpu_in.recv())
    cpu_in.close()
    return ChildOutcome(pid=pid, exit_code=None if code is not None and code < 0 else code,
                        seconds=time.monotonic() - started, timeout=timeout, timed_out=timed_out,
                        stopped=stopped and not timed_out, cpu=cpu)
