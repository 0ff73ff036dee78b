"""The ``borderwatch`` command line: thin commands over the crawler, the store and the alerts."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from datetime import datetime
from functools import cached_property
from typing import Any, NoReturn

import click

from crawler.config import Config, ConfigError, load_config
from crawler.logs import install_redaction
from pipelines.db import Database, DatabaseError
from pipelines.timeutil import as_utc, parse_when

log = logging.getLogger("borderwatch")


class App:
    """What every command shares: the config file (loaded on first use) and the database."""

    def __init__(self, config_path: str | None, verbose: int) -> None:
        self.config_path = config_path
        self.verbose = verbose

    @cached_property
    def config(self) -> Config:
        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            usage_error(str(exc))

    @cached_property
    def db(self) -> Database:
        try:
            return Database(self.config.database)
        except DatabaseError as exc:
            fail(str(exc))

    @cached_property
    def classifier(self) -> Any:
        from pipelines.classify import Classifier, TopicsError

        try:
            return Classifier.from_file(self.config.topics)
        except TopicsError as exc:
            usage_error(str(exc))

    def check_topics(self) -> None:
        """Watchers may only follow topics that exist (a config error, exit 2)."""
        if not any(w.topics for w in self.config.watchers):
            return
        known = set(self.classifier.topic_ids)
        for i, w in enumerate(self.config.watchers):
            for t in w.topics:
                if t not in known:
                    usage_error(
                        f"{self.config_path or 'config'}: watchers[{i}].topics: unknown topic {t!r} "
                        f"(defined: {', '.join(sorted(known))})"
                    )


def usage_error(message: str) -> NoReturn:
    click.echo(f"borderwatch: {message}", err=True)
    sys.exit(2)


def fail(message: str) -> NoReturn:
    click.echo(f"borderwatch: {message}", err=True)
    sys.exit(1)


def _level(verbose: int) -> str:
    return {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="FILE", envvar="BORDERWATCH_CONFIG",
              help="Config file (default: $BORDERWATCH_CONFIG, else config/borderwatch.yaml).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="borderwatch")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """borderwatch: watch press offices and news for transnational organized crime."""
    logging.basicConfig(level=_level(verbose), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The level on the handler too: libraries (Scrapy) set their own loggers to DEBUG, and their
    # records reach the root handler whatever the root logger's level.
    for handler in logging.getLogger().handlers:
        handler.setLevel(_level(verbose))
    install_redaction()  # credentials hidden in every log record, whoever logs it
    ctx.obj = App(config_path, verbose)


@main.command()
@click.argument("sources", nargs=-1)
@click.option("--no-alerts", is_flag=True, help="Store only; leave pending alerts for later.")
@click.pass_obj
def crawl(app: App, sources: tuple[str, ...], no_alerts: bool) -> None:
    """One pass over all (or the named) sources."""
    from crawler.runner import run_pass

    config = app.config
    app.check_topics()
    names = {s.name for s in config.sources}
    for name in sources:
        if name not in names:
            usage_error(f"no source named {name!r} (configured: {', '.join(sorted(names)) or 'none'})")
    if not config.sources:
        usage_error(f"{app.config_path or 'config'}: sources: no sources configured")
    results = run_pass(config, list(sources) or None, log_level=_level(app.verbose), db=app.db)
    for r in results:
        click.echo(r.line(), err=r.status != "ok")
    if not no_alerts and config.watchers:
        _deliver_after_pass(app)


# After a pass, alerts get this long; what is left stays pending for `alerts send` or the next pass,
# so a slow or dead channel never holds a crawl up.
DELIVERY_BUDGET = 60.0


def _deliver_after_pass(app: App) -> None:
    from alerts.dispatch import dispatch

    config = app.config
    report = dispatch(app.db, config.watchers, settings=config.alerts, templates=config.alerts.templates,
                      budget=DELIVERY_BUDGET)
    click.echo(f"alerts: {report.summary()}", err=bool(report.failed or report.retrying))


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        usage_error(f"{name}: {exc}")


@main.command()
@click.option("--topic", help="Only items with this topic id.")
@click.option("--source", help="Only items from this source.")
@click.option("--since", help="Published on or after WHEN (2026-11-01, an ISO date-time, or 7d).")
@click.option("--until", help="Published before WHEN.")
@click.option("--search", help="Text that must appear in the title or text.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--stories", is_flag=True, help="One row per story, with its copies.")
@click.pass_obj
def items(app: App, topic: str | None, source: str | None, since: str | None, until: str | None,
          search: str | None, limit: int, fmt: str, stories: bool) -> None:
    """Query the stored items, newest first."""
    from crawler.query import ItemQuery, query_items, query_stories

    if topic is not None and topic not in app.classifier.topic_ids:
        usage_error(f"--topic: unknown topic {topic!r} (defined: {', '.join(app.classifier.topic_ids)})")
    q = ItemQuery(topic=topic, source=source, since=_when(since, "--since"), until=_when(until, "--until"),
                  search=search, limit=limit)
    if stories:
        rows = query_stories(app.db, q)
        _emit(rows, fmt, ["story", "copies", "published", "topics", "title", "sources"])
        return
    rows = query_items(app.db, q)
    _emit(rows, fmt, ["id", "published", "source", "topics", "story", "revisions", "title"])


def _emit(rows: list[dict[str, Any]], fmt: str, columns: list[str]) -> None:
    out = sys.stdout
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
        return
    if fmt == "csv":
        if not rows:
            return
        writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v, csv_mode=True) for k, v in row.items()})
        return
    for line in _table(rows, columns):
        out.write(line + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    raise TypeError(type(value).__name__)


def _cell(value: Any, csv_mode: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        v = as_utc(value)
        return v.isoformat() if csv_mode else v.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | tuple):
        return (";" if csv_mode else ",").join(str(v) for v in value)
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> Iterator[str]:
    if not rows:
        yield "(no items)"
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    # The last column (the title) takes what the terminal has left.
    room = shutil.get_terminal_size((160, 24)).columns - sum(w + 2 for w in widths[:-1])
    widths[-1] = max(20, min(widths[-1], room))
    yield "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    for row in cells:
        parts = [v if len(v) <= w else v[: w - 1] + "…" for v, w in zip(row, widths, strict=True)]
        yield "  ".join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip()


@main.command()
@click.argument("item_id", type=int)
@click.pass_obj
def show(app: App, item_id: int) -> None:
    """An item with its topics and evidence, its story, and a readable diff of its revisions."""
    from crawler.query import render_item

    text = render_item(app.db, item_id)
    if text is None:
        usage_error(f"no item with id {item_id}")
    click.echo(text)


@main.command()
@click.option("--text", "text_file", type=click.File("r", encoding="utf-8"), default="-",
              help="A text file to classify (default: standard input). A first line is taken as the title.")
@click.option("--title", default=None, help="The title, if the text has none on its first line.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def classify(app: App, text_file: Any, title: str | None, fmt: str) -> None:
    """Topics, scores and evidence for any text."""
    body = text_file.read()
    if title is None:
        first, _, rest = body.partition("\n")
        title, body = first.strip(), rest
    results = app.classifier.classify(title, body)
    if fmt == "json":
        click.echo(json.dumps([{"topic": r.topic, "score": round(r.score, 3), "matched": r.matched,
                                "evidence": [e.__dict__ for e in r.evidence]} for r in results], ensure_ascii=False))
        return
    if not results:
        click.echo("no topic")
    for r in results:
        click.echo(f"{r.topic}: score {r.score:.2f} — {'MATCH' if r.matched else 'below threshold'}")
        for e in r.evidence:
            click.echo(f"    [{e.where}] {e.weight:+.2f} \"{e.phrase}\" — {e.sentence}")


@main.command()
@click.pass_obj
def reclassify(app: App) -> None:
    """Run the topic rules again over every stored item (after a change to the topics)."""
    from pipelines.store import Store

    counts = Store(app.db, app.classifier).reclassify()
    changes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k[0] in "+-") or "no topic changed"
    click.echo(f"reclassified {counts['items']} items; {counts['changed']} changed: {changes}")


def entry() -> None:
    """The console script: click's usage errors as one line (exit 2), like every other bad input."""
    try:
        code = main.main(standalone_mode=False)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "borderwatch"
        click.echo(f"borderwatch: {exc.format_message()} (see: {command} --help)", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("borderwatch: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        click.echo(f"borderwatch: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _register_optional() -> None:
    """Command groups owned by other modules."""
    try:
        from crawler.daemon_cli import run, status
    except ImportError:  # pragma: no cover - while the daemon is being built
        pass
    else:
        main.add_command(run)
        main.add_command(status)
    try:
        from alerts.cli import alerts as alerts_group
    except ImportError:  # pragma: no cover
        return
    main.add_command(alerts_group, "alerts")


_register_optional()
