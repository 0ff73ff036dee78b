"""Delivery: due deliveries are sent through apprise, each attempt recorded, failures retried with backoff.

The state machine of a ``Delivery``::

    pending ──claim (committed)──► sending ──all channels ok──► sent
       ▲                              │
       └──── a channel failed, ◄──────┤  (attempts + 1, next_attempt = now + backoff)
             attempts < max           ├──attempts reach max──► failed  (shown; `alerts send` retries it)
                                      └──none failed, one timed out after sending──► uncertain

``uncertain``: a channel gave no answer within ``alerts.send_timeout`` after the message went out (see
``alerts.channels.timed_service``). It may have arrived, and most services have no way to drop a repeat, so it
is never retried blindly: not by the backoff, not by a plain ``alerts send`` — only by ``alerts send
--resend-uncertain``, a person's decision. Other channels of the same delivery are retried as usual, and a
retry never re-sends to the uncertain channel.

``orphaned`` is not stored: a delivery not yet sent whose watcher is no longer in the config is shown as
orphaned (``alerts list``, ``status``), and no sender touches it. It keeps its stored state, so it is live
again (and sent, if it was pending) when the watcher comes back.

Crash safety: a delivery is marked ``sending`` in its own committed transaction before apprise is called, and
each channel's outcome is committed right after apprise returns. A sender killed in between leaves the row
``sending``; the next ``deliver`` (after ``stale_sending``, 1 minute) puts it back to pending and sends it to
the channels with no recorded success. So delivery is at-least-once, and what can be repeated is only the
message that was in flight when the process died.

A watcher with several URLs: its delivery is ``sent`` when every URL has a successful attempt. Each attempt
row names its channel (the redacted URL), so a retry sends only to the channels still missing.

Digest watchers: their deliveries wait (``digest=True``) until the window closes (``alerts.digest``); then one
message per channel carries all of them, and they become ``sent`` together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, case, func, insert, literal, or_, select, true, update
from sqlalchemy.orm import Session

from alerts.channels import Channel, Sender, SendResult, channels_of
from alerts.config import AlertSettings, WatcherConfig
from alerts.digest import digest_due
from alerts.load import load_alerts
from alerts.render import Renderer
from alerts.views import Alert, Format, Labels, Message, StoryAlert
from pipelines.db import Database
from pipelines.models import Delivery, DeliveryAttempt
from pipelines.redact import redact_text
from pipelines.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

# Due deliveries read (with what they say) per query; each is still claimed on its own just before its send.
CLAIM_BATCH = 50
# The hot path (claim, attempt, outcome: a few statements per message) goes through Core tables: the ORM's
# bulk-update machinery cost ~0.5 ms a statement here.
DELIVERIES = cast(Table, Delivery.__table__)
ATTEMPTS = cast(Table, DeliveryAttempt.__table__)


@dataclass
class DeliveryReport:
    """What one ``deliver`` (or ``dispatch``) did."""

    planned: int = 0  # deliveries created from events (``dispatch`` only)
    sent: int = 0  # deliveries now sent
    messages: int = 0  # messages a channel accepted (a digest counts once per channel)
    retrying: int = 0  # a channel failed; retried after the backoff
    failed: int = 0  # out of attempts (or a forced retry failed again)
    uncertain: int = 0  # a channel timed out after the message went out: not retried blindly
    orphaned: int = 0  # not sent, and their watcher is no longer configured: left alone
    deferred: int = 0  # due but left for the next run: the time budget was spent
    recovered: int = 0  # `sending` rows of a crashed sender put back to pending
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)  # "watcher #id channel: error", credentials hidden
    doubts: list[str] = field(default_factory=list)  # the same, for uncertain sends

    def summary(self) -> str:
        parts = [f"{self.sent} alert{'s' if self.sent != 1 else ''} sent ({self.messages} messages)"]
        parts.append(f"{self.retrying} retrying")
        parts.append(f"{self.failed} failed")
        if self.uncertain:
            parts.append(f"{self.uncertain} uncertain (may have arrived; not re-sent)")
        if self.deferred:
            parts.append(f"{self.deferred} left for later")
        if self.recovered:
            parts.append(f"{self.recovered} recovered from a crashed sender")
        if self.orphaned:
            parts.append(f"{self.orphaned} orphaned (watcher no longer configured) left alone")
        head = f"{self.planned} planned, " if self.planned else ""
        return f"{head}{', '.join(parts)} in {self.elapsed:.1f}s"


def backoff(attempts: int, settings: AlertSettings) -> timedelta:
    """The wait after the ``attempts``-th failed send: 30s, 1m, 2m, 4m … capped (with the defaults)."""
    delay: timedelta = settings.backoff * (2 ** max(0, attempts - 1))
    cap: timedelta = settings.backoff_cap
    return min(delay, cap)


def recover_stale(db: Database, now: datetime, stale: timedelta) -> int:
    """Put deliveries left ``sending`` longer than ``stale`` (their sender died) back to pending."""
    with db.write() as session:
        result = session.execute(
            update(Delivery)
            .where(Delivery.state == "sending", Delivery.claimed < now - stale)
            .values(state="pending", claimed=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class _Claimed:
    id: int
    watcher: str
    attempts: int


class _Run:
    """One ``deliver`` call: its clock, budget, sender, renderers and report."""

    def __init__(
        self,
        db: Database,
        watchers: Sequence[WatcherConfig],
        now: datetime | None,
        templates: str | Path | None,
        settings: AlertSettings,
        budget: float | None,
        force: bool,
        labels: Labels | None = None,
        resend_uncertain: bool = False,
    ) -> None:
        self.db = db
        self.labels = labels
        self.watchers = {w.name: w for w in watchers}
        self.settings = settings
        self.force = force
        self.resend_uncertain = resend_uncertain
        fixed = as_utc(now) if now is not None else None
        self.now: Callable[[], datetime] = (lambda: fixed) if fixed is not None else utcnow
        self.started = time.monotonic()
        self.deadline = self.started + budget if budget is not None else None
        self.templates = templates if templates is not None else settings.templates
        self.sender = Sender(settings.send_timeout)
        self.report = DeliveryReport()
        self.sends = 0
        self._renderers: dict[str, Renderer] = {}
        self._channels: dict[str, list[Channel]] = {}

    # -- time ---------------------------------------------------------------------------------------------

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def out_of_time(self) -> bool:
        """No room for another send: the budget is spent, or what is left of it is shorter than one send may take.

        A send is never cut short to fit the budget: a slow channel cut off after the message went out would be
        ``uncertain`` (not re-sent), where waiting for the next run costs nothing. The first send of a run always
        starts, so a run with a small budget still makes progress."""
        left = self.remaining()
        if left is None:
            return False
        return left <= 0 or (self.sends > 0 and left < self.settings.send_timeout)

    def send(self, channel: Channel, message: Message) -> SendResult:
        self.sends += 1
        return self.sender.send(channel, message)

    def channels(self, w: WatcherConfig) -> list[Channel]:
        if w.name not in self._channels:
            self._channels[w.name] = channels_of(w)
        return self._channels[w.name]

    def renderer(self, w: WatcherConfig) -> Renderer:
        if w.name not in self._renderers:
            self._renderers[w.name] = Renderer(
                self.templates, timezone=w.timezone, follow=w.topics, labels=self.labels, query=w.query_label()
            )
        return self._renderers[w.name]

    # -- claims -------------------------------------------------------------------------------------------

    def _states(self) -> tuple[str, ...]:
        if self.resend_uncertain:
            return ("pending", "failed", "uncertain")
        return ("pending", "failed") if self.force else ("pending",)

    def _due(self, now: datetime) -> ColumnElement[bool]:
        """Which deliveries may be sent now: in a sendable state and past their backoff (unless forced)."""
        c = DELIVERIES.c
        due: ColumnElement[bool] = c.state.in_(self._states())
        if not self.force:
            due = and_(due, or_(c.next_attempt.is_(None), c.next_attempt <= now))
        return due

    def claim(self, session: Session, ids: Sequence[int]) -> list[_Claimed]:
        """Mark these deliveries `sending` if they are still due; returns those this run got."""
        if not ids:
            return []
        got = session.connection().execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id.in_(ids), self._due(self.now()))
            .values(state="sending", claimed=self.now())
            .returning(DELIVERIES.c.id, DELIVERIES.c.watcher, DELIVERIES.c.attempts)
        ).all()
        return sorted((_Claimed(r.id, r.watcher, r.attempts) for r in got), key=lambda c: c.id)

    def done_channels(self, ids: Sequence[int]) -> dict[int, dict[str, str]]:
        """delivery id → {channel: "sent" or "uncertain"}: the channels not to send it to again.

        A channel that accepted it is done; one whose send is uncertain too, unless uncertain sends are being
        re-sent (``--resend-uncertain``)."""
        done: dict[int, dict[str, str]] = {}
        if ids:
            with self.db.read() as session:
                for delivery_id, channel, ok in session.execute(
                    select(DeliveryAttempt.delivery_id, DeliveryAttempt.channel, DeliveryAttempt.ok)
                    .where(DeliveryAttempt.delivery_id.in_(ids))
                    .where(or_(DeliveryAttempt.ok.is_(True), DeliveryAttempt.outcome == "uncertain"))
                ):
                    channels = done.setdefault(delivery_id, {})
                    if ok:
                        channels[channel] = "sent"
                    elif not self.resend_uncertain and channels.get(channel) != "sent":
                        channels[channel] = "uncertain"
        return done

    # -- outcome ------------------------------------------------------------------------------------------

    def settle(self, session: Session, c: _Claimed, errors: Sequence[str], uncertain: Sequence[str] = ()) -> None:
        """Record a delivery's outcome after its channels were tried: ``errors`` from channels that failed,
        ``uncertain`` from channels that may have it (this time or before); both empty: all accepted."""
        now = self.now()
        attempts = c.attempts + 1
        if not errors and uncertain:
            values: dict[str, object] = {
                "state": "uncertain", "next_attempt": None, "last_error": "; ".join(uncertain)[:2000],
            }
            self.report.uncertain += 1
            self.report.doubts.extend(f"{c.watcher} #{c.id} {e}" for e in uncertain)
            log.warning("alert %s to %s may not have arrived (not re-sent): %s", c.id, c.watcher,
                        "; ".join(uncertain))
        elif not errors:
            values = {"state": "sent", "sent_at": now, "next_attempt": None, "last_error": None}
            self.report.sent += 1
        else:
            last_error = redact_text("; ".join(errors))[:2000]
            self.report.errors.extend(f"{c.watcher} #{c.id} {e}" for e in errors)
            if attempts >= self.settings.max_attempts:
                values = {"state": "failed", "next_attempt": None, "last_error": last_error}
                self.report.failed += 1
                log.warning("alert %s to %s failed for good after %s attempts: %s", c.id, c.watcher, attempts,
                            last_error)
            else:
                values = {"state": "pending", "next_attempt": now + backoff(attempts, self.settings),
                          "last_error": last_error}
                self.report.retrying += 1
                log.info("alert %s to %s failed (attempt %s), will retry: %s",
                         c.id, c.watcher, attempts, last_error)
        session.connection().execute(
            update(DELIVERIES).where(DELIVERIES.c.id == c.id).values(attempts=attempts, claimed=None, **values)
        )

    def attempt(self, session: Session, delivery_id: int, channel: str, result: SendResult) -> None:
        session.connection().execute(insert(ATTEMPTS).values(
            delivery_id=delivery_id, at=self.now(), channel=channel, ok=result.ok, outcome=result.outcome,
            error=redact_text(result.error) if result.error else result.error,
        ))

    # -- immediate ----------------------------------------------------------------------------------------

    def immediate(self) -> None:
        """Send due immediate deliveries in id order, claiming each one just before it is sent.

        One claim per delivery (not per batch) keeps a crash's damage to the one message in flight: the rest
        are still `pending`, and a sender started right after the crash sends them at once.
        """
        names = list(self.watchers)
        after = 0  # an id cursor: each delivery is tried at most once per run, even a forced one that fails
        while names and not self.out_of_time():
            with self.db.read() as session:
                rows = session.execute(
                    select(Delivery.id, Delivery.attempts)
                    .where(Delivery.id > after, Delivery.digest.is_(False), Delivery.watcher.in_(names))
                    .where(self._due(self.now()))
                    .order_by(Delivery.id)
                    .limit(CLAIM_BATCH)
                )
                seen = {delivery_id: attempts for delivery_id, attempts in rows}
                alerts = load_alerts(session, seen)
            if not seen:
                return
            after = max(seen)
            done = self.done_channels(list(seen))
            for delivery_id, attempts in seen.items():
                if self.out_of_time():
                    return
                with self.db.write() as session:
                    claimed = self.claim(session, [delivery_id])
                if not claimed:  # another sender took it meanwhile
                    continue
                if claimed[0].attempts != attempts:  # another sender tried it since: read its channels again
                    done = {**done, **self.done_channels([delivery_id])}
                self.one(claimed[0], alerts.get(delivery_id), done.get(delivery_id, {}))

    def one(self, c: _Claimed, alert: Alert | None, done: dict[str, str]) -> None:
        """Send one delivery to each of its watcher's channels that has not had it yet."""
        w = self.watchers[c.watcher]
        todo = [ch for ch in self.channels(w) if ch.name not in done]
        errors: list[str] = []
        uncertain = [f"{ch.name}: uncertain before (not re-sent)" for ch in self.channels(w)
                     if done.get(ch.name) == "uncertain"]
        if alert is None:
            with self.db.write() as session:
                self.settle(session, c, ["nothing to send: the alerted item is gone"])
            return
        messages: dict[Format, Message | Exception] = {}
        for i, ch in enumerate(todo):
            if ch.format not in messages:
                try:
                    messages[ch.format] = self.renderer(w).alert(alert, ch.format)
                except Exception as exc:  # a broken user template: recorded, retried, never silent
                    messages[ch.format] = exc
            message = messages[ch.format]
            if isinstance(message, Exception):
                error = f"cannot render the message: {type(message).__name__}: {message}"
                result = SendResult(False, error, 0.0)
            else:
                result = self.send(ch, message)
            if result.ok:
                self.report.messages += 1
            elif result.uncertain:
                uncertain.append(f"{ch.name}: {result.error}")
            else:
                errors.append(f"{ch.name}: {result.error}")
            with self.db.write() as session:
                self.attempt(session, c.id, ch.name, result)
                if i == len(todo) - 1:
                    self.settle(session, c, errors, uncertain)
        if not todo:  # every channel had it already (a crash came between the last send and this)
            with self.db.write() as session:
                self.settle(session, c, [], uncertain)

    # -- digests ------------------------------------------------------------------------------------------

    def digests(self) -> None:
        for w in self.watchers.values():
            if w.mode == "digest":
                if self.out_of_time():
                    return
                self.digest(w)

    def digest(self, w: WatcherConfig) -> None:
        now = self.now()
        with self.db.write() as session:
            waiting = session.execute(
                select(Delivery.id, Delivery.created)
                .where(Delivery.watcher == w.name, Delivery.digest.is_(True))
                .where(Delivery.state.in_(self._states()))
                .order_by(Delivery.id)
                .with_for_update(skip_locked=True)
            ).all()
            if not waiting:
                return
            last_sent = session.scalar(
                select(func.max(Delivery.sent_at)).where(
                    Delivery.watcher == w.name, Delivery.digest.is_(True), Delivery.state == "sent"
                )
            )
            last = as_utc(last_sent) if last_sent is not None else None
            oldest = min(as_utc(r.created) for r in waiting)
            if not self.force and not digest_due(w, last_sent=last, oldest_waiting=oldest, now=now):
                return
            claimed = self.claim(session, [r.id for r in waiting])
        if not claimed:
            return
        with self.db.read() as session:
            alerts = load_alerts(session, [c.id for c in claimed])
        done = self.done_channels([c.id for c in claimed])
        errors: dict[int, list[str]] = {c.id: [] for c in claimed}
        uncertain: dict[int, list[str]] = {
            c.id: [f"{ch}: uncertain before (not re-sent)" for ch, o in done.get(c.id, {}).items() if o == "uncertain"]
            for c in claimed
        }
        for ch in self.channels(w):
            subset = [c for c in claimed if ch.name not in done.get(c.id, {}) and c.id in alerts]
            if not subset:
                continue
            stories = [a for c in subset if isinstance(a := alerts[c.id], StoryAlert)]
            try:
                message = self.renderer(w).digest(stories, ch.format, since=last)
                result = self.send(ch, message)
            except Exception as exc:  # a broken user template
                result = SendResult(False, f"cannot render the digest: {type(exc).__name__}: {exc}", 0.0)
            if result.ok:
                self.report.messages += 1
            with self.db.write() as session:
                for c in subset:
                    self.attempt(session, c.id, ch.name, result)
                    if result.uncertain:
                        uncertain[c.id].append(f"{ch.name}: {result.error}")
                    elif not result.ok:
                        errors[c.id].append(f"{ch.name}: {result.error}")
        with self.db.write() as session:
            for c in claimed:
                problems = errors[c.id] if c.id in alerts else ["nothing to send: the alerted item is gone"]
                self.settle(session, c, problems, uncertain[c.id])


