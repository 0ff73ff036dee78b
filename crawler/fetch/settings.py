"""Scrapy settings: the defaults a site operator would accept. Per-source values come from the config
(``crawler.passes.run`` builds each source's crawler with its own delay, size limit and user agent)."""

from __future__ import annotations

BOT_NAME = "borderwatch"
SPIDER_MODULES = ["crawler.fetch.spiders"]
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

ROBOTSTXT_OBEY = True
USER_AGENT = "borderwatch/0.1 (+https://github.com/borderwatch/borderwatch)"
COOKIES_ENABLED = False
# Scrapy's remote consoles (the telnet console, and since 2.14 an HTTP server on localhost that runs any Python
# code sent to it behind a token it writes to a job file in the user's state folder) have no use in a monitor,
# and a killed pass would leave the token file behind: both off.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
LOG_LEVEL = "WARNING"

CONCURRENT_REQUESTS = 16
# Scrapy starts this many asyncio tasks for every response's output, whatever it yields (one item
# per article page here): the default 100 cost ~9% of a pass's CPU in task creation alone.
CONCURRENT_ITEMS = 4
# One connection per host: with a download delay, more would only queue at the same slot.
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 1.0
# The delay is a minimum a site operator can count on (Scrapy's jitter would go below it).
DOWNLOAD_DELAY_JITTER = 0.0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 0  # too-large pages are recorded per URL; no log line per page

RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
# Callbacks see these statuses themselves: 304 for conditional GETs, 403/429 to tell a bot wall.
# 503 too: Cloudflare answers its challenge with 503 (crawler.fetch.botwall stops the retries of a wall).
HTTPERROR_ALLOWED_CODES = [304, 403, 429, 503]
REDIRECT_ENABLED = True
# A meta refresh is how bot-check interstitials send a client to their challenge (/_sec/verify):
# following it would be getting around the check. The page is recorded as blocked instead.
METAREFRESH_ENABLED = False
REDIRECT_MAX_TIMES = 10

ITEM_PIPELINES = {
    "crawler.fetch.stages.ExtractStage": 300,
    "crawler.fetch.stages.StoreStage": 800,
}
DOWNLOADER_MIDDLEWARES = {
    # Ahead of robots.txt (100): a refused link costs no request at all, not even for robots.txt.
    "crawler.fetch.policy.FetchPolicyMiddleware": 60,
    "crawler.fetch.politeness.RobotsCrawlDelayMiddleware": 101,
    # Above the retry middleware (550): a challenge answered 503 is recorded, not asked again and again.
    "crawler.fetch.botwall.BotWallMiddleware": 560,
    # Behind the redirect middleware (600) on the way in: sees every response, redirects included,
    # with the address it really came from.
    "crawler.fetch.policy.ConnectedAddressMiddleware": 950,
}
# Only http(s) is ever fetched: a link to file:///etc/passwd, data:, ftp: or s3: has no handler at all
# (crawler.fetch.policy refuses and records it before it gets here).
DOWNLOAD_HANDLERS = {"file": None, "data": None, "ftp": None, "s3": None}
