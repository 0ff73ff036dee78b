"""The dispatcher: the outbox's events become deliveries (``plan``) and due deliveries are sent (``deliver``).

``dispatch`` does both; it is what a crawl pass and the daemon call. Guarantees (see ``alerts.deliver``):
each watcher is told once per (story, kind) — ``new:story:<id>``, ``update:item:<id>:rev:<id>`` — and a
delivery is at-least-once: nothing is lost while a channel is down (retries with backoff survive restarts,
then ``failed`` is kept and shown), and only a message in flight when a sender was killed can be repeated. A
send that timed out after it went out is ``uncertain``: shown, never repeated blindly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from alerts.config import AlertSettings, WatcherConfig
from alerts.deliver import DeliveryReport, backoff, deliver, orphaned, recover_stale, shown_state
from alerts.plan import kind_of, plan
from alerts.views import Labels
from pipelines.db import Database
from pipelines.timeutil import as_utc, utcnow

__all__ = ["DeliveryReport", "backoff", "deliver", "dispatch", "kind_of", "orphaned", "plan", "recover_stale",
           "shown_state"]


def dispatch(
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
    """``plan`` then ``deliver``: what ``borderwatch crawl`` runs after a pass (with a ``budget``)."""
    now = as_utc(now) if now is not None else None
    planned = plan(db, watchers, now if now is not None else utcnow())
    report = deliver(db, watchers, now, templates, settings=settings, budget=budget, force=force, labels=labels,
                     resend_uncertain=resend_uncertain)
    report.planned = planned
    return report
