"""``borderwatch alerts …``: the outbox on the command line (list, send, test).

The main command registers ``alerts`` and passes an object with ``.config`` (``.watchers``, and optionally
``.alerts`` settings) and ``.db`` as ``ctx.obj``; tests build an ``AlertsApp`` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import click
from sqlalchemy import select

from alerts.channels import Sender, channels_of
from alerts.config import AlertSettings, WatcherConfig
from alerts.dispatch import dispatch, kind_of, shown_state
from alerts.render import Renderer, shorten
from alerts.views import Labels
from crawler.cli.output import Column, table, to_json
from pipelines.db import Database
from pipelines.models import AlertEvent, Delivery, Item
from pipelines.timeutil import as_utc

# Stored states, and `orphaned`: not sent, and its watcher is no longer configured (alerts.deliver).
STATES = ("pending", "sending", "sent", "failed", "uncertain", "orphaned")
ERRORS_SHOWN = 20  # `alerts send` lists at most this many failures on stderr, then a count
LIST_COLUMNS = [
    Column("id", "ID", right=True), Column("state"), Column("watcher"), Column("kind"),
    Column("attempts", "TRIES", right=True), Column("when"), Column("title"),
]


class WatchersConfig(Protocol):
    @property
    def watchers(self) -> Sequence[WatcherConfig]: ...


class AlertsContext(Protocol):
    """What the ``alerts`` commands need from ``ctx.obj``."""

    @property
    def config(self) -> WatchersConfig: ...

    @property
    def db(self) -> Database: ...


@dataclass
class AlertsApp:
    """A ready-made ``AlertsContext`` (tests, scripts)."""

    config: WatchersConfig
    db: Database


def settings_of(config: WatchersConfig) -> AlertSettings:
    """The ``alerts:`` settings of a configuration that has them, else the defaults."""
    found = getattr(config, "alerts", None)
    return found if isinstance(found, AlertSettings) else AlertSettings.model_validate({})


def labels_of(obj: object) -> Labels | None:
    """The topic and source labels of the main command's object (``.labels``), else None: the shipped ones."""
    found = getattr(obj, "labels", None)
    return found if isinstance(found, Labels) else None


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


@click.group("alerts")
def alerts() -> None:
    """The alert outbox: what was sent to whom, what waits, what failed."""


