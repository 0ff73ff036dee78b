"""Channels: a watcher's apprise URLs, each with its message format, its shown name, and one send.

E-mail goes out as multipart/alternative with our HTML and our own plain-text part (``alerts.mail``).

A raw URL carries credentials: it lives only in memory here. What is shown, logged or stored is the channel's
``name`` (``alerts.config.redact``), and error texts have anything apprise would hide scrubbed from them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

import apprise
from apprise.plugins import url_to_dict

from alerts.config import WatcherConfig, redact
from alerts.mail import email_service
from alerts.views import Format, Message

# E-mail gets HTML; chat services render Markdown (apprise converts it where a service needs its own dialect);
# everything else (json://, form://, sms, push…) gets plain text. E-mail's text part is ours too (alerts.mail).
HTML_SCHEMES = frozenset({"mailto", "mailtos"})
MARKDOWN_SCHEMES = frozenset({
    "slack", "msteams", "discord", "tgram", "ntfy", "ntfys", "matrix", "matrixs", "mmost", "mmosts",
    "rocket", "rockets", "zulip", "gchat", "gotify", "gotifys", "revolt", "workflow", "workflows", "guilded",
})
ERROR_MAX = 500  # characters of an error kept in the database
# Slack's webhooks take about one message a second; no service we target needs more between two messages.
SPACING_CAP = 1.2
# Connecting is quick or it fails (and then nothing went out): apprise's own default, at most half the limit.
CONNECT_TIMEOUT = 4.0
# After the call's deadline apprise stops waiting but its worker thread goes on; its sockets give up this much
# later, so an abandoned send cannot linger.
ABANDON_AFTER = 5.0
SMTP_SCHEMES = frozenset({"mailto", "mailtos"})
_TOKENS = re.compile(r"[/:@?&=#,;+]")


def message_format(url: str) -> Format:
    """The body format a channel gets, from its URL scheme."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in HTML_SCHEMES:
        return "html"
    if scheme in MARKDOWN_SCHEMES:
        return "markdown"
    return "text"


@dataclass(frozen=True)
class Channel:
    """One apprise URL of a watcher. ``name`` is safe to show and store; ``url`` is not (see ``repr``)."""

    name: str
    format: Format
    url: str = field(repr=False)


def channels_of(watcher: WatcherConfig) -> list[Channel]:
    """The watcher's channels, named by their redacted URL (``#2``, ``#3`` added when two look alike)."""
    out: list[Channel] = []
    seen: dict[str, int] = {}
    for url in watcher.notify:
        name = redact(url)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} #{seen[name]}"
        out.append(Channel(name=name, format=message_format(url), url=url))
    return out


