"""Digest windows: when a digest watcher's waiting deliveries may go out, as one message.

Pure time arithmetic.

- ``every: 1h``: at most one digest an hour: the window closes an hour after the last digest was sent
  (before the first digest, an hour after the oldest waiting alert).
- ``at: "08:00"``: the window closes at the first 08:00 (in the watcher's ``timezone``) after the oldest
  waiting alert arrived — and after the last digest, so a day never gets two.
- both: whichever closes first.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.config import WatcherConfig
from pipelines.timeutil import as_utc


def next_time_of_day(after: datetime, at: str, tz: str) -> datetime:
    """The first ``at`` ("08:00") in zone ``tz`` strictly after ``after``, in UTC."""
    zone = ZoneInfo(tz)
    hour, minute = (int(x) for x in at.split(":"))
    after = as_utc(after)
    day = after.astimezone(zone).date()
    for offset in range(3):  # today, tomorrow, or (past a DST gap) the day after
        candidate = datetime.combine(day + timedelta(days=offset), time(hour, minute), tzinfo=zone)
        if candidate.astimezone(UTC) > after:
            return candidate.astimezone(UTC)
    raise AssertionError("unreachable: a time of day recurs within three days")


def window_close(watcher: WatcherConfig, *, last_sent: datetime | None, oldest_waiting: datetime) -> datetime:
    """When the current window closes, given the last digest sent (if any) and the oldest waiting alert."""
    candidates: list[datetime] = []
    if watcher.every is not None:
        candidates.append(as_utc(last_sent if last_sent is not None else oldest_waiting) + watcher.every)
    if watcher.at is not None:
        opened = max(as_utc(oldest_waiting), as_utc(last_sent)) if last_sent else as_utc(oldest_waiting)
        candidates.append(next_time_of_day(opened, watcher.at, watcher.timezone))
    if not candidates:
        raise ValueError(f"watcher {watcher.name!r} is not a digest (it has neither `every` nor `at`)")
    return min(candidates)


def digest_due(
    watcher: WatcherConfig, *, last_sent: datetime | None, oldest_waiting: datetime, now: datetime
) -> bool:
    """Whether the window is closed: the waiting deliveries may be sent now, together."""
    return as_utc(now) >= window_close(watcher, last_sent=last_sent, oldest_waiting=oldest_waiting)
