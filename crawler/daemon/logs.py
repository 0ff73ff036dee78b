"""Logs of the daemon: lines a person reads, or one JSON object per line for a log collector.

Structured fields travel in ``extra={"fields": {...}}``: a text line shows only the message (which already
says what matters), a JSON line carries the fields as keys next to ``time``, ``level``, ``logger`` and
``message``.

Every handler installed here (and the CLI's) carries :class:`RedactingFilter`: a record at any level, from
any logger (ours, Scrapy's, apprise's, urllib3's), has its credentials hidden before it is written.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

from pipelines.redact import redact_text

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingFilter(logging.Filter):
    """Hides credentials (``pipelines.redact``) in a record's message, fields, traceback and stack."""

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not fit its format: shown as logging shows it
            message = str(record.msg)
        clean = redact_text(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        values = getattr(record, "fields", None)
        if isinstance(values, dict):
            record.fields = {k: redact_text(v) if isinstance(v, str) else v for k, v in values.items()}
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Put a :class:`RedactingFilter` on every handler of ``logger`` (the root by default) that lacks one;
    an uncaught exception's traceback is printed redacted too."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _redacted_excepthook


def _redacted_excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    sys.stderr.write(redact_text("".join(traceback.format_exception(exc_type, exc, tb))))


def setup_logging(fmt: str, level: str, stream: TextIO | None = None) -> None:
    """Replace the root handlers: ``fmt`` is ``text`` or ``json``; everything goes to stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    install_redaction(root)
    root.setLevel(level)
    # APScheduler logs every job start at INFO and every skipped overlap at WARNING; the daemon logs what
    # matters itself (one line per pass), so its chatter is shown only with -vv.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if level == "DEBUG" else logging.ERROR)
    # Migrations at start and apprise's "Notifying 1 service(s)" say nothing the daemon's lines do not.
    for name in ("alembic", "apprise"):
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


def fields(**values: Any) -> dict[str, Any]:
    """``log.info(msg, extra=fields(source=..., status=...))``."""
    return {"fields": values}