def _secrets(url: str) -> list[str]:
    """The pieces of ``url`` that apprise's privacy mode hides (passwords, tokens, keys), longest first."""
    shown = unquote(redact(url))
    pieces = {unquote(p) for p in _TOKENS.split(url)} | set(_TOKENS.split(url))
    return sorted((p for p in pieces if len(p) >= 4 and p not in shown), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (an error message) with the URL and every secret in it replaced by ``****``."""
    text = text.replace(url, redact(url))
    for secret in _secrets(url):
        text = text.replace(secret, "****")
    return text


Outcome = Literal["sent", "failed", "uncertain"]


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None
    elapsed: float
    # ``uncertain``: no answer within the time limit after the message went out. The other side may have it,
    # so it is neither a success nor a failure to retry blindly (``alerts.deliver`` keeps it apart).
    outcome: Outcome = "failed"

    @property
    def uncertain(self) -> bool:
        return self.outcome == "uncertain"


def timed_service(url: str, limit: float, asset: apprise.AppriseAsset) -> dict[str, Any] | None:
    """apprise's parsed form of ``url`` with socket timeouts that make ``limit`` the one that applies.

    apprise's plugins bound their own sockets (``cto``/``rto`` URL arguments, 4 s by default), and a read timeout
    comes back as a plain failure, the same as a refused connection: a webhook answering in 6 s was counted failed
    and sent again. Here the connection must be made within ``min(CONNECT_TIMEOUT, limit / 2)`` (a failure then
    means nothing went out), and the read waits past ``limit``, so a slow answer ends at the call's own deadline
    (``notify(timeout=limit)``) as apprise's ``TIMEOUT``: the message went out, its fate is unknown. SMTP uses
    ``cto`` for the whole conversation, so e-mail gets the long value there too. A ``cto``/``rto`` the user set
    in the URL is kept.
    """
    parsed = url_to_dict(url, secure_logging=asset.secure_logging)
    if parsed is None:
        return None
    scheme = str(parsed.get("schema") or "").lower()
    wait = limit + ABANDON_AFTER
    connect = wait if scheme in SMTP_SCHEMES else min(CONNECT_TIMEOUT, limit / 2)
    parsed.setdefault("cto", f"{connect:g}")
    parsed.setdefault("rto", f"{wait:g}")
    return dict(parsed)


class Sender:
    """Sends messages through apprise: one URL per call, so each channel's outcome is known.

    apprise spaces out messages to one service itself (Slack 1.2 s, e-mail 5.5 s…), but inside the timed call,
    where a long wait becomes a timeout — and a timed-out send that still goes through becomes a duplicate. So
    such a channel gets a fresh apprise object per send (no wait inside) and the spacing happens here, before
    the call, capped at ``SPACING_CAP``. Channels apprise never spaces (json://, discord://…) keep one object.

    ``timeout`` (``alerts.send_timeout``) is the time one send may take; see ``timed_service`` for how it is made
    the limit that applies, and how a send that timed out after it went out comes back ``uncertain``.
    """

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        # service_timeout bounds one service's whole call (connect, send, apprise's own retries).
        self._asset = apprise.AppriseAsset(service_timeout=timeout)
        self._spacing: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._kept: dict[str, apprise.Apprise] = {}

    def _space(self, url: str) -> None:
        if url not in self._spacing:
            plugin = apprise.Apprise.instantiate(url, asset=self._asset)
            rate = float(getattr(plugin, "request_rate_per_sec", 0) or 0) if plugin is not None else 0.0
            self._spacing[url] = min(rate, SPACING_CAP)
        last = self._last.get(url)
        if last is not None:
            wait = last + self._spacing[url] - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def _service(self, url: str, limit: float) -> apprise.Apprise | None:
        """An apprise object for ``url`` whose sockets wait as ``limit`` needs (kept when it can be reused)."""
        reusable = self._spacing[url] == 0 and limit == self.timeout
        if reusable and url in self._kept:
            return self._kept[url]
        parsed = timed_service(url, limit, self._asset)
        if parsed is None:
            return None
        service = apprise.Apprise(asset=self._asset)
        if not service.add(parsed):
            return None
        if reusable:
            self._kept[url] = service
        return service

    def _mail(self, url: str, limit: float, text: str) -> apprise.Apprise | None:
        """A fresh e-mail service for ``url`` carrying ``text`` as its plain part (None: not an e-mail URL)."""
        if message_format(url) != "html":
            return None
        parsed = timed_service(url, limit, self._asset)
        mail = email_service(url, self._asset, parsed) if parsed is not None else None
        if mail is None:
            return None
        mail.text_part = text
        service = apprise.Apprise(asset=self._asset)
        return service if service.add(mail) else None

    def send(self, channel: Channel, message: Message, *, timeout: float | None = None) -> SendResult:
        """Send ``message`` to one channel within ``timeout`` seconds (default and upper bound: the sender's)."""
        self._space(channel.url)
        start = time.monotonic()
        limit = self.timeout if timeout is None else max(0.5, min(timeout, self.timeout))
        # E-mail: apprise's own service, given our plain-text part to send beside the HTML (alerts.mail).
        service = self._mail(channel.url, limit, message.text) if message.text is not None else None
        if service is None:
            service = self._service(channel.url, limit)
        if service is None:
            return SendResult(False, "apprise cannot use this URL", 0.0)
        outcome: Outcome = "failed"
        try:
            with service.notify(
                body=message.body, title=message.title, body_format=message.body_format, timeout=limit
            ) as result:
                if result:
                    outcome, error = "sent", None
                elif result.status == apprise.AppriseResultStatus.TIMEOUT:
                    outcome = "uncertain"
                    error = (f"no answer within {limit:g}s after the message went out: it may have arrived "
                             "(not re-sent automatically)")
                else:
                    error = _explain(result, limit)
        except Exception as exc:  # a plugin's bug must not stop the other deliveries
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._last[channel.url] = time.monotonic()
        if error is not None:
            error = scrub(error, channel.url)[:ERROR_MAX]
        return SendResult(outcome == "sent", error, time.monotonic() - start, outcome)


def _explain(result: apprise.AppriseResult, limit: float) -> str:
    """A one-line reason from a failed apprise result: its warnings, else its status."""
    status = result.status.name
    if status == "TIMEOUT":
        return f"no answer within {limit:g}s"
    messages = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
    if messages:
        return " / ".join(dict.fromkeys(m.strip() for m in messages[-3:]))
    return f"apprise reported {status.lower()}"

