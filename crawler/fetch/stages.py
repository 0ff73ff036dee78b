"""The Scrapy item pipeline: extract and analyse (in worker processes), then store in batches (off the reactor).

Both stages are built by ``from_crawler`` from the pass's ``PassServices`` (the spider's), and only move items
between its extraction pool, its store and its tally. Every article leaves ``ExtractStage`` with its
``Analysis`` (topics, fingerprint, hash, story features), made once in a worker, or as an ``Outcome``.
"""

from __future__ import annotations

import asyncio

from scrapy.crawler import Crawler

from crawler.fetch.spiders.base import SourceSpider
from crawler.passes.context import PassServices
from pipelines import items as outcome
from pipelines.canonical import page_address
from pipelines.extract import binary_body
from pipelines.items import Article, Outcome, clean
from pipelines.language import primary_tag
from pipelines.tally import Count
from pipelines.worker import ExtractionFailed, TooComplex

# Rows per write transaction: batches of ~50 cost a fraction of per-item commits on SQLite
# (measured 2,500 rows/s per-item vs 8,600 rows/s batched) while keeping an item's wait short.
BATCH_SIZE = 50
BATCH_SECONDS = 1.0


def services_of(crawler: Crawler) -> PassServices:
    """The pass's services, which the spider was created with (before the engine builds the stages)."""
    spider = crawler.spider
    if not isinstance(spider, SourceSpider) or spider.services is None:
        raise TypeError(f"the borderwatch stages run the items of a pass's SourceSpider, not {spider!r}'s")
    return spider.services


class ExtractStage:
    """Turns an Article's page into text, and any article's text into its analysis, in the extraction pool:
    never on the reactor thread, never in the store."""

    def __init__(self, services: PassServices) -> None:
        self.services = services

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractStage:
        return cls(services_of(crawler))

    async def process_item(self, item: Article | Outcome) -> Article | Outcome:
        if not isinstance(item, Article):
            return item
        # The source's configured language stands in for what neither page nor feed declares (the store
        # detects it from the text when there is no hint either).
        hint = self.services.source.language
        if item.html is None:
            item.language = primary_tag(item.language) or hint
            return await self._analyse_text(item)
        html, item.html = item.html, None
        binary = binary_body(html)
        if binary:  # a file served as text/html: its "text" would be replacement characters
            return Outcome(item.key, item.source, outcome.NO_TEXT, f"binary body ({binary}) served as a page")
        try:
            result = await self.services.pool.process(
                html, item.final_url or item.url, item.content, title=item.title, doj_topics=item.doj_topics,
                doj_components=item.doj_components, source=item.source,
            )
        except TooComplex as exc:  # over its deadline, past the parser's limits: given up, never tried again
            return Outcome(item.key, item.source, outcome.TOO_COMPLEX, str(exc)[:300])
        except ExtractionFailed as exc:  # a page that kills its worker: record, go on
            return Outcome(item.key, item.source, outcome.FAILED, str(exc)[:300])
        except Exception as exc:
            return Outcome(item.key, item.source, outcome.FAILED, f"extraction failed: {exc!r}"[:300])
        doc = result.doc
        if not doc.text or result.analysis is None:
            return Outcome(item.key, item.source, outcome.NO_TEXT, "no article text on the page")
        item.text = doc.text
        item.analysis = result.analysis
        # The feed's or API's title and date are the publisher's own: the page's are the fallback.
        item.title = result.title or None
        item.published = item.published or doc.published
        item.author = item.author or doc.author
        item.site_name = doc.site_name or item.site_name  # the page's own name, else the feed's
        item.language = doc.language or primary_tag(item.language) or hint  # the page's, the feed's, the config's
        if doc.canonical:  # the page's own address for itself, when it is on the same site
            item.url = page_address(item.final_url or item.url, doc.canonical)
        if not item.doj_topics and doc.topics:
            item.doj_topics = list(doc.topics)
        if not item.doj_components and doc.components:
            item.doj_components = list(doc.components)
        return item

    async def _analyse_text(self, item: Article) -> Article | Outcome:
        """An article whose text a feed or an API gave: analysed in a worker, with the same rules as pages."""
        if not clean(item.text) or item.analysis is not None:
            return item  # (no text: the store records it as such)
        try:
            result = await self.services.pool.process(
                None, item.url, None, title=item.title, doj_topics=item.doj_topics,
                doj_components=item.doj_components, source=item.source, text=item.text,
            )
        except ExtractionFailed as exc:
            return Outcome(item.key, item.source, outcome.FAILED, str(exc)[:300])
        except Exception as exc:
            return Outcome(item.key, item.source, outcome.FAILED, f"analysis failed: {exc!r}"[:300])
        item.analysis = result.analysis
        return item


class StoreStage:
    """Collects items and outcomes and saves them in batches, in a thread (the reactor keeps fetching)."""

    def __init__(self, services: PassServices) -> None:
        self.services = services
        self.batch: list[Article | Outcome] = []
        self._flushing: asyncio.Lock | None = None
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StoreStage:
        return cls(services_of(crawler))

    async def process_item(self, item: Article | Outcome) -> Article | Outcome:
        if isinstance(item, Article | Outcome):
            self.batch.append(item)
            if len(self.batch) >= BATCH_SIZE:
                await self.flush()
            elif self._timer is None:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(BATCH_SECONDS, lambda: asyncio.ensure_future(self.flush()))
        return item

    async def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is None:
            self._flushing = asyncio.Lock()
        async with self._flushing:
            batch, self.batch = self.batch, []
            if not batch:
                return
            ctx = self.services.ctx
            try:
                await asyncio.to_thread(self.services.store.save, batch, ctx.tally)
            except Exception as exc:  # the database is gone: the pass fails, loudly
                ctx.start_error = f"database: {str(exc).splitlines()[0]}"[:500]
                ctx.tally.add(Count.UNSAVED, len(batch))

    async def close_spider(self) -> None:
        await self.flush()
