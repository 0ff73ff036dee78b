"""The watchers part of the configuration: who is told, through which channels, about what."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.redact import MIN_SECRET, is_secret_name, url_secrets
from pipelines.search import QueryError, parse
from pipelines.timeutil import Duration

_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def redact(url: str) -> str:
    """An apprise URL as it may be shown or logged: credentials and tokens hidden."""
    import apprise

    service = apprise.Apprise.instantiate(url)
    if service is None:
        return url.split("://", 1)[0] + "://…"
    shown = str(service.url(privacy=True)).split("?", 1)[0]
    # apprise hides passwords and its services' known tokens, not a token in a generic URL's path
    # (json://host/hooks/<token>): hide what apprise_secrets finds too.
    for secret in sorted(apprise_secrets(url), key=len, reverse=True):
        shown = shown.replace(secret, "***")
    return shown


# A path segment of an apprise URL looks like a token (webhook ids, bot tokens) from this length with a
# digit in it, or from _TOKEN_LONG characters whatever it holds.
_TOKEN_MIN, _TOKEN_LONG = 8, 16


def apprise_secrets(url: str) -> list[str]:
    """The credentials an apprise URL carries, to be hidden wherever they show (``pipelines.redact``).

    What apprise itself hides in its private form of the URL, its user-info and credential-named parameters,
    header values (``+Header=value``), and path segments that look like tokens (many services carry their
    token in the path: ``slack://T000/B000/XXXX``, ``json://host/hooks/<token>``).
    """
    import apprise

    found = set(url_secrets(url))
    parts = urlsplit(url)
    for segment in (unquote(p) for p in parts.path.split("/")):
        if len(segment) >= _TOKEN_LONG or (len(segment) >= _TOKEN_MIN and any(c.isdigit() for c in segment)):
            found.add(segment)
    host = parts.netloc.rsplit("@", 1)[-1]
    if parts.scheme not in ("mailto", "mailtos") and (
        len(host) >= _TOKEN_LONG or (len(host) >= _TOKEN_MIN and any(c.isdigit() for c in host) and "." not in host)
    ):
        found.add(host)  # tgram://<bot token>/…, pover://<user>@<token>: the "host" is the token
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if name.startswith("+") or is_secret_name(name):
            found.add(value)
            found.update(value.split())  # "Bearer <token>": the token alone too
    quiet = logging.getLogger("apprise")
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        service = apprise.Apprise.instantiate(url)
    finally:
        quiet.level = level
    if service is not None:
        private = set(re.split(r"[/:@?&=#]+", unquote(str(service.url(privacy=True)))))
        for piece in re.split(r"[/:@?&=#]+", unquote(str(service.url()))):
            if piece and piece not in private:
                found.add(piece)
    return sorted(s for s in found if len(s) >= MIN_SECRET and s.lower() not in _NOT_TOKENS)


# Words that show up as path segments or parameter values of apprise URLs without being secrets.
_NOT_TOKENS = frozenset({"bearer", "basic", "token", "https", "http"})


def check_query(text: str) -> None:
    """A query of the config must read in the grammar (a bad date, a bad language code: ValueError)."""
    try:
        parse(text)
    except QueryError as exc:
        raise ValueError(str(exc)) from None


class WatcherConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="A unique name for the watcher (a desk, a person, a channel).")
    notify: list[str] = Field(
        min_length=1, description="Apprise URLs: mailto://, slack://, msteams://, tgram://, json://, ntfy://…"
    )
    topics: list[str] = Field(default_factory=list, description="Topic ids to follow (empty: all topics).")
    query: str | None = Field(
        None, min_length=1,
        description="A query in the search grammar to follow: items matching it are alerted, with or without a "
                    "topic (with `topics`, both must hold).",
    )
    search: str | None = Field(None, description="The name of a saved search (`searches`) to follow, as `query`.")
    sources: list[str] | None = Field(None, description="Only items from these sources (default: all).")
    mode: Literal["immediate", "digest"] = Field(
        "immediate", description="`immediate`: one message per story; `digest`: one message per window."
    )
    every: Duration | None = Field(None, description="Digest window, e.g. `1h` (digest mode).")
    at: str | None = Field(None, description='Digest time of day, e.g. "08:00" (digest mode).')
    timezone: str = Field("UTC", description="Time zone of `at`, e.g. America/Mexico_City.")
    max_age: Duration = Field(
        timedelta(days=7), description="Older items (first pass, backfill) are stored, not alerted."
    )
    updates: bool = Field(True, description="Also alert material changes of items already alerted.")
    admin: bool = Field(False, description="Receives source-health alerts (failing, blocked, quiet sources).")

    @field_validator("notify")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        import apprise

        quiet = logging.getLogger("apprise")
        level, quiet.level = quiet.level, logging.CRITICAL  # our one-line error says it; apprise's log need not
        try:
            bad = [url for url in urls if apprise.Apprise.instantiate(url) is None]
        finally:
            quiet.level = level
        for url in bad:
            scheme = url.split("://", 1)[0] if "://" in url else url[:20]
            raise ValueError(f"not an apprise URL apprise can use: {scheme}://…")
        return urls

    def query_label(self) -> str | None:
        """What a message names for a watcher following a query: its saved search's name, else the query."""
        return self.search or self.query

    @field_validator("query")
    @classmethod
    def _query(cls, v: str | None) -> str | None:
        if v is not None:
            check_query(v)
        return v

    @field_validator("at")
    @classmethod
    def _at(cls, v: str | None) -> str | None:
        if v is not None and not _AT.match(v):
            raise ValueError(f"{v!r} is not a time of day like \"08:00\"")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _digest(self) -> WatcherConfig:
        if self.mode == "digest" and self.every is None and self.at is None:
            raise ValueError("a digest needs `every` (e.g. 1h) or `at` (e.g. \"08:00\")")
        if self.mode == "immediate" and (self.every is not None or self.at is not None):
            raise ValueError("`every` and `at` apply to mode: digest only")
        return self


class AlertSettings(BaseModel):
    """How alerts are delivered (the `alerts:` part of the configuration; every key has a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(
        8, ge=1, le=100, description="Failed sends before a delivery is `failed` (shown, never dropped)."
    )
    # 30s doubling to a 1h cap: 8 attempts span about an hour, long enough to ride out a mail-server
    # restart or a chat-service incident without hammering it.
    backoff: Duration = Field(
        timedelta(seconds=30), description="Wait after the first failed send; doubled after each further one."
    )
    backoff_cap: Duration = Field(timedelta(hours=1), description="The longest wait between two sends.")
    # apprise's own defaults are 4s to connect, 4s to read and up to 60s per service: this one limit replaces
    # them (alerts.channels.timed_service), so a slow but working endpoint is not counted failed and sent twice.
    send_timeout: float = Field(
        10.0, gt=0, le=300,
        description="Seconds one send to one channel may take. No answer by then after the message went out: "
                    "`uncertain` (shown, not re-sent automatically).",
    )
    stale_sending: Duration = Field(
        timedelta(minutes=1),
        description="A delivery left `sending` this long (its sender crashed) goes back to pending.",
    )
    templates: str | None = Field(
        None, description="A folder of Jinja2 templates overriding the shipped ones (same file names); checked "
                          "at start-up by rendering every message once.",
    )

    @field_validator("templates")
    @classmethod
    def _templates(cls, v: str | None) -> str | None:
        # Checked here, once for every command: a broken template must stop start-up, not fail every send.
        if v is not None:
            from alerts.template_check import check_templates

            check_templates(v)
        return v
