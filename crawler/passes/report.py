"""One pass, as everyone reads it: the summary line, the JSON record and the ``Pass`` row's values.

``borderwatch crawl`` prints each pass's ``line()`` and, with ``--report-json PATH``, writes its reports as
JSON (``write_reports``); the daemon reads that file (``read_reports``) to learn how its child's pass ended
(a locked source above all), never its prose. The daemon logs the same ``line()`` and ``fields()``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.models import Pass
from pipelines.tally import Count, Tally

# What the JSON report file says about itself; a reader refuses another format.
FORMAT = "borderwatch.passes/1"
# A pass ends as one of these (``running`` is a row's state while it runs, never a report's).
STATUSES = ("ok", "failed", "blocked", "locked", "crashed", "timeout", "stopped")
# What the daemon says of a locked source: its scheduled pass comes round again.
RETRIED_AT_NEXT_RUN = "retried at its next run"

# The details a summary line shows after new / updated / unchanged, in this order, when not zero: the count's
# key, then its label for one and for more than one.
_DETAILS = (
    ("known", "known skipped", "known skipped"), ("duplicate", "duplicate", "duplicates"),
    ("old", "older than since", "older than since"), ("retried", "retried", "retried"),
    ("waiting", "waiting to be retried", "waiting to be retried"), ("given_up", "given up", "given up"),
    ("blocked", "blocked", "blocked"), ("failed", "failed", "failed"),
    ("too_complex", "too complex to extract (given up)", "too complex to extract (given up)"),
    ("too_large", "too large", "too large"), ("robots", "disallowed by robots.txt", "disallowed by robots.txt"),
    ("no_text", "without text", "without text"),
    ("refused", "refused (not http(s), or a non-public address)", "refused (not http(s), or a non-public address)"),
    ("no_link", "entry without link", "entries without link"),
    ("unsaved", "not saved (database error)", "not saved (database error)"),
    ("unmatched", "matched no topic (not kept)", "matched no topic (not kept)"),
    ("from_feed", "stored from the feed", "stored from the feed"),
    ("excluded", "excluded by pattern", "excluded by pattern"),
)
# Why pages failed, where the reason is counted: shown after the failed count, "2 failed (1 unreadable API
# record)". Each of these is also counted as failed.
_FAILED_BECAUSE = (("bad_record", "unreadable API record", "unreadable API records"),)


def counted(n: int, one: str, more: str) -> str:
    """``1 duplicate``, ``2 duplicates``."""
    return f"{n} {one if n == 1 else more}"


@dataclass
class PassReport:
    source: str
    status: str  # one of STATUSES
    pass_id: int | None = None
    tally: Tally = field(default_factory=Tally)
    error: str | None = None
    seconds: float = 0.0
    requests: int = 0
    responses: int = 0
    bytes: int = 0
    retries: int = 0
    max_pages_reached: bool = False  # the walk stopped at the source's page limit

    # -- the Pass row's sums ------------------------------------------------------------------------------
    @property
    def new(self) -> int:
        return self.tally.new

    @property
    def updated(self) -> int:
        return self.tally.updated

    def stats(self) -> dict[str, Any]:
        """``Pass.stats``: every count by name, then what the fetching cost."""
        out: dict[str, Any] = {**self.tally.as_dict(), "requests": self.requests, "responses": self.responses,
                               "bytes": self.bytes, "retries": self.retries, "seconds": round(self.seconds, 2)}
        if self.max_pages_reached:
            out["max_pages_reached"] = 1
        return out

    def apply_to(self, row: Pass) -> None:
        """Write this report's ending and counts onto its ``Pass`` row (the ledger calls this)."""
        t = self.tally
        row.status, row.error = self.status, self.error
        row.new, row.updated, row.unchanged = t.new, t.updated, t.unchanged
        row.skipped, row.failed, row.blocked = t.skipped, t.failed, t.blocked
        row.fetched = self.responses
        row.stats = self.stats()

    @classmethod
    def from_row(cls, row: Pass, seconds: float | None = None) -> PassReport:
        """A pass as its row tells it. A row written without counts in its stats (settled by the daemon, or
        older) gives what its columns hold."""
        stats = row.stats or {}
        tally = Tally.from_stats(stats)
        if not tally.as_dict():
            tally = Tally({Count.NEW: row.new or 0, Count.UPDATED: row.updated or 0,
                           Count.UNCHANGED: row.unchanged or 0, Count.FAILED: row.failed or 0,
                           Count.BLOCKED: row.blocked or 0})
        return cls(
            source=row.source, status=row.status, pass_id=row.id, tally=tally, error=row.error,
            seconds=float(stats.get("seconds", 0.0)) if seconds is None else seconds,
            requests=_int(stats.get("requests")), responses=row.fetched or 0, bytes=_int(stats.get("bytes")),
            retries=_int(stats.get("retries")), max_pages_reached=bool(stats.get("max_pages_reached")),
        )

    # -- what people read ---------------------------------------------------------------------------------
    def line(self, *, locked_note: str = RETRIED_AT_NEXT_RUN) -> str:
        """``doj-api: ok: 12 new, 3 updated, 40 unchanged, 55 responses in 4.2s`` (then the details that are not
        zero, before the responses, and the error, if any). A locked source: ``feed: locked — being crawled by
        HOST:PID`` and ``locked_note``."""
        tail = f" — {self.error}" if self.error else ""
        if self.status == "locked":
            note = f"; {locked_note}" if locked_note else ""
            return f"{self.source}: locked{tail}{note}"
        t = self.tally
        parts = [f"{t.new} new", f"{t.updated} updated", f"{t.unchanged} unchanged"]
        for key, one, more in _DETAILS:
            if not t[key]:
                continue
            part = counted(t[key], one, more)
            if key == "failed":
                reasons = [counted(t[why], *labels) for why, *labels in _FAILED_BECAUSE if t[why]]
                part += f" ({', '.join(reasons)})" if reasons else ""
            parts.append(part)
        counts = ", ".join(parts)
        return f"{self.source}: {self.status}: {counts}, {self.responses} responses in {self.seconds:.1f}s{tail}"

    def fields(self) -> dict[str, Any]:
        """The pass as fields of a JSON log line (``crawler.daemon.logs``)."""
        t = self.tally
        out: dict[str, Any] = {
            "source": self.source, "status": self.status, "pass_id": self.pass_id, "new": t.new,
            "updated": t.updated, "unchanged": t.unchanged, "skipped": t.skipped, "failed": t.failed,
            "blocked": t.blocked, "fetched": self.responses, "seconds": round(self.seconds, 2), "error": self.error,
        }
        return {k: v for k, v in out.items() if v is not None}

    # -- the JSON record ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "status": self.status, "pass_id": self.pass_id, "counts": self.tally.as_dict(),
            "error": self.error, "seconds": round(self.seconds, 2), "requests": self.requests,
            "responses": self.responses, "bytes": self.bytes, "retries": self.retries,
            "max_pages_reached": self.max_pages_reached,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PassReport:
        """Raises ``ValueError`` naming what is wrong with a record that is not a pass report."""
        source, status = data.get("source"), data.get("status")
        if not isinstance(source, str) or not source:
            raise ValueError("a pass report without a source")
        if status not in STATUSES:
            raise ValueError(f"{source}: not a pass status: {status!r}")
        counts = data.get("counts") or {}
        if not isinstance(counts, dict):
            raise ValueError(f"{source}: counts is not an object")
        pass_id, error = data.get("pass_id"), data.get("error")
        return cls(
            source=source, status=str(status), pass_id=pass_id if isinstance(pass_id, int) else None,
            tally=Tally.from_stats(counts), error=error if isinstance(error, str) else None,
            seconds=float(data.get("seconds") or 0.0), requests=_int(data.get("requests")),
            responses=_int(data.get("responses")), bytes=_int(data.get("bytes")), retries=_int(data.get("retries")),
            max_pages_reached=bool(data.get("max_pages_reached")),
        )


def write_reports(path: str | os.PathLike[str], reports: Sequence[PassReport]) -> None:
    """Write the reports to ``path`` whole or not at all (a reader never sees half a file)."""
    target = Path(path)
    body = json.dumps({"format": FORMAT, "passes": [r.to_json() for r in reports]}, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body + "\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_reports(path: str | os.PathLike[str]) -> list[PassReport]:
    """The reports a ``crawl --report-json`` wrote; [] when there is no file (the child ended before it
    wrote one). Raises ``ValueError`` for a file that is not a report."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    if not text.strip():
        return []
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("passes"), list):
        raise ValueError(f"{path}: not a pass report file ({FORMAT})")
    return [PassReport.from_json(p) for p in data["passes"] if isinstance(p, dict)]


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
