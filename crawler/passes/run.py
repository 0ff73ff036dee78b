"""One pass over some sources: one Scrapy process, one crawler per source, one store.

A Twisted reactor cannot be restarted, so a process runs one pass (``borderwatch crawl``); the daemon
starts a child process per pass.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from scrapy import signals
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.settings import Settings

from crawler.config import Config, SourceConfig
from crawler.fetch.progress import PassProgress
from crawler.fetch.spiders import SPIDERS, SourceSpider
from crawler.passes import ledger
from crawler.passes.context import PassContext, PassServices
from crawler.passes.report import PassReport
from pipelines import urlstates
from pipelines.classify import Classifier, topics_digest
from pipelines.db import Database
from pipelines.learn import Learner, load_rules, save_rules
from pipelines.leases import Leases
from pipelines.redact import redact_text
from pipelines.retry import RetryPolicy
from pipelines.search import Query, QueryError, parse
from pipelines.store import Store
from pipelines.timeutil import utcnow
from pipelines.worker import WorkerPool

log = logging.getLogger("borderwatch")

# A pass holds its sources' leases this long at most; the daemon's hard timeout is shorter.
LEASE = timedelta(hours=2)


def scrapy_settings(config: Config, log_level: str = "WARNING") -> Settings:
    settings = Settings()
    settings.setmodule("crawler.fetch.settings", priority="project")
    c = config.crawl
    settings.setdict(
        {
            "ROBOTSTXT_OBEY": c.obey_robots,
            "USER_AGENT": c.user_agent,
            "CONCURRENT_REQUESTS": c.concurrency,
            "DOWNLOAD_TIMEOUT": c.timeout,
            "RETRY_TIMES": c.retries,
            "DOWNLOAD_MAXSIZE": c.max_page_size,
            "DOWNLOAD_DELAY": c.download_delay,
            "LOG_LEVEL": log_level,
            "LOG_INSTALL_ROOT_HANDLER": False,
            # A host's delay is kept across processes and machines in PostgreSQL (crawler.fetch.politeness).
            "BORDERWATCH_FLEET_DATABASE": config.database if config.database.startswith("postgresql") else "",
        },
        # Below "spider" priority: a source's own delay and the API's rate (custom_settings) must win.
        priority="project",
    )
    return settings


def _spider_class(source: SourceConfig, config: Config) -> type[SourceSpider]:
    base = SPIDERS[source.kind]
    delay = source.delay if source.delay is not None else config.crawl.download_delay
    custom: dict[str, Any] = {
        "DOWNLOAD_DELAY": delay,
        # Non-public networks this source may reach besides its own origin (crawler.fetch.policy).
        "BORDERWATCH_ALLOW_NETWORKS": [*config.crawl.allow_networks, *source.allow_networks],
    }
    parts = urlsplit(source.url)
    if parts.username is not None:
        # https://user:password@host/feed: HTTP Basic auth, sent to that host only (Scrapy cannot fetch a
        # URL with user-info; crawler.fetch.spiders.base.source_request takes it out of the URL).
        custom.update({"HTTPAUTH_USER": unquote(parts.username), "HTTPAUTH_PASS": unquote(parts.password or ""),
                       "HTTPAUTH_DOMAIN": parts.hostname})
    custom.update(base.settings_for(source, delay))  # what the kind itself requires (the API's rate)
    if delay == 0:
        # No delay (a local site, a benchmark): let the host take parallel requests.
        custom["CONCURRENT_REQUESTS_PER_DOMAIN"] = config.crawl.concurrency
    return type(f"{base.__name__}_{source.name.replace('-', '_').replace('.', '_')}", (base,),
                {"custom_settings": custom})


def watched_queries(config: Config) -> list[Query]:
    """The queries watchers follow, read now (``since:7d`` counts back from this pass)."""
    out = []
    for w in config.watchers:
        if w.query is None:
            continue
        try:
            out.append(parse(w.query))
        except QueryError as exc:  # checked at start-up; only a date range that has since closed gets here
            log.warning("watcher %s: query not followed this pass: %s", w.name, exc)
    return out


def run_pass(
    config: Config,
    names: Sequence[str] | None = None,
    *,
    log_level: str = "WARNING",
    db: Database | None = None,
    classifier: Classifier | None = None,
) -> list[PassReport]:
    """Crawl the named (or all enabled) sources once. Never raises for a site's failure.

    Raises ``TopicsError`` before anything is fetched when the topics file cannot be loaded: pages
    classified by nothing would be stored as matching no topic.
    """
    sources = [s for s in config.sources if (names and s.name in names) or (not names and s.enabled)]
    db = db or Database(config.database)
    pool = WorkerPool(config.crawl.extract_workers, config.topics,
                      page_timeout=config.crawl.extract_timeout) if sources else None
    if pool is not None and any(ledger.source_state(db, s.name).last_success is None for s in sources):
        # A first pass fetches pages by the hundred: its workers start now (imports, the topic rules, a warm-up
        # page) on the other core while this process loads Scrapy and the database, and the first page finds
        # them ready. Later passes, often with nothing new to extract, start them at their first page.
        pool.start()
    try:
        return _run_sources(config, sources, pool, log_level, db, classifier)
    finally:
        if pool is not None:
            pool.shutdown()  # (already, unless this process is stopping before the passes ran)


def _run_sources(
    config: Config, sources: list[SourceConfig], pool: WorkerPool | None, log_level: str, db: Database,
    classifier: Classifier | None,
) -> list[PassReport]:
    if classifier is None:
        Classifier.from_file(config.topics)  # (TopicsError) the workers load the same file
    retry = RetryPolicy(attempts=config.crawl.page_attempts, cap=config.crawl.page_backoff_cap,
                        every={s.name: s.every for s in config.sources})
    # No rules: every article is analysed by the extraction workers.
    store = Store(db, None, retry=retry, queries=watched_queries(config), topics_digest=topics_digest(config.topics))
    leases = Leases(db)
    results: list[PassReport] = []
    runs: list[tuple[SourceConfig, PassContext, int, Crawler]] = []
    settings = scrapy_settings(config, log_level)
    # Scrapy's own log lines go through our logging set-up. Without -v they are kept quiet: every
    # failure they would report is recorded per URL and summed up in the pass's line instead.
    # The reactor thread hands every page to the extraction pool's feeder thread and every batch to
    # the store thread; with Python's default 5 ms switch interval each hand-off can stall the reactor
    # for a whole interval (measured: ~7 ms a page). 1 ms keeps the reactor responsive.
    sys.setswitchinterval(0.001)
    process = CrawlerProcess(settings)  # (it sets Scrapy's loggers to DEBUG: quieten them after)
    # -v shows our own progress and info lines; Scrapy's internals only at -vv.
    for name in ("scrapy", "twisted", "py.warnings", "protego", "filelock"):
        logging.getLogger(name).setLevel("DEBUG" if log_level == "DEBUG" else "CRITICAL")
    loaded = False
    rejudge: set[str] = set()
    started = time.monotonic()
    for source in sources:
        if not leases.acquire(f"source:{source.name}", LEASE):
            holder = leases.lock_holder(f"source:{source.name}")
            results.append(PassReport(source.name, "locked", error=f"being crawled by {holder}"))
            continue
        assert pool is not None  # (there are sources)
        if not loaded:
            loaded = True
            pool.learner = Learner(load_rules(db))  # what earlier passes learned of each site's template
            store.load_stories()
            known = store.load_known()
            retries = urlstates.load_retries(db)
            unmatched = store.load_unmatched()
            # Sources whose unmatched pages were judged under other topic rules: read in full this time.
            rejudge = store.stale_unmatched_sources()
        # Holding the lease now, any pass of this source still "running" was left by a dead process.
        ledger.settle_orphaned_passes(db, source.name, utcnow())
        state = ledger.source_state(db, source.name)
        ctx = PassContext(
            source=source.name, now=utcnow(), since=source.since, revisit=config.crawl.revisit,
            revisit_every=config.crawl.revisit_every,
            first_pass=state.last_success is None, known=known, watermark=state.watermark,
            retries=retries, page_attempts=config.crawl.page_attempts, unmatched=unmatched,
            feed_etag=None if source.name in rejudge else state.feed_etag,
            feed_last_modified=None if source.name in rejudge else state.feed_last_modified,
        )
        pass_id = ledger.begin_pass(db, source.name, utcnow())
        crawler = process.create_crawler(_spider_class(source, config))
        crawler.signals.connect(ctx.spider_error, signal=signals.spider_error)
        process.crawl(crawler, source=source, context=ctx, services=PassServices(source, ctx, store, pool))
        runs.append((source, ctx, pass_id, crawler))
        log.info("%s: pass %d started (%s %s)", source.name, pass_id, source.kind, source.url)
    progress = PassProgress([(source.name, crawler, ctx) for source, ctx, _, crawler in runs],
                            every=config.crawl.progress_every.total_seconds())
    try:
        if runs:
            with progress:
                process.start()
    finally:
        if pool is not None and loaded:
            pool.shutdown()
            try:
                save_rules(db, pool.learner, utcnow())
            except Exception as exc:  # the database is gone: the passes below record it; nothing else is lost
                log.warning("learned rules not saved: %s", str(exc).splitlines()[0] if str(exc) else exc)
        elapsed = time.monotonic() - started
        for source, ctx, pass_id, crawler in runs:
            stats = crawler.stats.get_stats() if crawler.stats else {}
            reason = stats.get("finish_reason", "finished")
            error = ctx.start_error
            if error is None and reason != "finished":
                error = f"stopped: {reason}"
            if error is None and ctx.spider_errors:
                # What the callback had not yielded yet is lost: not an "ok" pass, and no watermark.
                more = f" (and {len(ctx.spider_errors) - 1} more)" if len(ctx.spider_errors) > 1 else ""
                error = f"spider error at {ctx.spider_errors[0]}{more}"
            if error is not None:
                error = redact_text(error)  # printed and stored: a source URL's credentials never are
            report = PassReport(
                source.name, "ok" if error is None else ("blocked" if ctx.start_blocked else "failed"), pass_id,
                ctx.tally, error, round(elapsed, 2),
                requests=int(stats.get("downloader/request_count", 0)),
                responses=int(stats.get("downloader/response_count", 0)),
                bytes=int(stats.get("downloader/response_bytes", 0)), retries=int(stats.get("retry/count", 0)),
                max_pages_reached=ctx.max_pages_reached,
            )
            ledger.finish_pass(
                db, report, utcnow(), watermark=ctx.new_watermark if ctx.walk_complete else None,
                feed_etag=ctx.new_feed_etag, feed_last_modified=ctx.new_feed_last_modified,
            )
            if report.status == "ok" and source.name in rejudge:
                store.restamp_unmatched(source.name)
            leases.release(f"source:{source.name}")
            results.append(report)
    return results
