"""One spider module per source kind: ``doj_api``, ``feed``, ``listing``, ``sitemap``, ``gc_news``, ``drupal_views``,
``embedded_json``."""

from __future__ import annotations

from crawler.fetch.spiders.base import SourceSpider
from crawler.fetch.spiders.doj_api import DojApiSpider
from crawler.fetch.spiders.drupal_views import DrupalViewsSpider
from crawler.fetch.spiders.embedded_json import EmbeddedJsonSpider
from crawler.fetch.spiders.feed import FeedSpider
from crawler.fetch.spiders.gc_news import GcNewsSpider
from crawler.fetch.spiders.listing import ListingSpider
from crawler.fetch.spiders.sitemap import SitemapSpider

SPIDERS: dict[str, type[SourceSpider]] = {
    "doj_api": DojApiSpider,
    "feed": FeedSpider,
    "listing": ListingSpider,
    "sitemap": SitemapSpider,
    "gc_news": GcNewsSpider,
    "drupal_views": DrupalViewsSpider,
    "embedded_json": EmbeddedJsonSpider,
}

__all__ = [
    "SPIDERS", "DojApiSpider", "DrupalViewsSpider", "EmbeddedJsonSpider",
    "FeedSpider", "GcNewsSpider", "ListingSpider", "SitemapSpider",
    "SourceSpider",
]
