"""One spider module per source kind: ``doj_api``, ``feed``, ``listing``, ``sitemap``."""

from __future__ import annotations

from crawler.fetch.spiders.base import SourceSpider
from crawler.fetch.spiders.doj_api import DojApiSpider
from crawler.fetch.spiders.feed import FeedSpider
from crawler.fetch.spiders.listing import ListingSpider
from crawler.fetch.spiders.sitemap import SitemapSpider

SPIDERS: dict[str, type[SourceSpider]] = {
    "doj_api": DojApiSpider,
    "feed": FeedSpider,
    "listing": ListingSpider,
    "sitemap": SitemapSpider,
}

__all__ = ["SPIDERS", "DojApiSpider", "FeedSpider", "ListingSpider", "SitemapSpider", "SourceSpider"]
