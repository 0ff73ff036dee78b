"""Recognise bot-check and challenge pages, and hosts that never answer a plain client, so they are recorded
as blocked (with what they are) and never stored as text.

We never try to get past one: a blocked URL is recorded, and the text comes from another channel
(for justice.gov, the DOJ News API serves full bodies; for www.canada.ca, the GC News API).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the detection is pure: health and the CLI import it without Scrapy
    from scrapy import Request
    from scrapy.http import Response

# What a pass records for a host that accepts connections and never answers (the connection or the TLS
# handshake hangs until the timeout, on every try): the pattern of www.canada.ca's firewall, which stalls
# clients whose TLS fingerprint is not a browser's. Health alerts and `sources` look for these words.
UNREACHABLE = "unreachable from a non-browser client"

# Markers of the interstitials seen on the sites we read: Akamai Bot Manager (justice.gov's
# ~2.5 KB page with bm-verify and /_sec/verify), Cloudflare, Imperva/Incapsula, PerimeterX, DataDome,
# Sucuri, AWS WAF.
_MARKERS = re.compile(
    rb"bm-verify|/_sec/verify|_sec/cp_challenge|cf-chl|__cf_chl|challenge-platform|cf_chl_opt|"
    rb"cf-browser-verification|Just a moment\.\.\.|Attention Required! \| Cloudflare|"
    rb"Checking your browser before accessing|_Incapsula_Resource|Incapsula incident|"
    rb"px-captcha|_pxCaptcha|captcha-delivery\.com|datadome|sucuri_cloudproxy|Access Denied</h1>|"
    rb"awswaf|aws-waf-token|Pardon Our Interruption",
    re.IGNORECASE,
)
_VENDORS = (
    ("Cloudflare challenge page", re.compile(
        rb"cf-chl|__cf_chl|challenge-platform|cf_chl_opt|cf-browser-verification|Just a moment|Cloudflare|"
        rb"Checking your browser", re.IGNORECASE)),
    ("Akamai bot-check page", re.compile(rb"bm-verify|_sec/", re.IGNORECASE)),
    ("Imperva bot-check page", re.compile(rb"incapsula", re.IGNORECASE)),
    ("PerimeterX captcha", re.compile(rb"px-captcha|_pxcaptcha", re.IGNORECASE)),
    ("DataDome captcha", re.compile(rb"datadome|captcha-delivery", re.IGNORECASE)),
    ("AWS WAF challenge", re.compile(rb"awswaf|aws-waf", re.IGNORECASE)),
)
_META_REFRESH = re.compile(rb"<meta[^>]+http-equiv=[\"']?refresh", re.IGNORECASE)

# Real articles are longer than this; a challenge page is usually a few KB of script.
_SMALL_PAGE = 16 * 1024


def detect_bot_wall(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> str | None:
    """A short reason when the response is a bot wall or challenge, else None.

    ``headers``: the response's headers by lower-case name (``cf-mitigated: challenge`` is how Cloudflare
    marks a challenge whatever its page looks like)."""
    mitigated = (headers or {}).get("cf-mitigated", "")
    if "challenge" in mitigated.lower():
        return f"Cloudflare challenge (cf-mitigated: {mitigated.strip()}), HTTP {status}"
    if len(body) >= 4 * _SMALL_PAGE and status not in (403, 429, 503):
        # Challenge pages are small; a 64 KB+ page that answered 200 is content. (Searching every
        # large page for the markers cost ~7 ms a page, more than extracting it.)
        return None
    head = body[:65536]
    m = _MARKERS.search(head)
    if m:
        marker = m.group(0)
        what = next((name for name, pattern in _VENDORS if pattern.search(marker)), "bot-check page")
        return f"{what} ({marker.decode('ascii', 'replace')}), HTTP {status}"
    if status in (403, 429) and len(body) < _SMALL_PAGE:
        return f"refused (HTTP {status})"
    if _META_REFRESH.search(head) and len(body) < 4096 and b"<p" not in head.lower():
        return "meta-refresh interstitial with no content"
    return None


def response_headers(response: Response) -> dict[str, str]:
    """A response's headers by lower-case name (the first value of each)."""
    out: dict[str, str] = {}
    for name, values in response.headers.items():
        if values:
            out[name.decode("latin-1").lower()] = values[0].decode("latin-1")
    return out


def wall_of(response: Response) -> str | None:
    """``detect_bot_wall`` for a Scrapy response."""
    return detect_bot_wall(response.status, response.body, response_headers(response))


class BotWallMiddleware:
    """A challenge answered with a status Scrapy retries (Cloudflare's 503) is not asked again and again
    within a pass: the retry would only knock on the wall. Below the retry middleware (550) on the way in,
    so it sees the response first; the page's callback records it as blocked."""

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status >= 400 and wall_of(response):
            request.meta["dont_retry"] = True
        return response
