"""What the worker's fork-server loads once, for every pass it forks (``crawler.daemon.warm``).

Imported in the fork-server only: the modules Scrapy would import by name while a pass starts (its default
components and ours), and the topic rules compiled from the file ``BORDERWATCH_PRELOAD_TOPICS`` names ("" for
the shipped ones). A pass asks ``classifier(path)`` and gets the compiled rules if its topics file still reads the
same, else compiles them itself: a topics file edited since the worker started is never missed.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import Any

from scrapy.settings import default_settings

import crawler.fetch.settings as ours
from pipelines.classify import Classifier, _read_topics, topics_digest
from pipelines.worker import _warm_up

# The Scrapy settings that name components by import path (dicts of them or one each).
_NAMED = ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES", "EXTENSIONS", "DOWNLOAD_HANDLERS", "ITEM_PIPELINES")


def _paths() -> set[str]:
    out: set[str] = set()
    for module in (default_settings, ours):
        for key in dir(module):
            if not key.isupper():
                continue
            value = getattr(module, key)
            if any(key.startswith(n) for n in _NAMED) and isinstance(value, dict):
                out.update(k for k in value if isinstance(k, str))
            elif isinstance(value, str) and "." in value and value.split(".")[0] in ("scrapy", "twisted", "crawler"):
                out.add(value)
    return out


def _import_components() -> None:
    for path in sorted(_paths()):
        module = path.rsplit(".", 1)[0]
        with contextlib.suppress(Exception):  # an optional component whose dependency is absent (boto, brotli)
            importlib.import_module(module)
    for module in ("scrapy.core.engine", "scrapy.core.scheduler", "scrapy.core.downloader",
                   "scrapy.core.downloader.handlers.http11", "scrapy.pqueues", "scrapy.squeues",
                   "twisted.internet.asyncioreactor", "alembic.runtime.migration", "alembic.script"):
        with contextlib.suppress(Exception):
            importlib.import_module(module)


_import_components()

_topics_path = os.environ.get("BORDERWATCH_PRELOAD_TOPICS")
_cached: tuple[str, str, Classifier] | None = None
if _topics_path is not None:
    with contextlib.suppress(Exception):  # a bad topics file: each pass reports it as it would anyway
        _text, _origin = _read_topics(_topics_path or None)
        _cached = (_text, _origin, Classifier.from_file(_topics_path or None))
        topics_digest(_topics_path or None)  # (memoised by the file's text: each pass asks for it)
# What extraction loads on first use (trafilatura's lazy imports, the language model): the pass's extraction
# workers are forked from a fork of this process and start with it.
with contextlib.suppress(Exception):
    _warm_up()


def classifier(path: Any) -> Classifier | None:
    """The preloaded rules if ``path`` reads exactly as the file they were compiled from, else None."""
    if _cached is None:
        return None
    text, origin = _read_topics(path)
    return _cached[2] if (text, origin) == _cached[:2] else None
