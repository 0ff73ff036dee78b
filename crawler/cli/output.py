"""How listings are written: one JSON object a line, CSV, or a table — for ``items``, ``status`` and ``alerts``.

Rows are dicts. JSON and CSV stream (an export of the whole store never sits in memory at once); a table needs
its rows to size its columns, and is bounded by the caller (``items`` shows 50 rows unless told otherwise).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TextIO

from pipelines.timeutil import as_utc

Format = Literal["table", "json", "csv"]

# Without a terminal (a pipe, a test), a table assumes this width.
DEFAULT_WIDTH = 160


@dataclass(frozen=True)
class Column:
    """A table column: the row key it shows, its heading, and how it is laid out."""

    key: str
    heading: str = ""  # default: the key in capitals
    right: bool = False  # numbers: aligned right
    max: int | None = None  # cut to this width with "…"
    min: int | None = None  # with ``fit``: the width it may shrink to for the last column (None: it keeps its own)

    @property
    def title(self) -> str:
        return self.heading or self.key.upper()


def json_default(value: Any) -> Any:
    """``json.dumps``' fallback: datetimes as ISO 8601 in UTC."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    raise TypeError(type(value).__name__)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=json_default)


def cell(value: Any, csv_mode: bool = False) -> str:
    """One value as text: in a table (dates to the minute, lists with ",") or CSV (ISO dates, lists with ";")."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        v = as_utc(value)
        return v.isoformat() if csv_mode else v.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | tuple):
        if any(isinstance(v, dict | list | tuple) for v in value):
            # Structured cells (a story's copies) as JSON, which every tool reads, never a Python repr.
            return to_json(value)
        return (";" if csv_mode else ",").join(str(v) for v in value)
    if isinstance(value, dict):
        return to_json(value)
    return str(value)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def table(columns: Sequence[Column], rows: Sequence[dict[str, Any]], *, fit: int | None = None) -> Iterator[str]:
    """The heading line, then one line per row (nothing else: the caller says what an empty table means).

    Each column is as wide as its widest cell (up to its ``max``). With ``fit`` (a terminal width), the last
    column takes what the others leave of it, at least its ``min``: the widest other columns that have a
    ``min`` give way first, down to it.
    """
    cells = [[" ".join(cell(r.get(c.key)).split()) for c in columns] for r in rows]
    widths = [max(len(c.title), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    widths = [min(w, c.max) if c.max is not None else w for w, c in zip(widths, columns, strict=True)]
    if fit is not None and columns:
        *others, last = columns
        floor = last.min or 0
        while sum(w + 2 for w in widths[:-1]) + floor > fit:
            shrinkable = [i for i, c in enumerate(others) if c.min is not None and widths[i] > c.min]
            if not shrinkable:
                break
            widths[max(shrinkable, key=lambda i: widths[i])] -= 1
        room = fit - sum(w + 2 for w in widths[:-1])
        natural = max(len(last.title), *(len(row[-1]) for row in cells))
        widths[-1] = max(floor, min(natural, room))

    def line(values: Sequence[str]) -> str:
        parts = [(_cut(v, w).rjust(w) if c.right else _cut(v, w).ljust(w))
                 for v, w, c in zip(values, widths, columns, strict=True)]
        return "  ".join(parts).rstrip()

    yield line([c.title for c in columns])
    for row in cells:
        yield line(row)


def terminal_width() -> int:
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


def write_rows(rows: Iterable[dict[str, Any]], fmt: Format, columns: Sequence[Column], out: TextIO, *,
               empty: str, fit: bool = False) -> int:
    """Write ``rows`` as ``fmt`` (json and csv as they come); returns how many were written.

    CSV has every key of the first row as its columns; a table shows ``columns`` (``fit``: the last one takes
    the terminal's remaining width) or the line ``empty`` when there is no row.
    """
    count = 0
    if fmt == "json":
        for row in rows:
            out.write(to_json(row) + "\n")
            count += 1
        return count
    if fmt == "csv":
        writer: csv.DictWriter[str] | None = None
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row.keys()), extrasaction="ignore")
                writer.writeheader()
            writer.writerow({k: cell(v, csv_mode=True) for k, v in row.items()})
            count += 1
        return count
    listed = list(rows)
    if not listed:
        out.write(empty + "\n")
        return 0
    for text in table(columns, listed, fit=terminal_width() if fit else None):
        out.write(text + "\n")
    return len(listed)
