"""Recognise bot-check and challenge pages, so they are recorded as blocked and never stored as text.

We never try to get past one: a blocked URL is recorded, and the text comes from another channel
(for justice.gov, the DOJ News API serves full bodies).
"""

from __future__ import annotations

import re

# Markers of the interstitials seen on the sites we read: Akamai Bot Manager (justice.gov's
# ~2.5 KB page with bm-verify and /_sec/verify), Cloudflare, Imperva/Incapsula, PerimeterX, DataDome,
# Sucuri, AWS WAF.
_MARKERS = re.compile(
    rb"bm-verify|/_sec/verify|_sec/cp_challenge|cf-chl-|challenge-platform|cf_chl_opt|"
    rb"Just a moment\.\.\.|Attention Required! \| Cloudflare|_Incapsula_Resource|Incapsula incident|"
    rb"px-captcha|_pxCaptcha|captcha-delivery\.com|datadome|sucuri_cloudproxy|Access Denied</h1>|"
    rb"awswaf|aws-waf-token|Pardon Our Interruption",
    re.IGNORECASE,
)
_META_REFRESH = re.compile(rb"<meta[^>]+http-equiv=[\"']?refresh", re.IGNORECASE)

# Real articles are longer than this; a challenge page is usually a few KB of script.
_SMALL_PAGE = 16 * 1024


def detect_bot_wall(status: int, body: bytes) -> str | None:
    """A short reason when the response is a bot wall or challenge, else None."""
    if len(body) >= 4 * _SMALL_PAGE and status not in (403, 429, 503):
        # Challenge pages are small; a 64 KB+ page that answered 200 is content. (Searching every
        # large page for the markers cost ~7 ms a page, more than extracting it.)
        return None
    head = body[:65536]
    m = _MARKERS.search(head)
    if m:
        return f"bot-check page ({m.group(0).decode('ascii', 'replace')}), HTTP {status}"
    if status in (403, 429) and len(body) < _SMALL_PAGE:
        return f"refused (HTTP {status})"
    if _META_REFRESH.search(head) and len(body) < 4096 and b"<p" not in head.lower():
        return "meta-refresh interstitial with no content"
    return None
