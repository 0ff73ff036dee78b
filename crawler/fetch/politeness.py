"""Downloader middlewares of our own: honouring robots.txt's ``Crawl-delay``.

Scrapy's RobotsTxtMiddleware obeys Allow/Disallow but ignores ``Crawl-delay``; justice.gov asks for
10 s. Once a host's robots.txt is parsed, its download slot's delay is raised to that value.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import NotConfigured
from twisted.internet.defer import Deferred

# A site asking for more than this gets it capped: a pass must still end in reasonable time.
MAX_CRAWL_DELAY = 30.0


class RobotsCrawlDelayMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        if not crawler.settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured
        self.crawler = crawler
        self.user_agent = crawler.settings.get("USER_AGENT", "")
        self._applied: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsCrawlDelayMiddleware:
        return cls(crawler)

    def _robots(self) -> RobotsTxtMiddleware | None:
        engine = self.crawler.engine
        if engine is None:
            return None
        for mw in engine.downloader.middleware.middlewares:
            if isinstance(mw, RobotsTxtMiddleware):
                return mw
        return None

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if request.meta.get("api") or request.url.endswith("/robots.txt"):
            return
        engine = self.crawler.engine
        if engine is None:
            return
        slot_key = engine.downloader.get_slot_key(request)
        if slot_key in self._applied:
            return
        robots = self._robots()
        parsers: dict[str, Any] = getattr(robots, "_parsers", {}) if robots else {}
        netloc = request.url.split("/")[2] if "://" in request.url else ""
        parser = parsers.get(netloc)
        if parser is None or isinstance(parser, Deferred):
            return  # not parsed yet; the next request of this host will look again
        self._applied.add(slot_key)
        delay = None
        rp = getattr(parser, "rp", None)
        if rp is not None and hasattr(rp, "crawl_delay"):
            try:
                delay = rp.crawl_delay(self.user_agent)
            except Exception:
                delay = None
        if delay:
            slot = engine.downloader.slots.get(slot_key)
            if slot is not None and float(delay) > slot.delay:
                slot.delay = min(float(delay), MAX_CRAWL_DELAY)
                slot.jitter = 0.0  # the site's minimum, never less
