"""What an extraction worker process does for one page, and the pool of those processes.

Extraction (trafilatura), then the topic rules and the story fingerprint of the result, so the
reactor process only fetches and writes. Workers are ``spawn``-ed and recycled
(``max_tasks_per_child``) so a leak in a parser cannot grow for days.

The pool is built for the bad day: each worker process has its own pipe and a thread in the parent
that feeds it, so the page a worker was running when it died is known. A worker killed from outside
(the OOM killer) is replaced and its page retried; a page that kills its worker twice is failed with
the reason. A page still running after ``page_timeout`` seconds (a pathological page) has its worker
killed and replaced and is given up as too complex, as is a page past the HTML parser's limits (or Python's
recursion limit) of which nothing could be extracted. Workers die with the process that started them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from pipelines.classify import Classifier, TopicResult
from pipelines.extract import Document, PageTooComplex, extract
from pipelines.items import Analysis, clean
from pipelines.language import detect, detect_language
from pipelines.learn import Learner
from pipelines.revisions import content_hash
from pipelines.stories import fingerprint, story_features
from pipelines.timeutil import utcnow

_classifier: Classifier | None = None
_classifier_error: str | None = None  # why this worker could not load the topics (then every page fails)


class TopicsUnavailable(RuntimeError):
    """The worker has no topic rules: a page processed now would be stored as if it matched nothing."""


@dataclass(frozen=True)
class PageResult:
    """An extracted page (or a text given), with what was computed from it (None: no text to analyse)."""

    doc: Document
    title: str
    analysis: Analysis | None = None

    @property
    def topics(self) -> tuple[TopicResult, ...]:
        return self.analysis.topics if self.analysis is not None else ()


def classifier_meta(doj_topics: list[str], doj_components: list[str], source: str) -> dict[str, list[str]]:
    """The metadata the topic rules may use as evidence (one definition for the worker and the store)."""
    return {"doj_topics": list(doj_topics), "doj_components": list(doj_components), "source": [source]}


def analyse(title: str, text: str, meta: dict[str, list[str]], classifier: Classifier) -> Analysis:
    """The topics, story fingerprint, content hash, story features and language reading of a title and text
    (``clean``-ed)."""
    return Analysis(tuple(classifier.matched(title, text, meta)), fingerprint(title, text), content_hash(title, text),
                    story_features(title, text), detect(title, text))


def process_page(
    html: str | None, url: str, content: str | None, title_hint: str | None, doj_topics: list[str],
    doj_components: list[str], source: str, learned: tuple[str, ...] = (), verify: bool = False, learn: bool = False,
    text: str | None = None,
) -> PageResult:
    """Extract ``html`` and analyse its text; or, with no ``html``, analyse the ``text`` a feed or an API gave."""
    if _classifier is None:
        # Never "no topics": an empty topic list is stored as a classified page and never looked at again.
        raise TopicsUnavailable(f"topic rules not loaded in the extraction worker: {_classifier_error}")
    doc = extract(html, url, content, learned, verify, learn) if html is not None else Document(text=text or "")
    title = clean(title_hint or doc.title)
    body = clean(doc.text)
    if not body:
        return PageResult(doc, title)
    meta = classifier_meta(doj_topics or list(doc.topics), doj_components or list(doc.components), source)
    return PageResult(doc, title, analyse(title, body, meta, _classifier))


def _init_worker(topics_path: str | None) -> None:
    # The parent checked the same file before the pass; if it broke since, the error is kept and every
    # page this worker is given fails with it (recorded per URL) rather than being stored untagged.
    global _classifier, _classifier_error
    try:
        _classifier = (PRELOADED_RULES(topics_path) if PRELOADED_RULES is not None else None) \
            or Classifier.from_file(topics_path)
    except Exception as exc:
        _classifier, _classifier_error = None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    _warm_up()


_WARM_UP_PAGE = ("<html lang='en'><head><title>Warm-up</title></head><body><article><h1>Warm-up</h1>"
                 + "<p>A paragraph long enough for the extractor to keep it as the text of the page.</p>" * 5
                 + "</article></body></html>")


def _warm_up() -> None:
    """Load what extracting a page loads on first use (trafilatura and the modules it imports lazily, the
    language model): before the first page arrives, while the parent is still starting, not on its clock."""
    doc = extract(_WARM_UP_PAGE, "http://warm-up.invalid/", learn=True)
    detect_language(doc.title, doc.text)


# -- the worker process ---------------------------------------------------------------------------------
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when the thread that started it ends (Linux), and exit now if
    that already happened: a crawl killed with ``kill -9`` must not leave its workers running."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the pipe's EOF still ends an idle worker
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _serve(conn: Connection, topics_path: str | None, parent_pid: int) -> None:
    """A worker process: pages in, ``(True, PageResult)`` or ``(False, reason)`` out, until EOF or None.

    A thread reads the pipe while the main thread extracts, so the parent can hand over the next page
    before this one is done (the worker never idles waiting for it) without either side blocking.
    """
    die_with_parent(parent_pid)
    _init_worker(topics_path)
    tasks: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                task = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                task = None
            tasks.put(task)
            if task is None:
                return

    threading.Thread(target=read, daemon=True).start()
    conn.send("ready")
    while (task := tasks.get()) is not None:
        try:
            answer: tuple[bool, Any] = (True, process_page(*task))
        except PageTooComplex as exc:
            answer = (False, f"{TOO_COMPLEX_REASON}{exc}"[:300])
        except RecursionError:  # nested deeper than the extractor's recursion reaches
            answer = (False, f"{TOO_COMPLEX_REASON}nested too deeply to extract (RecursionError)")
        except Exception as exc:  # a page the parser chokes on: reported, the worker lives on
            answer = (False, f"{type(exc).__name__}: {exc}"[:300])
        try:
            conn.send(answer)
        except OSError:  # the parent is gone
            return


# -- the parent's side ----------------------------------------------------------------------------------
class ExtractionFailed(Exception):
    """A page could not be extracted; the message is the reason recorded for its URL."""


class TooComplex(ExtractionFailed):
    """A page too complex to extract (over its deadline, past the parser's limits): another try would fail
    the same way, so it is given up at once."""


# How a worker's answer says the page was too complex.
TOO_COMPLEX_REASON = "too complex: "


class _WorkerLost(Exception):
    """The worker process died (or never started) while it had a page."""


class _PageTimeout(Exception):
    pass


# A spawned worker imports trafilatura and loads the topic rules before it takes a page: seconds on a
# loaded machine, and not counted against a page's deadline.
START_TIMEOUT = 120.0
# How worker processes start: "spawn" (a fresh interpreter: nothing of the crawl's state, threads or sockets is
# inherited). A pass forked from a worker's warm parent (crawler.daemon.warm) has everything imported already and
# sets "fork": its workers start in milliseconds instead of re-importing trafilatura (seconds of CPU each pass).
START_METHOD = "spawn"
# With "fork": the rules the warm parent compiled, if ``topics_path`` still reads the same (else None, and the
# worker compiles them: ~0.15 s of CPU per worker per pass otherwise).
PRELOADED_RULES: Callable[[str | None], Classifier | None] | None = None
# Pages handed to one worker at a time: the one it extracts and the next, waiting in its pipe.
PIPELINE = 2
# A page whose worker died is tried again in a new worker; dying a second time on it, it is failed.
MAX_DEATHS = 2


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, ctx: Any, topics_path: str | None) -> None:
        self.conn, child = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(
            target=_serve, args=(child, topics_path, os.getpid()), daemon=True, name="borderwatch-extract",
        )
        self.process.start()
        child.close()
        self.ready = False
        self.tasks = 0

    def wait_ready(self) -> None:
        if not self.ready:
            if not self.conn.poll(START_TIMEOUT):
                self.kill()
                raise _WorkerLost("the extraction worker did not start")
            self._recv()
            self.ready = True

    def send(self, task: tuple[Any, ...]) -> None:
        try:
            self.conn.send(task)
        except OSError as exc:
            self.process.join(5)
            code = self.process.exitcode
            self.kill()
            raise _WorkerLost(_describe_exit(code)) from exc

    def receive(self, timeout: float) -> tuple[bool, Any]:
        """The answer for the oldest page sent; _PageTimeout (the worker killed) if none comes in time."""
        if not self.conn.poll(max(timeout, 0.0)):
            self.kill()
            raise _PageTimeout
        answer: tuple[bool, Any] = self._recv()
        self.tasks += 1
        return answer

    def _recv(self) -> Any:
        try:
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            self.process.join(5)
            code = self.process.exitcode
            self.kill()
            raise _WorkerLost(_describe_exit(code)) from exc

    def retire(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.conn.close()
        self.process.join(5)
        if self.process.is_alive():
            self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


@dataclass
class _Task:
    args: tuple[Any, ...]
    future: asyncio.Future[PageResult]
    loop: asyncio.AbstractEventLoop
    deaths: int = 0


def _resolve(future: asyncio.Future[PageResult], result: PageResult | None, error: Exception | None) -> None:
    if future.done():  # cancelled meanwhile (the crawl is stopping)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


class WorkerPool:
    """Worker processes running ``process_page``, each fed by its own thread from one queue of pages."""

    def __init__(
        self, workers: int = 0, topics_path: str | None = None, max_tasks_per_child: int = 1000,
        page_timeout: float = 60.0,
    ) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.topics_path = topics_path
        self.max_tasks_per_child = max_tasks_per_child
        self.page_timeout = page_timeout
        self._ctx = multiprocessing.get_context(START_METHOD)
        self._queue: queue.Queue[_Task | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closing = False
        self._closed = False
        # Pages waiting for a worker are held in memory: a few per worker keep every worker busy,
        # more would only grow the queue while the downloader outruns extraction (backpressure
        # reaches Scrapy through its scraper slot instead).
        self._slots = asyncio.Semaphore(self.workers * 3)
        # Learned main-content rules (pipelines.learn): which selectors a page is given, what it taught.
        self.learner = Learner()
        self._eager = False  # start() was called: each feeding thread starts its worker before any page

    def pids(self) -> list[int]:
        """The worker processes alive now (for monitoring)."""
        with self._lock:
            return [w.process.pid for w in self._live if w.process.pid is not None and w.process.is_alive()]

    async def process(self, html: str | None, url: str, content: str | None, **hints: Any) -> PageResult:
        """Extract one page (or, with no ``html``, analyse ``text=``) in a worker. Raises ExtractionFailed with
        the reason when it cannot."""
        loop = asyncio.get_running_loop()
        learned, verify, learn = self.learner.plan(url) if not content and html is not None else ((), False, False)
        args = (html, url, content, hints.get("title"), hints.get("doj_topics") or [],
                hints.get("doj_components") or [], hints.get("source", ""), learned, verify, learn, hints.get("text"))
        async with self._slots:
            if not self._threads:
                self._start_threads()
            task = _Task(args, loop.create_future(), loop)
            self._queue.put(task)
            result = await task.future
        self.learner.observe(url, result.doc.learn, utcnow())
        return result

    def start(self) -> None:
        """Start the worker processes now, not at the first page: a worker's start (imports, the topic rules,
        a warm-up page) then runs while the caller is still starting up (Scrapy, the database), on the
        other core. Optional: the first page starts them otherwise."""
        if not self._threads:
            self._eager = True
            self._start_threads()

    def _start_threads(self) -> None:
        # A worker is started by its feeding thread, which lives as long as the pool: the kernel's
        # parent-death signal follows that thread (see die_with_parent).
        for n in range(self.workers):
            thread = threading.Thread(target=self._feed, name=f"borderwatch-extract-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _spawn(self) -> _Worker:
        worker = _Worker(self._ctx, self.topics_path)
        with self._lock:
            self._live.add(worker)
        try:
            worker.wait_ready()
        except _WorkerLost:  # (wait_ready killed it)
            with self._lock:
                self._live.discard(worker)
            raise
        return worker

    def _feed(self) -> None:
        worker: _Worker | None = None
        # Pages sent to this thread's worker, oldest (the one it is extracting) first, and when that
        # one started: the worker takes the next page from its pipe the moment it is done with one.
        inflight: deque[_Task] = deque()
        started = 0.0
        stop = False
        if self._eager and not self._closing:
            try:
                worker = self._spawn()
            except _WorkerLost:  # (killed at once; the first page starts another, and fails if that fails too)
                worker = None
        try:
            while not stop or inflight:
                while not stop and len(inflight) < PIPELINE and (
                        worker is None or worker.tasks + len(inflight) < self.max_tasks_per_child):
                    try:
                        task = self._queue.get(block=not inflight)
                    except queue.Empty:
                        break
                    if task is None:
                        stop = True
                        break
                    if self._closing:
                        self._answer(task, error=ExtractionFailed("extraction failed: the crawl was stopping"))
                        continue
                    try:
                        if worker is None:
                            worker = self._spawn()
                        worker.send(task.args)
                    except _WorkerLost as lost:
                        inflight.append(task)
                        self._lost(worker, inflight, lost)
                        worker = None
                        continue
                    if not inflight:
                        started = time.monotonic()
                    inflight.append(task)
                if not inflight:
                    continue
                assert worker is not None
                try:
                    ok, value = worker.receive(started + self.page_timeout - time.monotonic())
                except _WorkerLost as lost:
                    self._lost(worker, inflight, lost)
                    worker = None
                    continue
                except _PageTimeout:
                    self._drop(worker)
                    worker = None
                    self._answer(inflight.popleft(), error=TooComplex(
                        f"{TOO_COMPLEX_REASON}extraction ran over {self.page_timeout:g}s (crawl.extract_timeout)"))
                    self._requeue(inflight)
                    continue
                started = time.monotonic()
                task = inflight.popleft()
                if ok:
                    self._answer(task, result=value)
                else:
                    self._answer(task, error=TooComplex(value) if str(value).startswith(TOO_COMPLEX_REASON)
                                 else ExtractionFailed(f"extraction failed: {value}"))
                if not inflight and worker.tasks >= self.max_tasks_per_child:
                    self._drop(worker, retire=True)
                    worker = None
        finally:
            if worker is not None:
                self._drop(worker, retire=True)
            for task in inflight:
                self._answer(task, error=ExtractionFailed("extraction failed: the crawl was stopping"))

    def _lost(self, worker: _Worker | None, inflight: deque[_Task], lost: _WorkerLost) -> None:
        """The worker died: the page it was extracting counts a death; the pages queued behind it go back."""
        if worker is not None:
            self._drop(worker)
        task = inflight.popleft()
        task.deaths += 1
        if task.deaths < MAX_DEATHS and not self._closing:
            self._queue.put(task)  # again, in a new worker
        else:
            self._answer(task, error=ExtractionFailed(
                f"extraction failed: the worker died on this page {task.deaths} times ({lost})"))
        self._requeue(inflight)

    def _requeue(self, inflight: deque[_Task]) -> None:
        while inflight:
            self._queue.put(inflight.popleft())

    def _drop(self, worker: _Worker, *, retire: bool = False) -> None:
        with self._lock:
            self._live.discard(worker)
        if retire:
            worker.retire()
        else:
            worker.kill()

    @staticmethod
    def _answer(task: _Task, result: PageResult | None = None, error: Exception | None = None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            task.loop.call_soon_threadsafe(_resolve, task.future, result, error)

    def shutdown(self) -> None:
        """Stop the workers: pages still queued are failed, a page being extracted is waited for. Once: a
        second call does nothing."""
        if self._closed:
            return
        self._closed = self._closing = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(self.page_timeout + 10)
        while True:
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                self._answer(task, error=ExtractionFailed("extraction failed: the crawl was stopping"))
        with self._lock:
            left = list(self._live)
            self._live.clear()
        for worker in left:
            worker.kill()