def _due_count(db: Database, watchers: Sequence[WatcherConfig], now: datetime) -> int:
    """Immediate deliveries due now and not sent: what a run out of time leaves for the next one."""
    with db.read() as session:
        return int(session.scalar(
            select(func.count(Delivery.id)).where(
                Delivery.digest.is_(False), Delivery.state == "pending",
                Delivery.watcher.in_([w.name for w in watchers]),
                (Delivery.next_attempt.is_(None)) | (Delivery.next_attempt <= now),
            )
        ) or 0)


def _orphaned_count(db: Database, watchers: Sequence[WatcherConfig]) -> int:
    """Deliveries not sent whose watcher is no longer configured (see the module docstring)."""
    with db.read() as session:
        return int(session.scalar(
            select(func.count(Delivery.id)).where(orphaned(Delivery.watcher, Delivery.state, watchers))
        ) or 0)


def orphaned(watcher: ColumnElement[str] | Any, state: ColumnElement[str] | Any,
             watchers: Sequence[WatcherConfig]) -> ColumnElement[bool]:
    """SQL: a delivery is orphaned (not sent, and its watcher is not among ``watchers``)."""
    names = [w.name for w in watchers]
    gone: ColumnElement[bool] = watcher.not_in(names) if names else true()
    return and_(state != "sent", gone)


