"""Source health as pure functions: recent pass statuses and item arrival times in, a verdict out.

A source is ``failing`` after ``failures_alert`` failed passes in a row (failed, crashed, timeout), ``blocked``
when those passes all met a bot wall, ``quiet`` when no new item arrived for much longer than its usual
rhythm, else ``ok``. ``transition`` turns a verdict into at most one event per episode: one ``health`` event
when a healthy source goes bad, one ``recovery`` event when it is healthy again; a change from one bad state
to another (failing → blocked) updates the state without telling anyone twice.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from crawler.fetch.botwall import UNREACHABLE

OK = "ok"
FAILING = "failing"
BLOCKED = "blocked"
QUIET = "quiet"
BAD = frozenset({FAILING, BLOCKED, QUIET})

# Pass statuses that count as a failure of the source; `blocked` counts too, as its own kind.
FAILED_STATUSES = frozenset({"failed", "crashed", "timeout"})
# Statuses that say nothing about the source: a pass still running, one the daemon stopped at shutdown,
# one that found the source locked by another writer.
NEUTRAL_STATUSES = frozenset({"running", "stopped", "locked"})


@dataclass(frozen=True)
class QuietRule:
    """When a source counts as quiet. The defaults are for real press offices.

    Calibrated as a set against DOJ's rhythm (dozens of releases a weekday, none most weekend days): the
    longest gap seen in the window is a floor, so weekends and holidays a source has lived through before
    are not news; a day is the least silence ever reported; a week of history and six arrivals come first.
    """

    factor: float = 6.0
    floor: timedelta = timedelta(hours=24)
    min_arrivals: int = 6
    min_span: timedelta = timedelta(days=7)
    window: timedelta = timedelta(days=90)  # the history looked at (older items say little of today's rhythm)


@dataclass(frozen=True)
class Verdict:
    state: str  # ok | failing | blocked | quiet
    message: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Change:
    """What to write after a verdict: the new state, and the event to raise (``health``/``recovery``) or None."""

    state: str
    event: str | None
    message: str = ""
    detail: str = ""


def arrivals(first_seen: Sequence[datetime], merge: timedelta) -> list[datetime]:
    """Times new items arrived, items found within ``merge`` of an arrival counted as that one arrival.

    One pass stores many items within seconds (a first pass imports a month at once): they are one arrival,
    not a rhythm of zero-second gaps. ``assess`` merges within half the source's schedule: a pass is far
    shorter than that, and two passes' items are a whole interval apart.
    """
    out: list[datetime] = []
    for t in sorted(first_seen):
        if not out or t - out[-1] > merge:
            out.append(t)
    return out


def rhythm(times: Sequence[datetime], every: timedelta, rule: QuietRule) -> tuple[timedelta, timedelta] | None:
    """(typical gap, silence that is unusual) for arrivals ``times``; None while the history is too short."""
    if len(times) < rule.min_arrivals or times[-1] - times[0] < rule.min_span:
        return None
    gaps = [b - a for a, b in itertools.pairwise(times)]
    typical = timedelta(seconds=statistics.median(g.total_seconds() for g in gaps))
    return typical, max(typical * rule.factor, max(gaps), rule.floor, 3 * every)


def failure_streak(statuses: Sequence[str]) -> list[str]:
    """The unbroken run of failed or blocked passes at the head of ``statuses`` (newest first)."""
    streak: list[str] = []
    for s in statuses:
        if s in NEUTRAL_STATUSES:
            continue
        if s in FAILED_STATUSES or s == BLOCKED:
            streak.append(s)
        else:
            break
    return streak


def assess(
    statuses: Sequence[str],
    failures_alert: int,
    *,
    first_seen: Sequence[datetime],
    now: datetime,
    every: timedelta,
    rule: QuietRule,
    quiet_from: datetime | None = None,
    last_error: str | None = None,
) -> Verdict:
    """The state of one source.

    ``statuses``: its recent passes' statuses, newest first. ``first_seen``: when its items were first seen
    (any order, within ``rule.window``). ``quiet_from``: silence is counted from no earlier than this (when
    the source last recovered), so a source back from a week of failures is not at once reported quiet.
    """
    streak = failure_streak(statuses)
    if len(streak) >= failures_alert:
        n = len(streak)
        if all(s == BLOCKED for s in streak):
            return blocked_verdict(n, last_error)
        kinds = ", ".join(f"{streak.count(k)} {k}" for k in ("failed", "crashed", "timeout", BLOCKED)
                          if streak.count(k))
        return Verdict(FAILING, f"failing: {n} passes in a row did not complete ({kinds})",
                       f"Last error: {last_error}" if last_error else "")
    times = arrivals(first_seen, every / 2)
    usual = rhythm(times, every, rule)
    if usual is not None:
        typical, limit = usual
        since = max(times[-1], quiet_from) if quiet_from is not None else times[-1]
        silent = now - since
        if silent > limit:
            return Verdict(QUIET, f"quiet: no new item for {human(silent)}",
                           f"Usually a new item every {human(typical)}; reported after "
                           f"{human(limit)} of silence. The source may have moved or changed its layout.")
    return Verdict(OK)


# What the admin can do about a wall: borderwatch never gets around one, so the way out is another door.
_OTHER_WAY_IN = ("Read the publisher through its API or feed instead (they are rarely walled: for Government "
                 "of Canada departments the GC News API, for justice.gov the DOJ News API), and disable this "
                 "source; or ask the site's owner to let your client in.")


def blocked_verdict(passes: int, last_error: str | None) -> Verdict:
    """The ``blocked`` verdict, saying which wall it is and what the admin can do."""
    error = last_error or ""
    if UNREACHABLE in error:
        return Verdict(BLOCKED, f"{UNREACHABLE}: {passes} passes in a row got no answer",
                       "The host accepts connections but never answers a plain HTTP client (the connection or "
                       "TLS handshake hangs until the timeout): the pattern of a firewall that stalls clients it "
                       "does not take for a browser, as www.canada.ca does. borderwatch does not get around it. "
                       + _OTHER_WAY_IN + (f" Last error: {error}" if error else ""))
    if "Cloudflare" in error:
        return Verdict(BLOCKED, f"blocked: {passes} passes in a row met a Cloudflare challenge",
                       "The site answers non-browser clients with a Cloudflare challenge page instead of content "
                       "(gob.mx does so on its archives); borderwatch does not solve challenges. " + _OTHER_WAY_IN
                       + f" Last error: {error}")
    return Verdict(BLOCKED, f"blocked: {passes} passes in a row met only bot walls",
                   "The site answers with a bot-wall page instead of content; borderwatch does not get around "
                   "bot walls. Check the source in a browser. " + _OTHER_WAY_IN
                   + (f" Last error: {error}" if error else ""))


def transition(current: str | None, verdict: Verdict, *, since: datetime | None = None,
               now: datetime | None = None) -> Change | None:
    """What changes when ``verdict`` meets the stored state ``current``; None when nothing does."""
    current = current or OK
    if verdict.state == current:
        return None
    if current == OK:
        return Change(verdict.state, "health", verdict.message, verdict.detail)
    if verdict.state == OK:
        was = {FAILING: "failing", BLOCKED: "blocked", QUIET: "quiet"}.get(current, current)
        how_long = f" for {human(now - since)}" if since is not None and now is not None else ""
        return Change(OK, "recovery", f"works again (was {was}{how_long})", "")
    # One bad state to another: the admin already knows this source is in trouble.
    return Change(verdict.state, None, verdict.message, verdict.detail)


def human(d: timedelta) -> str:
    """``45s``, ``12m``, ``3h``, ``2d 4h``: a duration for people."""
    s = int(max(d.total_seconds(), 0))
    if s < 120:
        return f"{s}s"
    if s < 2 * 3600:
        return f"{s // 60}m"
    if s < 2 * 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h" if not m or h >= 10 else f"{h}h {m}m"
    d_, h = divmod(s // 3600, 24)
    return f"{d_}d" if not h else f"{d_}d {h}h"
