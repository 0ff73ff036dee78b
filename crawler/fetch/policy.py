"""What may be fetched: http(s) only, and no other non-public origin than the source's own unless allowed.

A link or redirect found on a source may point anywhere: ``file:///etc/passwd``, the cloud metadata
service (169.254.169.254), a database's web console on loopback. The policy:

- only ``http`` and ``https`` are ever fetched (Scrapy's other download handlers are off as well);
- the source's own origin (scheme, host and port of its configured URL) is always allowed;
- any other origin whose address is loopback, private, link-local or otherwise not global is refused,
  unless it lies in a network the config allows (``crawl.allow_networks``, ``sources[].allow_networks``).

The address is checked twice: before the request goes out (the host's resolved addresses:
:class:`FetchPolicyMiddleware`, ahead of robots.txt so a refused origin is not even asked for it) and on
the address each response actually came from (``response.ip_address``: :class:`ConnectedAddressMiddleware`,
ahead of the redirect middleware, so a host that resolves to a public address first and a private one at
connection time — DNS rebinding — is caught, redirects included). A refusal raises :class:`RefusedRequest`,
which the spiders' errbacks record as a ``refused`` outcome with its reason.

Redirect loops are stopped here too (Scrapy's duplicate filter would drop the looping request without a
word) and recorded as failed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached
from w3lib.url import safe_url_string

FETCHED_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RefusedRequest(IgnoreRequest):
    """A request the fetch policy refuses: recorded as ``refused``, with the reason as its detail."""


def scheme_refusal(url: str) -> str | None:
    """Why a URL is never fetched for its scheme, or None for http(s)."""
    scheme = url.split(":", 1)[0].strip().lower() if ":" in url else ""
    if scheme in FETCHED_SCHEMES:
        return None
    if scheme == "javascript":
        return "a javascript: link, not a page"
    return f"{scheme or 'no'} scheme: only http and https are fetched"


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower().rstrip("."), port or _DEFAULT_PORTS.get(scheme)


def is_public(address: Address) -> bool:
    """A globally routable unicast address (loopback, private, link-local, CGNAT, reserved… are not)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class FetchPolicy:
    """The policy for one source: its own origin and the non-public networks it may reach besides."""

    own_origin: tuple[str, str, int | None]
    allowed: tuple[Network, ...] = ()

    @classmethod
    def for_source(cls, url: str, allow_networks: list[str] | tuple[str, ...] = ()) -> FetchPolicy:
        return cls(origin(url), tuple(ipaddress.ip_network(n, strict=False) for n in allow_networks))

    def is_own(self, url: str) -> bool:
        return origin(url) == self.own_origin

    def address_refusal(self, url: str, address: Address | str) -> str | None:
        """Why ``url``, served from ``address``, may not be fetched; None when it may."""
        if self.is_own(url):
            return None
        addr = ipaddress.ip_address(address) if isinstance(address, str) else address
        if is_public(addr):
            return None
        plain = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped else addr
        if any(plain in net for net in self.allowed if net.version == plain.version):
            return None
        host = origin(url)[1]
        shown = host if host == str(plain) else f"{host} ({plain})"
        return (f"non-public address {shown}, not the source's own origin "
                f"(allow it with sources[].allow_networks or crawl.allow_networks)")


def _policy(crawler: Crawler) -> FetchPolicy | None:
    source = getattr(crawler.spider, "source", None)
    url = getattr(source, "url", None)
    if not isinstance(url, str):
        return None
    return FetchPolicy.for_source(url, crawler.settings.getlist("BORDERWATCH_ALLOW_NETWORKS"))


class FetchPolicyMiddleware:
    """Before a request goes out: its scheme, and the addresses its host resolves to."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._cached: FetchPolicy | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FetchPolicyMiddleware:
        return cls(crawler)

    @property
    def policy(self) -> FetchPolicy | None:
        if self._cached is None:
            self._cached = _policy(self.crawler)
        return self._cached

    async def process_request(self, request: Request) -> None:
        refusal = scheme_refusal(request.url)
        if refusal:
            raise RefusedRequest(refusal)
        policy = self.policy
        if policy is None or policy.is_own(request.url):
            return
        parsed = urlparse_cached(request)
        host = (parsed.hostname or "").rstrip(".")
        try:
            addresses: list[str] = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = await _resolve(host, origin(request.url)[2])
        for address in addresses:
            refusal = policy.address_refusal(request.url, address)
            if refusal:
                raise RefusedRequest(refusal)


async def _resolve(host: str, port: int | None) -> list[str]:
    """The addresses a host name resolves to (none when it does not: the download then fails and says so)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


class ConnectedAddressMiddleware:
    """Every response, redirects included, from the address actually connected to; redirect loops stopped."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._cached: FetchPolicy | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ConnectedAddressMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        if self._cached is None:
            self._cached = _policy(self.crawler)
        address: Any = response.ip_address
        if self._cached is not None and address is not None:
            refusal = self._cached.address_refusal(request.url, address)
            if refusal:
                raise RefusedRequest(f"connected to a {refusal}")
        if 300 <= response.status < 400 and b"Location" in response.headers:
            location = response.headers[b"Location"] or b""
            target = safe_url_string(urljoin(request.url, location.decode("latin-1")))
            seen = {safe_url_string(u) for u in (*request.meta.get("redirect_urls", ()), request.url)}
            if target in seen:
                raise IgnoreRequest(f"redirect loop: {target} leads back to an address already visited")
        return response