def shown_state(watcher: ColumnElement[str] | Any, state: ColumnElement[str] | Any,
                watchers: Sequence[WatcherConfig]) -> ColumnElement[str]:
    """SQL: the state a delivery is shown in: its stored state, or ``orphaned``."""
    return case((orphaned(watcher, state, watchers), literal("orphaned")), else_=state)


def deliver(
    db: Database,
    watchers: Sequence[WatcherConfig],
    now: datetime | None = None,
    templates: str | Path | None = None,
    *,
    settings: AlertSettings | None = None,
    budget: float | None = None,
    force: bool = False,
    labels: Labels | None = None,
    resend_uncertain: bool = False,
) -> DeliveryReport:
    """Send every due delivery; returns what happened.

    ``budget``: seconds this call may take (checked between deliveries: a send starts only while a whole
    ``send_timeout`` fits in what is left, the first one always; a delivery's channels are sent together), so a
    crawl is never held up long — what is left stays pending for the next call. ``force``
    (``alerts send``): also retry ``failed`` deliveries, ignore backoff waits and close digest windows now.
    ``labels``: topic and source names from the config in force (default: the shipped topics' labels).
    ``resend_uncertain`` (``alerts send --resend-uncertain``, implies ``force``): also send ``uncertain`` ones
    again, to the channels that may not have them.
    """
    run = _Run(db, watchers, now, templates, settings or AlertSettings.model_validate({}), budget,
               force or resend_uncertain, labels=labels, resend_uncertain=resend_uncertain)
    # A live sender's row must never look stale: allow at least twice its longest possible send.
    longest = max((len(w.notify) for w in watchers), default=1) * run.settings.send_timeout
    stale = max(run.settings.stale_sending, timedelta(seconds=2 * longest))
    run.report.recovered = recover_stale(db, run.now(), stale)
    run.report.orphaned = _orphaned_count(db, watchers)
    run.immediate()
    run.digests()
    if run.out_of_time():
        run.report.deferred = _due_count(db, watchers, run.now())
    run.report.elapsed = time.monotonic() - run.started
    return run.report
