"""What an extraction worker process does for one page: the CPU work that needs nothing but the page.

Extraction (trafilatura), then the topic rules and the story fingerprint of the result, so the
reactor process only fetches and writes. Workers are ``spawn``-ed and recycled
(``max_tasks_per_child``) so a leak in a parser cannot grow for days.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pipelines.classify import Classifier, TopicResult
from pipelines.extract import Document, extract
from pipelines.revisions import content_hash
from pipelines.stories import StoryFeatures, fingerprint, story_features

_classifier: Classifier | None = None
_classifier_error: str | None = None  # why this worker could not load the topics (then every page fails)


class TopicsUnavailable(RuntimeError):
    """The worker has no topic rules: a page processed now would be stored as if it matched nothing."""


@dataclass(frozen=True)
class PageResult:
    """An extracted page with what was computed from it."""

    doc: Document
    title: str
    topics: tuple[TopicResult, ...] = field(default_factory=tuple)
    signature: bytes | None = None
    content_hash: str | None = None
    story_features: StoryFeatures | None = None


def classifier_meta(doj_topics: list[str], doj_components: list[str], source: str) -> dict[str, list[str]]:
    """The metadata the topic rules may use as evidence (one definition for the worker and the store)."""
    return {"doj_topics": list(doj_topics), "doj_components": list(doj_components), "source": [source]}


def process_page(
    html: str, url: str, content: str | None, title_hint: str | None, doj_topics: list[str],
    doj_components: list[str], source: str,
) -> PageResult:
    if _classifier is None:
        # Never "no topics": an empty topic list is stored as a classified page and never looked at again.
        raise TopicsUnavailable(f"topic rules not loaded in the extraction worker: {_classifier_error}")
    doc = extract(html, url, content)
    title = (title_hint or doc.title or "").strip()
    if not doc.text:
        return PageResult(doc, title)
    meta = classifier_meta(doj_topics or list(doc.topics), doj_components or list(doc.components), source)
    topics = tuple(_classifier.matched(title, doc.text, meta))
    return PageResult(doc, title, topics, fingerprint(title, doc.text), content_hash(title, doc.text),
                      story_features(title, doc.text))


def _init_worker(topics_path: str | None) -> None:
    # The parent checked the same file before the pass; if it broke since, the error is kept and every
    # page this worker is given fails with it (recorded per URL) rather than being stored untagged.
    global _classifier, _classifier_error
    try:
        _classifier = Classifier.from_file(topics_path)
    except Exception as exc:
        _classifier, _classifier_error = None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class WorkerPool:
    """A pool of worker processes running ``process_page``."""

    def __init__(self, workers: int = 0, topics_path: str | None = None, max_tasks_per_child: int = 1000) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            max_tasks_per_child=max_tasks_per_child,
            initializer=_init_worker,
            initargs=(topics_path,),
        )
        # Pages waiting for a worker are held in memory: a few per worker keep every worker busy,
        # more would only grow the queue while the downloader outruns extraction (backpressure
        # reaches Scrapy through its scraper slot instead).
        self._slots = asyncio.Semaphore(self.workers * 3)

    async def process(self, html: str, url: str, content: str | None, **hints: Any) -> PageResult:
        loop = asyncio.get_running_loop()
        async with self._slots:
            return await loop.run_in_executor(
                self._executor, process_page, html, url, content, hints.get("title"),
                hints.get("doj_topics") or [], hints.get("doj_components") or [], hints.get("source", ""),
            )

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
