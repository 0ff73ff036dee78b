"""Article addresses: the dedup key one article is stored under, and the real address people open.

``canonical_url`` folds the variants one article arrives under (tracking parameters, fragment, scheme,
``www.``, trailing slash, a signed address's signature and expiry) into one key: it is for deduplication
only and need not answer on the web.
``strip_tracking`` and ``page_address`` give the address that is shown and clicked: a real URL with
only its tracking parameters removed.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlencode, urljoin, urlsplit, urlunsplit

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
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A signed address (S3, Google Cloud Storage, CloudFront, Azure SAS, signed CDN links) carries a signature and
# what was signed with it (expiry, credential, policy): all change each time the source signs the same page
# anew, so in a signed address none of them says which page it is. Dropped only when a signature is there:
# an ordinary address with an ``expires`` or ``sp`` parameter keeps it (and its stored key).
_SIGNATURES = frozenset({"signature", "sig", "x-amz-signature", "x-goog-signature"})
_SIGNED_WITH = _SIGNATURES | frozenset({
    "expires", "expiry", "exp", "se", "st", "validfrom", "validto", "key-pair-id", "policy",
    "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires", "x-amz-signedheaders",
    "x-amz-security-token", "x-goog-algorithm", "x-goog-credential", "x-goog-date", "x-goog-expires",
    "x-goog-signedheaders", "sv", "sp", "sr", "spr", "ss", "srt", "skoid", "sktid", "skt", "ske", "sks", "skv",
})


def _is_tracking(key: str) -> bool:
    k = key.lower()
    return k in _TRACKING or k.startswith(_TRACKING_PREFIXES)


def _unsigned(query: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Query pairs without a signature and what was signed with it (all of them kept when none is a signature)."""
    if not any(k.lower() in _SIGNATURES for k, _ in query):
        return query
    return [(k, v) for k, v in query if k.lower() not in _SIGNED_WITH]


def unsigned_key(key: str) -> str:
    """A key stored before signed addresses were folded (its signature still in it), as ``canonical_url`` gives
    it now; any other key unchanged (migration 0015)."""
    parts = urlsplit(key)
    if not parts.query:
        return key
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = _unsigned(query)
    return key if kept is query else urlunsplit(parts._replace(query=urlencode(kept)))


def _netloc_host(host: str) -> str:
    """A host as it is written in a URL: an IPv6 address keeps its brackets."""
    return f"[{host}]" if ":" in host else host


def canonical_url(url: str) -> str:
    """The key an article is stored under (deduplication only: it is never shown as a link).

    https, lower-case host without ``www.`` or default port, no fragment, no tracking parameters,
    the remaining parameters sorted, no trailing slash on a non-root path, percent-encoding normalised.
    Path case is kept: on most servers it matters. An IPv6 host keeps its brackets. A signed address drops its
    signature, expiry and signing credentials: the same page signed anew has the same key.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().rstrip(".")
    host = _netloc_host(host.removeprefix("www."))
    port = parts.port
    if port and port not in (80, 443):
        host = f"{host}:{port}"
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~%") or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = sorted(_unsigned([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                              if not _is_tracking(k)]))
    return urlunsplit(("https", host, path, urlencode(query), ""))


def strip_tracking(url: str) -> str:
    """``url`` without its tracking parameters; everything else (scheme, host, path, the order and
    encoding of the other parameters, the fragment) is kept as it is."""
    url = url.strip()
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [p for p in parts.query.split("&") if p and not _is_tracking(unquote_plus(p.partition("=")[0]))]
    if len(kept) == len(parts.query.split("&")):
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), parts.fragment))


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host without ``www.``, port) of an http(s) URL, None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".").removeprefix("www.")
    return parts.scheme, host, port or _DEFAULT_PORTS[parts.scheme]


def same_site(url: str, other: str) -> bool:
    """Whether ``other`` is on the site of ``url``: the same host (``www.`` aside), scheme and port.

    An ``https`` address of an ``http`` page on its default port counts too (the site declares it).
    """
    a, b = _origin(url), _origin(other)
    if a is None or b is None or a[1] != b[1]:
        return False
    return a == b or (a[0] == "http" and a[2] == 80 and b[0] == "https" and b[2] == 443)


def page_address(final_url: str, declared: str | None) -> str:
    """The address to show for a fetched page: its ``<link rel="canonical">`` (``declared``, resolved
    against the page) when that is on the same site, else the final fetched URL; tracking removed."""
    if declared and declared.strip():
        try:
            target = urljoin(final_url, declared.strip())
        except ValueError:
            target = ""
        if target and same_site(final_url, target):
            return strip_tracking(target)
    return strip_tracking(final_url)


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")