@alerts.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only deliveries in this state.")
@click.option("--watcher", help="Only this watcher's deliveries.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Newest N.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="`json`: one JSON object per line.")
@click.pass_obj
def list_(obj: AlertsContext, state: str | None, watcher: str | None, limit: int, fmt: str) -> None:
    """The alert outbox, newest first."""
    shown = shown_state(Delivery.watcher, Delivery.state, obj.config.watchers)
    query = (
        select(Delivery, shown, AlertEvent.source, AlertEvent.payload, Item.title, Item.url, Item.source,
               Item.story_id)
        .join(AlertEvent, AlertEvent.id == Delivery.event_id)
        .outerjoin(Item, Item.id == AlertEvent.item_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    if state:
        query = query.where(shown == state)
    if watcher:
        query = query.where(Delivery.watcher == watcher)
    with obj.db.read() as session:
        rows = session.execute(query).all()
    records: list[dict[str, Any]] = []
    for d, state_shown, event_source, payload, title, url, item_source, story in rows:
        kind = kind_of(d.dedup_key)
        if kind in ("health", "recovery"):
            title = f"{event_source}: {(payload or {}).get('message', kind)}"
        records.append({
            "id": d.id, "watcher": d.watcher, "kind": kind, "state": state_shown, "stored_state": d.state,
            "digest": d.digest,
            "attempts": d.attempts, "created": _iso(d.created), "next_attempt": _iso(d.next_attempt),
            "sent_at": _iso(d.sent_at), "last_error": d.last_error, "title": title or "",
            "url": url, "source": item_source or event_source, "story": story, "key": d.dedup_key,
        })
    if fmt == "json":
        for record in records:
            click.echo(to_json(record))
        return
    if not records:
        click.echo("no alerts" + (f" in state {state}" if state else ""))
        return
    shown_rows = [{
        **r,
        "state": r["state"] + ("*" if r["digest"] and r["state"] == "pending" else ""),
        "watcher": shorten(r["watcher"], 16),
        "when": (r["sent_at"] or r["next_attempt"] or r["created"] or "")[:16].replace("T", " "),
        "title": shorten(r["title"], 70),
    } for r in records]
    head, *lines = table(LIST_COLUMNS, shown_rows)
    click.echo(head)
    under = " " * head.index("STATE")  # a row's note starts under its state
    for r, line in zip(records, lines, strict=True):
        click.echo(line)
        if r["state"] == "orphaned":
            click.echo(f"{under}└ watcher {r['watcher']!r} is no longer configured (was {r['stored_state']})")
        elif r["state"] != "sent" and r["last_error"]:
            click.echo(f"{under}└ {shorten(r['last_error'], 120)}")
    if any(r["digest"] and r["state"] == "pending" for r in records):
        click.echo("* waiting for its digest window")
    click.echo("WHEN: sent at, else next try, else created (UTC)")


@alerts.command("send")
@click.option("--budget", type=click.FloatRange(min=1), help="Stop after this many seconds (the rest waits).")
@click.option("--resend-uncertain", is_flag=True,
              help="Also send `uncertain` alerts again (their channel may already have them: a possible repeat).")
@click.pass_obj
def send(obj: AlertsContext, budget: float | None, resend_uncertain: bool) -> None:
    """Deliver every pending and failed alert now (digests too), and say how it went.

    Exit 0: every alert tried went through (or there was nothing to send); 1: at least one failed, is waiting
    for a retry, or is uncertain (no answer after it went out); 2: bad usage or configuration.
    """
    settings = settings_of(obj.config)
    report = dispatch(obj.db, list(obj.config.watchers), settings=settings, budget=budget, force=True,
                      labels=labels_of(obj), resend_uncertain=resend_uncertain)
    click.echo(report.summary())
    for error in report.errors[:ERRORS_SHOWN]:
        click.echo(f"failed: {error}", err=True)
    if len(report.errors) > ERRORS_SHOWN:
        click.echo(f"… and {len(report.errors) - ERRORS_SHOWN} more failures", err=True)
    for doubt in report.doubts[:ERRORS_SHOWN]:
        click.echo(f"uncertain: {doubt}", err=True)
    if len(report.doubts) > ERRORS_SHOWN:
        click.echo(f"… and {len(report.doubts) - ERRORS_SHOWN} more uncertain", err=True)
    if report.failed or report.retrying or report.uncertain:
        raise SystemExit(1)


@alerts.command("test")
@click.argument("watcher")
@click.pass_obj
def test(obj: AlertsContext, watcher: str) -> None:
    """Send a test message through each of WATCHER's channels and say which worked."""
    watchers = {w.name: w for w in obj.config.watchers}
    w = watchers.get(watcher)
    if w is None:
        known = ", ".join(sorted(watchers)) or "none configured"
        click.echo(f"unknown watcher {watcher!r} (known: {known})", err=True)
        raise SystemExit(2)
    settings = settings_of(obj.config)
    renderer = Renderer(settings.templates, timezone=w.timezone, follow=w.topics, labels=labels_of(obj),
                        query=w.query_label())
    sender = Sender(settings.send_timeout)
    failed = 0
    for channel in channels_of(w):
        result = sender.send(channel, renderer.test(w.name, channel.format))
        if result.ok:
            click.echo(f"ok      {channel.name}")
        elif result.uncertain:
            failed += 1
            click.echo(f"UNSURE  {channel.name}: {result.error}")
        else:
            failed += 1
            click.echo(f"FAILED  {channel.name}: {result.error}")
    if failed:
        raise SystemExit(1)
