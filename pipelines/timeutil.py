"""Durations and points in time as users write them: ``15m``, ``7d``, ``2026-11-01``, ISO date-times.

``Duration`` is the one type every configuration model declares a duration with (crawler.config and
alerts.config, which crawler.config composes, so it lives here beside its parser).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(text: str | int | float, *, allow_zero: bool = False) -> timedelta:
    """``90s``, ``15m``, ``1h30m``, ``7d``, ``2w`` (or a number of seconds) → timedelta.

    A duration is positive; with ``allow_zero``, ``0`` / ``0s`` / ``0h``… too. Raises ValueError with a
    message fit to show a user.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text == 0 and allow_zero:
            return timedelta(0)
        if not text > 0:  # (NaN too)
            raise ValueError(f"a duration must be positive, not {text!r}")
        try:
            return timedelta(seconds=text)
        except OverflowError:
            raise ValueError(f"duration too long: {text!r}") from None
    s = str(text).strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if s == "0" and allow_zero:
        return timedelta(0)
    if not s or pos != len(s):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 90s, 15m, 12h, 7d)")
    if total == 0 and allow_zero:
        return timedelta(0)
    if total <= 0:
        raise ValueError(f"a duration must be positive, not {text!r}")
    try:
        return timedelta(seconds=total)
    except OverflowError:
        raise ValueError(f"duration too long: {text!r}") from None


def _as_duration(value: Any, allow_zero: bool = False) -> Any:
    """A config value as a timedelta (one given as a timedelta, e.g. a default, is taken as it is)."""
    return value if isinstance(value, timedelta) else parse_duration(value, allow_zero=allow_zero)


# A duration in a configuration file: ``90s``, ``15m``, ``12h``, ``7d``, ``2w``, ``1h30m`` or seconds.
Duration = Annotated[timedelta, BeforeValidator(_as_duration), Field(json_schema_extra={"format": "duration"})]
# The same, where ``0s`` means "every time" (crawl.revisit_every).
DurationOrZero = Annotated[
    timedelta, BeforeValidator(partial(_as_duration, allow_zero=True)), Field(json_schema_extra={"format": "duration"})
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes (as SQLite hands them back) are taken to be UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_when(text: str | date | datetime, now: datetime | None = None) -> datetime:
    """A WHEN of the contract: an ISO date, an ISO date-time, or a duration back from now."""
    if isinstance(text, datetime):
        return as_utc(text)
    if isinstance(text, date):
        return datetime(text.year, text.month, text.day, tzinfo=UTC)
    s = str(text).strip()
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        return as_utc(datetime.fromisoformat(s.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        span = parse_duration(s)
    except ValueError as exc:
        if str(exc).startswith("duration too long"):
            raise
        raise ValueError(f"not a date, date-time or duration: {text!r} (e.g. 2026-11-01, 7d)") from None
    try:
        return (now or utcnow()) - span
    except OverflowError:
        raise ValueError(f"duration too long: {text!r} reaches back before the year 1") from None


# A publication date more than this after the page was first fetched is a placeholder or a mistake
# (year 9999, a date typed a month ahead) rather than a date: a day allows for time zones and for dates
# given without a time.
FUTURE_DATE_SLACK = timedelta(days=1)


def trusted_published(published: datetime | None, first_seen: datetime) -> datetime | None:
    """``published`` if it is believable: not more than ``FUTURE_DATE_SLACK`` after ``first_seen``.

    An untrusted date is dropped (None): items are then ordered, filtered and judged fresh for alerts
    by ``first_seen``, as items without a date are.
    """
    if published is None:
        return None
    return published if as_utc(published) <= as_utc(first_seen) + FUTURE_DATE_SLACK else None


def item_date(published: datetime | None, first_seen: datetime) -> datetime:
    """The date an item is ordered and judged fresh by: its trusted publication date, else first_seen."""
    return as_utc(trusted_published(published, first_seen) or first_seen)
