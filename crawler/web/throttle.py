"""Failed logins slow an attacker down: a few wrong passwords for one name from one address, or many from one
address whatever the names, and that address waits before it may try again (``429`` with the wait in words).

Kept in memory (a restart forgets it, as it forgets nothing else that matters): a sliding window of failure
times per (address, name) and per address. A successful login clears its (address, name) failures.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from threading import Lock
from time import monotonic

# Five tries cover typos; twenty per address cover a shared office address (or a TLS proxy in front) with
# a few users mistyping, while a guesser gets at most twenty passwords per quarter-hour.
FAILURES_PER_NAME = 5
FAILURES_PER_ADDRESS = 20
WINDOW_SECONDS = 15 * 60.0
# Failure records kept at most (the oldest addresses are forgotten first): memory stays bounded under a flood.
MAX_KEYS = 10_000


class LoginThrottle:
    """``wait(address, name)``: seconds before another login may be tried (0: now); ``failed`` and
    ``succeeded`` record the outcome of a try."""

    def __init__(self, clock: Callable[[], float] = monotonic) -> None:
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] >= WINDOW_SECONDS:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def wait(self, address: str, name: str) -> float:
        now = self.clock()
        with self._lock:
            waits = [0.0]
            for key, most in (((address, name), FAILURES_PER_NAME), ((address, ""), FAILURES_PER_ADDRESS)):
                times = self._recent(key, now)
                if len(times) >= most:  # wait until the oldest failure that counts leaves the window
                    waits.append(times[len(times) - most] + WINDOW_SECONDS - now)
            return max(waits)

    def failed(self, address: str, name: str) -> None:
        now = self.clock()
        with self._lock:
            for key in ((address, name), (address, "")):
                self._failures.setdefault(key, deque()).append(now)
            while len(self._failures) > MAX_KEYS:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str, name: str) -> None:
        with self._lock:
            self._failures.pop((address, name), None)


def in_words(seconds: float) -> str:
    """``in 40 seconds``, ``in 3 minutes``: how long a refused login must wait."""
    if seconds <= 90:
        return f"in {max(1, math.ceil(seconds))} seconds"
    return f"in {math.ceil(seconds / 60)} minutes"
