"""``borderwatch sources``: every configured source (enabled or not) with its publisher, kind, language,
last pass and health. Read-only: the configuration, and what passes recorded in the store."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from crawler.config import Config
from crawler.daemon.health import human
from crawler.read.status import gather
from pipelines.db import Database
from pipelines.models import Item
from pipelines.timeutil import as_utc

COLUMNS = ["name", "publisher", "kind", "lang", "enabled", "last_pass", "health"]


def _seen(db: Database) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    """Per source: the languages and the publisher names (site names) of its stored items."""
    languages: dict[str, Counter[str]] = defaultdict(Counter)
    names: dict[str, Counter[str]] = defaultdict(Counter)
    with db.read() as s:
        for source, language, n in s.execute(
            select(Item.source, Item.language, func.count()).group_by(Item.source, Item.language)
        ):
            if language:
                languages[source][language] += n
        for source, site_name, n in s.execute(
            select(Item.source, Item.site_name, func.count()).group_by(Item.source, Item.site_name)
        ):
            if site_name:
                names[source][site_name] += n
    return languages, names


def source_rows(db: Database, config: Config, now: datetime) -> list[dict[str, Any]]:
    """One row per configured source, in the config's order."""
    report = gather(db, config, now)
    status = {s.name: s for s in report.sources}
    languages, names = _seen(db)
    rows = []
    for src in config.sources:
        st = status.get(src.name)
        p = st.last_pass if st else None
        seen = [lang for lang, _ in languages[src.name].most_common()]
        # A publisher the config names (a catalogue entry's `publisher`, the `label`), else the site's own.
        configured = getattr(src, "publisher", None) or src.label
        publisher = configured or (names[src.name].most_common(1)[0][0] if names[src.name] else None)
        rows.append({
            "name": src.name,
            "publisher": publisher,
            "kind": src.kind,
            "url": src.url,
            "language": src.language,  # the configured hint
            "languages_seen": seen,  # of its stored items, most frequent first
            "lang": src.language or (",".join(seen) if seen else None),
            "enabled": src.enabled,
            "every": src.every.total_seconds(),
            "last_pass": None if p is None else {
                "id": p.id, "started": as_utc(p.started).isoformat(),
                "finished": as_utc(p.finished).isoformat() if p.finished else None, "status": p.status,
                "new": p.new, "updated": p.updated, "failed": p.failed, "blocked": p.blocked, "error": p.error,
            },
            "health": st.health if st else "ok",
            "health_since": as_utc(st.health_since).isoformat() if st and st.health_since else None,
            "items": st.items if st else 0,
            "note": getattr(src, "note", None),  # why a catalogue entry ships disabled, and the like
        })
    return rows


def render_rows(rows: list[dict[str, Any]], now: datetime) -> Iterator[str]:
    """The table: one line per source, then the last error of each source whose last pass did not succeed."""
    if not rows:
        yield "(no sources configured)"
        return
    head = ["SOURCE", "PUBLISHER", "KIND", "LANG", "ENABLED", "LAST PASS", "HEALTH", "ITEMS"]
    cells = []
    for r in rows:
        p = r["last_pass"]
        if p is None:
            last = "never"
        else:
            at = datetime.fromisoformat(p["finished"] or p["started"])
            last = f"{p['status']} {human(now - at)} ago"
        cells.append([r["name"], _cut(r["publisher"] or "-", 32), r["kind"],
                      r["lang"] or "-", "yes" if r["enabled"] else "no", last, r["health"], str(r["items"])])
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    yield "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()
    for c in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip()
    for r in rows:
        p = r["last_pass"]
        if p is not None and p["status"] != "ok" and p["error"]:
            yield f"  {r['name']}: {p['error']}"
        elif not r["enabled"] and r.get("note"):
            yield f"  {r['name']}: {r['note']}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
