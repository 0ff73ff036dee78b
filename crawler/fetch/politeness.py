"""Downloader middlewares of our own: honouring robots.txt's ``Crawl-delay``; one host's delay across the fleet.

Scrapy's RobotsTxtMiddleware obeys Allow/Disallow but ignores ``Crawl-delay``; justice.gov asks for
10 s. Scrapy sends ``robots_parsed`` with each host's parser (``RobotParser.crawl_delay()``, both since 2.18):
the delay is noted then, and the host's download slot is raised to it by the next page request of that host
(the robots.txt fetch itself went through that slot, so it exists by then).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.robotstxt import RobotParser
from sqlalchemy import create_engine, text

# A site asking for more than this gets it capped: a pass must still end in reasonable time.
MAX_CRAWL_DELAY = 30.0


class RobotsCrawlDelayMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured
        self.crawler = crawler
        # The agent robots.txt rules are matched for: the same one RobotsTxtMiddleware asks about.
        self.user_agent: str = crawler.settings.get("ROBOTSTXT_USER_AGENT") or crawler.settings.get("USER_AGENT", "")
        # Download slot key -> the delay its host's robots.txt asks for (capped).
        self.delays: dict[str, float] = {}
        crawler.signals.connect(self.robots_parsed, signal=signals.robots_parsed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsCrawlDelayMiddleware:
        return cls(crawler)

    def robots_parsed(self, robotparser: RobotParser, request: Request) -> None:
        """A host's robots.txt was parsed (``request`` is the one that asked for it)."""
        delay = robotparser.crawl_delay(self.user_agent)
        engine = self.crawler.engine
        if delay and delay > 0 and engine is not None:
            self.delays[engine.downloader.get_slot_key(request)] = min(float(delay), MAX_CRAWL_DELAY)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        # The API is not a page crawl: its documented rate, not robots.txt's crawl-delay, applies.
        if request.meta.get("api"):
            return
        engine = self.crawler.engine
        if engine is None:
            return
        slot_key = engine.downloader.get_slot_key(request)
        delay = self.delays.get(slot_key)
        if delay is None:
            return
        # Looked at on every request, not once: a slot idle for a minute is dropped by Scrapy and made anew
        # with the default delay.
        slot = engine.downloader.slots.get(slot_key)
        if slot is not None and delay > slot.delay:
            slot.delay = delay
            slot.jitter = 0.0  # the site's minimum, never less


# -- politeness across the fleet (PostgreSQL) ------------------------------------------------------------------
# One row per host: the earliest time its next request may start, whichever worker or source makes it.
HOST_SLOTS_DDL = """
CREATE TABLE IF NOT EXISTS borderwatch_host_slots (
    host text PRIMARY KEY,
    next_at timestamptz NOT NULL
)
"""
# Reserve the host's next start: now, or when the last reservation's delay has passed, whichever is later; the
# row lock of the upsert makes concurrent reservations (other processes, other machines) queue one after another.
RESERVE = """
INSERT INTO borderwatch_host_slots AS h (host, next_at) VALUES (:host, clock_timestamp() + make_interval(secs => :d))
ON CONFLICT (host) DO UPDATE SET next_at = GREATEST(h.next_at, clock_timestamp()) + make_interval(secs => :d)
RETURNING EXTRACT(EPOCH FROM (h.next_at - make_interval(secs => :d) - clock_timestamp()))::float8
"""
# A constant of ours for the advisory lock that serialises creating the table (CREATE … IF NOT EXISTS races).
_DDL_LOCK = 0x6277_4853  # "bwHS"


def ensure_host_slots(conn: Any) -> None:
    """Create the host table if it is missing (idempotent, safe with many processes starting at once)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _DDL_LOCK})
    conn.execute(text(HOST_SLOTS_DDL))


class FleetPolitenessMiddleware:
    """Spaces the requests to one host by its delay across every process on the database (PostgreSQL only).

    Scrapy's download slots space one process's requests; workers on several machines each have their own. Before
    a request to a host with a delay goes to its slot, this reserves the host's next start in
    ``borderwatch_host_slots`` (one atomic upsert) and waits until then. The delay is the larger of the source's
    (``DOWNLOAD_DELAY``: its ``delay``, or the API's ``1/rate``) and the slot's (robots.txt's Crawl-delay).
    """

    def __init__(self, crawler: Crawler) -> None:
        url = crawler.settings.get("BORDERWATCH_FLEET_DATABASE")
        if not url:
            raise NotConfigured
        self.crawler = crawler
        self.delay = crawler.settings.getfloat("DOWNLOAD_DELAY")
        self.engine = create_engine(url, pool_size=2, max_overflow=2, pool_pre_ping=True)
        with self.engine.begin() as conn:
            ensure_host_slots(conn)
        crawler.signals.connect(self.closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FleetPolitenessMiddleware:
        return cls(crawler)

    def closed(self) -> None:
        self.engine.dispose()

    def _delay(self, request: Request) -> float:
        delay = self.delay
        engine = self.crawler.engine
        if engine is not None:
            slot = engine.downloader.slots.get(engine.downloader.get_slot_key(request))
            if slot is not None:
                delay = max(delay, slot.delay)
        return delay

    def reserve(self, host: str, delay: float) -> float:
        """Seconds to wait before the request may start (0 if now)."""
        with self.engine.begin() as conn:
            wait = conn.execute(text(RESERVE), {"host": host, "d": delay}).scalar_one()
        return max(float(wait), 0.0)

    async def process_request(self, request: Request) -> None:
        host = urlsplit(request.url).hostname
        delay = self._delay(request)
        if not host or delay <= 0:
            return
        wait = await asyncio.to_thread(self.reserve, host, delay)
        if wait > 0:
            await asyncio.sleep(wait)
