"""One pass in a child process: the real CLI (``crawl SOURCE --no-alerts --report-json PATH``) under a hard timeout.

The child tells how its pass ended in the JSON report it writes (``crawler.passes.report``); its output is
kept only to say why a child that wrote none failed (``summarize_stderr``).

A Twisted reactor runs once per process, and a pass that leaks memory, crashes or hangs must not take the
daemon with it; so each pass is a process. The child runs in its own session (a Ctrl-C in the daemon's
terminal reaches the daemon only, which then decides when its passes stop) and is stopped with SIGINT
(Scrapy's graceful shutdown), then, after ``KILL_AFTER``, SIGKILL to its whole process group (its
extraction workers included). The progress lines a long pass logs are passed on to the daemon as they come.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

# Seconds between SIGINT and SIGKILL: Scrapy closes its spider and the store records the pass in well
# under a second when it can; a child still alive after this is stuck and is killed.
KILL_AFTER = 5.0
# How often the watcher looks at the child and at the daemon's stop requests.
POLL = 0.2
# Bytes of the child's output kept (its tail): enough for a traceback, bounded so a chatty child cannot
# grow the daemon's memory.
TAIL_BYTES = 32 * 1024


@dataclass(frozen=True)
class ChildOutcome:
    """How a child pass ended, as the daemon saw it."""

    pid: int
    exit_code: int | None  # None: it had to be killed and its code is meaningless
    seconds: float
    timeout: float | None = None  # the limit it ran under
    timed_out: bool = False  # it ran past the pass timeout
    stopped: bool = False  # the daemon stopped it at shutdown
    stdout: str = ""
    stderr: str = ""
    cpu: float | None = None  # CPU seconds (user + system) of the pass and its reaped children, where measured

    @property
    def ended_by_daemon(self) -> bool:
        return self.timed_out or self.stopped


@dataclass
class StopRequest:
    """The daemon's wishes, read by every watcher: stop at a deadline (shutdown), or stop now (second signal)."""

    deadline: float | None = None  # time.monotonic() after which running passes are stopped
    now: bool = False

    def due(self) -> bool:
        return self.now or (self.deadline is not None and time.monotonic() >= self.deadline)


def crawl_command(config_file: str, source: str, report_path: str, verbose: int = 0) -> list[str]:
    cmd = [sys.executable, "-m", "crawler", "--config", config_file]
    if verbose > 1:
        cmd.append("-v")
    return [*cmd, "crawl", source, "--no-alerts", "--report-json", report_path]


def run_child(
    cmd: list[str],
    *,
    timeout: float,
    stop: StopRequest,
    on_start: Callable[[int], None] | None = None,
    env: dict[str, str] | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> ChildOutcome:
    """Run ``cmd`` to its end, or past ``timeout`` seconds / a stop request, then stop it. ``on_progress``
    receives each progress line the child logs (``borderwatch.progress``) while it runs."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                start_new_session=True)
        if on_start is not None:
            on_start(proc.pid)
        timed_out = stopped = False
        progress = _ProgressReader(err.fileno(), on_progress) if on_progress is not None else None
        try:
            while proc.poll() is None:
                if progress is not None:
                    progress.read()
                if time.monotonic() - started >= timeout:
                    timed_out = True
                elif stop.due():
                    stopped = True
                if timed_out or stopped:
                    _stop(proc, stop)
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(POLL)
        finally:
            if proc.poll() is None:  # the watcher itself was interrupted: never leave a child behind
                _kill_group(proc)
        code = proc.returncode
        return ChildOutcome(
            pid=proc.pid, exit_code=None if code is not None and code < 0 else code,
            seconds=time.monotonic() - started, timeout=timeout, timed_out=timed_out, stopped=stopped and not timed_out,
            stdout=_tail(out), stderr=_tail(err),
        )


class _ProgressReader:
    """Follows a child's stderr file (by offset: the file's own position is left alone) for progress lines."""

    MARK = b" borderwatch.progress: "

    def __init__(self, fd: int, emit: Callable[[str], None]) -> None:
        self.fd = fd
        self.emit = emit
        self.offset = 0
        self.partial = b""

    def read(self) -> None:
        chunk = os.pread(self.fd, 65536, self.offset)
        if not chunk:
            return
        self.offset += len(chunk)
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        self.partial = self.partial[-TAIL_BYTES:]  # a line without an end for ever must not grow memory
        for line in lines:
            _, mark, message = line.partition(self.MARK)
            if mark:
                self.emit(message.decode("utf-8", "replace").strip())


def _stop(proc: subprocess.Popen[bytes], stop: StopRequest) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    end = time.monotonic() + KILL_AFTER
    while proc.poll() is None and time.monotonic() < end and not stop.now:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(POLL)
    _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group (the child leads it: ``start_new_session``), then reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


def _tail(f: IO[bytes]) -> str:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - TAIL_BYTES))
    return f.read().decode("utf-8", "replace")


_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning|Failure)\b")


def summarize_stderr(text: str, limit: int = 300) -> str:
    """One line saying why a child failed: a traceback's last line, else its last error (or warning) line, else
    its last line unless that is routine logging (DEBUG/INFO says nothing of a failure); "" if nothing tells."""
    # "Aborted!" is click's answer to the SIGINT the daemon itself sent: it says nothing of the source.
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip() and ln.strip() != "Aborted!"]
    if not lines:
        return ""
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Traceback (most recent call last)"):
            tail = [ln for ln in lines[i + 1:] if not ln.startswith((" ", "\t"))]
            # The exception line, not what some libraries print after it ("[SQL: …]", "(Background on …)").
            named = [ln for ln in tail if _EXCEPTION.match(ln)]
            if named or tail:
                return _shorten((named or tail)[-1], limit)
            break
    for levels in ((" ERROR ", " CRITICAL ", "borderwatch: "), (" WARNING ",)):
        found = [ln for ln in lines if any(lv in ln or ln.startswith(lv) for lv in levels)]
        if found:
            more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
            return _shorten(found[-1], limit - len(more)) + more
    last = lines[-1]
    return "" if " DEBUG " in last or " INFO " in last else _shorten(last, limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


class ChildTable:
    """The children running now (pid → source), for logs and for ``status``-like reports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, str] = {}

    def add(self, pid: int, source: str) -> None:
        with self._lock:
            self._running[pid] = source

    def remove(self, pid: int) -> None:
        with self._lock:
            self._running.pop(pid, None)

    def snapshot(self) -> dict[int, str]:
        with self._lock:
            return dict(self._running)
