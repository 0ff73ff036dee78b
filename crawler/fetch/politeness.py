"""Downloader middlewares of our own: honouring robots.txt's ``Crawl-delay``.

Scrapy's RobotsTxtMiddleware obeys Allow/Disallow but ignores ``Crawl-delay``; justice.gov asks for
10 s. Scrapy sends ``robots_parsed`` with each host's parser (``RobotParser.crawl_delay()``, both since 2.18):
the delay is noted then, and the host's download slot is raised to it by the next page request of that host
(the robots.txt fetch itself went through that slot, so it exists by then).
"""

from __future__ import annotations

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.robotstxt import RobotParser

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
