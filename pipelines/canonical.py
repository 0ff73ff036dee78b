"""Canonical URLs: one key per article, whatever tracking parameters, fragment, scheme or ``www.`` it came with."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

# Parameters that identify a campaign or a click, never the article.
_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_", "_hs", "vero_", "oly_")
_TRACKING = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "mkt_tok",
        "ocid", "cmpid", "cmp", "ncid", "sr_share", "s_cid", "ref", "ref_src", "ref_url", "share",
        "rss", "feed", "from", "src", "spm", "_ga", "_gl", "xtor", "at_medium", "at_campaign",
        "smid", "smtyp", "cid", "campaign_id", "email_id", "source", "trk",
    }
)


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k in _TRACKING or k.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """The key an article is stored under.

    https, lower-case host without ``www.`` or default port, no fragment, no tracking parameters,
    the remaining parameters sorted, no trailing slash on a non-root path, percent-encoding normalised.
    Path case is kept: on most servers it matters.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().rstrip(".")
    host = host.removeprefix("www.")
    port = parts.port
    if port and port not in (80, 443):
        host = f"{host}:{port}"
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~%") or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k))
    return urlunsplit(("https", host, path, urlencode(query), ""))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")
