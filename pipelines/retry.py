"""When a failed or blocked page is tried again: a backoff doubling from its source's interval, capped,
for a bounded number of tries. Pure: values in, a time (or None: given up) out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipelines import items as outcome

# Statuses that are tried again on later passes. Too-large pages, robots.txt refusals and pages without
# text would answer the same again: they are recorded, not retried.
RETRIED = frozenset({outcome.BLOCKED, outcome.FAILED})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # tries in all, the first one included
    cap: timedelta = timedelta(days=1)
    every: Mapping[str, timedelta] = field(default_factory=dict)  # each source's interval: the first wait
    default_every: timedelta = timedelta(hours=1)

    def next_attempt(self, source: str, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` tries, or None when that was the last one."""
        if attempts >= self.attempts:
            return None
        base = self.every.get(source, self.default_every).total_seconds()
        # 2 ** attempts grows past any cap long before it overflows a float; the exponent is bounded anyway.
        wait = min(base * 2.0 ** min(max(attempts - 1, 0), 64), self.cap.total_seconds())
        return now + timedelta(seconds=wait)
