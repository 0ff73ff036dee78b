"""The ``borderwatch`` command line: thin commands over the crawler, the store and the alerts."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, NoReturn

import click
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from alerts.views import Labels
from crawler.cli.output import Column, Format, write_rows
from crawler.config import Config, ConfigError, load_config
from crawler.daemon.logs import install_redaction
from pipelines.db import Database, DatabaseError
from pipelines.timeutil import parse_when

log = logging.getLogger("borderwatch")


class App:
    """What every command shares: the config file and the database, each loaded and checked on first use.

    Every command goes through the same checks: the file (``load_config``), the topics its watchers follow
    (which loads the topics file), and the database URL when it opens the store — so a mistake is refused
    the same way, with the same line, by ``crawl``, ``status``, ``items`` and ``alerts``.
    """

    def __init__(self, config_path: str | None, verbose: int) -> None:
        self.config_path = config_path
        self.verbose = verbose

    def close(self) -> None:
        """Release the database's connections (when the command opened it)."""
        db = self.__dict__.get("db")
        if isinstance(db, Database):
            db.dispose()

    @property
    def config_name(self) -> str:
        return self.config_path or "config"

    @cached_property
    def _loaded(self) -> Config:
        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            usage_error(str(exc))

    @cached_property
    def config(self) -> Config:
        config = self._loaded
        self._check_watcher_topics(config)
        return config

    @cached_property
    def db(self) -> Database:
        config = self.config
        try:
            return Database(config.database)
        except DatabaseError as exc:
            message = f"{self.config_name}: database: {exc}"
            if exc.usage:
                usage_error(message)
            fail(message)

    @cached_property
    def _rules(self) -> Any:
        from pipelines.classify import Classifier, TopicsError

        try:
            return Classifier.from_file(self._loaded.topics)
        except TopicsError as exc:
            usage_error(str(exc))

    @property
    def classifier(self) -> Any:
        """The topic rules in force (after the config's checks, like every other way in)."""
        _ = self.config
        return self._rules

    @cached_property
    def labels(self) -> Labels:
        """``alerts.views.Labels`` of the config: topic labels from its topics file, its sources' labels."""
        from pipelines.classify import TopicsError

        try:
            return self.config.labels()
        except TopicsError as exc:
            usage_error(str(exc))

    def check_topics(self) -> None:
        """For the commands that classify (``crawl``, ``run``): the topics file loads (else exit 2, before
        any page is fetched: pages classified by nothing would be stored as matching no topic)."""
        _ = self.classifier.topic_ids

    def _check_watcher_topics(self, config: Config) -> None:
        """The topics watchers follow, and those the queries of watchers and saved searches name, exist."""
        if not (any(w.topics or w.query for w in config.watchers) or config.searches):
            return
        from pipelines.search import QueryError, parse

        known = set(self._rules.topic_ids)
        for i, w in enumerate(config.watchers):
            for t in w.topics:
                if t not in known:
                    usage_error(
                        f"{self.config_name}: watchers[{i}].topics: unknown topic {t!r} "
                        f"(defined: {', '.join(sorted(known))})"
                    )
        queries = [(f"watchers[{i}].{'search' if w.search else 'query'}", w.query)
                   for i, w in enumerate(config.watchers)]
        queries += [(f"searches[{i}].query", s.query) for i, s in enumerate(config.searches)]
        for where, text in queries:
            if text is None:
                continue
            try:
                parse(text, topics=known)
            except QueryError as exc:
                usage_error(f"{self.config_name}: {where}: {exc}")


def usage_error(message: str) -> NoReturn:
    click.echo(f"borderwatch: {message}", err=True)
    sys.exit(2)


def fail(message: str) -> NoReturn:
    click.echo(f"borderwatch: {message}", err=True)
    sys.exit(1)


def _level(verbose: int) -> str:
    return {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG")


class Borderwatch(click.Group):
    """The command group. Its ``main`` is what the console script runs — click's usage errors and the
    machine's faults as one line — so click's test runner (``CliRunner.invoke(main, …)``) runs exactly it."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
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
        except BrokenPipeError:
            # `items ... | head`: the reader has what it wanted. Python would complain again at exit while
            # flushing standard output, so point it at /dev/null first (the Python docs' recipe).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except (SQLAlchemyError, OSError) as exc:
            # A fault of the machine rather than of the input (a full disk, a database gone away, a folder
            # that cannot be written): the command failed, in one line. -vv logs the traceback too.
            log.debug("the command failed", exc_info=True)
            click.echo(f"borderwatch: {_fault(exc)}", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group("borderwatch", cls=Borderwatch, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="FILE", envvar="BORDERWATCH_CONFIG",
              help="Config file (default: $BORDERWATCH_CONFIG, else config/borderwatch.yaml).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="borderwatch")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """borderwatch: watch press offices and news for transnational organized crime."""
    level = _level(verbose)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A filter on the handler too: libraries (Scrapy) set their own loggers to DEBUG, and their
    # records reach the root handler whatever the root logger's level.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
        handler.addFilter(_shown(verbose))
    # A pass's progress lines (when stderr is not a terminal) are shown at every level.
    logging.getLogger("borderwatch.progress").setLevel(logging.INFO)
    install_redaction()  # credentials hidden in every log record, whoever logs it
    ctx.obj = App(config_path, verbose)
    ctx.call_on_close(ctx.obj.close)


# Our own loggers: the ones -v shows at INFO (the libraries' INFO lines, Scrapy's above all, wait for -vv).
_OURS = ("borderwatch", "crawler", "pipelines", "alerts")


def _shown(verbose: int) -> Callable[[logging.LogRecord], bool]:
    """Warnings always; with -v our info lines; with -vv everything; the progress lines at every level."""
    def shown(record: logging.LogRecord) -> bool:
        if verbose > 1 or record.levelno >= logging.WARNING:
            return True
        name = record.name
        if verbose == 1:
            return any(name == p or name.startswith(p + ".") for p in _OURS)
        return name == "borderwatch.progress"
    return shown


@main.command()
@click.argument("sources", nargs=-1)
@click.option("--no-alerts", is_flag=True, help="Store only; leave pending alerts for later.")
@click.option("--report-json", "report_json", metavar="PATH", default=None,
              help="Also write each source's pass report to PATH as JSON (the daemon reads its passes this way).")
@click.pass_obj
def crawl(app: App, sources: tuple[str, ...], no_alerts: bool, report_json: str | None) -> None:
    """One pass over all (or the named) sources."""
    from crawler.passes.report import write_reports
    from crawler.passes.run import run_pass

    config = app.config
    app.check_topics()
    names = {s.name for s in config.sources}
    for name in sources:
        if name not in names:
            usage_error(f"no source named {name!r} (configured: {', '.join(sorted(names)) or 'none'})")
    if not config.sources:
        usage_error(f"{app.config_path or 'config'}: sources: no sources configured")
    results = run_pass(config, list(sources) or None, log_level=_level(app.verbose), db=app.db,
                       classifier=app.classifier)
    if report_json is not None:
        write_reports(report_json, results)
    for r in results:
        click.echo(r.line(locked_note=""), err=r.status != "ok")
    if not no_alerts and config.watchers:
        _deliver_after_pass(app)


# After a pass, alerts get this long; what is left stays pending for `alerts send` or the next pass,
# so a slow or dead channel never holds a crawl up.
DELIVERY_BUDGET = 60.0


def _deliver_after_pass(app: App) -> None:
    from alerts.dispatch import dispatch

    config = app.config
    report = dispatch(app.db, config.watchers, settings=config.alerts, templates=config.alerts.templates,
                      budget=DELIVERY_BUDGET, labels=app.labels)
    click.echo(f"alerts: {report.summary()}", err=bool(report.failed or report.retrying or report.uncertain))


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except (ValueError, OverflowError) as exc:
        usage_error(f"{name}: {exc}")


# The table view shows this many rows unless told otherwise; exports (json, csv) are complete.
TABLE_ROWS = 50
# Longer --search text is refused: no one types it (the grammar's own limit, said before it is read).
MAX_SEARCH = 1000
# A table cell other than the title is cut to this width, so a long topic list cannot push the title out;
# on a narrow terminal those cells give way down to MIN_CELL before the title goes below MIN_TITLE.
MAX_CELL = 30
MIN_CELL = 8
MIN_TITLE = 20


def _columns(*keys: str) -> list[Column]:
    """An ``items`` table: these columns, then the title (last, as wide as the terminal allows)."""
    return [*(Column(k, max=MAX_CELL, min=MIN_CELL) for k in keys), Column("title", min=MIN_TITLE)]

# Item ids and limits are 64-bit integers in the database; larger numbers are usage errors.
MAX_INT = 2**63 - 1


@main.command()
@click.option("--topic", help="Only items with this topic id.")
@click.option("--source", help="Only items from this source.")
@click.option("--since", help="Published on or after WHEN (2026-11-01, an ISO date-time, or 7d).")
@click.option("--until", help="Published before WHEN.")
@click.option("--search", help='A query in the search grammar: words, "a phrase", OR, -word, topic: source: '
                                 'lang: since: until: story: (ranked by relevance and recency).')
@click.option("--limit", type=click.IntRange(min=1, max=MAX_INT), default=None,
              help=f"At most N rows (default: {TABLE_ROWS} in a table, every match in json and csv).")
@click.option("--all", "all_rows", is_flag=True, help="Every match, also in a table.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--stories", is_flag=True, help="One row per story, with its copies.")
@click.pass_obj
def items(app: App, topic: str | None, source: str | None, since: str | None, until: str | None,
          search: str | None, limit: int | None, all_rows: bool, fmt: Format, stories: bool) -> None:
    """Query the stored items, newest first (best first with --search words)."""
    from crawler.read.query import ItemQuery, count_items, count_stories, iter_items, iter_stories, stored_sources

    if limit is not None and all_rows:
        usage_error("--limit and --all: give one or the other")
    if search is not None and len(search) > MAX_SEARCH:
        usage_error(f"--search: too long ({len(search):,} characters; at most {MAX_SEARCH:,})")
    since_at, until_at = _when(since, "--since"), _when(until, "--until")
    if since_at is not None and until_at is not None and since_at >= until_at:
        usage_error(f"--since {since} is not before --until {until}: no item can match")
    if topic is not None and topic not in app.classifier.topic_ids:
        usage_error(f"--topic: unknown topic {topic!r} (defined: {', '.join(app.classifier.topic_ids)})")
    query = None
    if search is not None:
        from pipelines.search import QueryError, parse

        try:
            query = parse(search, topics=app.classifier.topic_ids)
        except QueryError as exc:
            usage_error(f"--search: {exc}")
    db = app.db
    searched_sources = {v for values in query.values("source") + query.values("source", negate=True)
                        for v in values} if query else set()
    if searched_sources:
        known = {s.name for s in app.config.sources} | set(stored_sources(db))
        unknown = sorted(searched_sources - known)
        if unknown:
            usage_error(f"--search: source:{unknown[0]}: no source of that name (configured or stored: "
                        f"{', '.join(sorted(known)) or 'none'})")
    if source is not None:
        known = {s.name for s in app.config.sources} | set(stored_sources(db))
        if source not in known:
            usage_error(f"--source: no source named {source!r} (configured or stored: "
                        f"{', '.join(sorted(known)) or 'none'})")
    if limit is None and fmt == "table" and not all_rows:
        limit = TABLE_ROWS
    q = ItemQuery(topic=topic, source=source, since=since_at, until=until_at, search=query, limit=limit)
    if stories:
        shown = write_rows(iter_stories(db, q), fmt, _columns("story", "copies", "published", "topics", "sources"),
                           sys.stdout, empty="(no stories)", fit=True)
    else:
        shown = write_rows(iter_items(db, q), fmt,
                           _columns("id", "published", "source", "lang", "topics", "story", "revisions"),
                           sys.stdout, empty="(no items)", fit=True)
    if limit is not None and shown == limit:
        # Say when the rows shown are not all there is (a table by default, or an explicit --limit).
        matched = count_stories(db, q) if stories else count_items(db, q)
        if matched > shown:
            click.echo(f"{shown} of {matched} shown; --limit N or --all", err=True)


@main.command()
@click.argument("item_id", type=click.IntRange(min=1, max=MAX_INT))
@click.pass_obj
def show(app: App, item_id: int) -> None:
    """An item with its topics and evidence, its story, and a readable diff of its revisions."""
    from crawler.read.query import render_item

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
            note = f" ({e.note})" if e.note else ""
            click.echo(f"    [{e.where}] {e.weight:+.2f} \"{e.phrase}\"{note} — {e.sentence}")


@main.command()
@click.pass_obj
def reclassify(app: App) -> None:
    """Run the topic rules again over every stored item (after a change to the topics)."""
    from pipelines.store import Store

    counts = Store(app.db, app.classifier).reclassify()
    changes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k[0] in "+-") or "no topic changed"
    click.echo(f"reclassified {counts['items']} items; {counts['changed']} changed: {changes}")


def entry(args: list[str] | None = None) -> None:
    """The console script (``borderwatch``, ``python -m crawler``)."""
    main.main(args)


def _fault(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"database: {type(exc.orig).__name__}: {str(exc.orig).splitlines()[0] if str(exc.orig) else ''}"
    if isinstance(exc, SQLAlchemyError):
        return f"database: {(str(exc).splitlines() or [type(exc).__name__])[0]}"
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _register_optional() -> None:
    """Command groups owned by other modules."""
    try:
        from crawler.cli.daemon import run, status
    except ImportError:  # pragma: no cover - while the daemon is being built
        pass
    else:
        main.add_command(run)
        main.add_command(status)
    from crawler.cli.sources import sources

    main.add_command(sources)
    try:
        from crawler.cli.serve import serve
    except ImportError:  # pragma: no cover - the web dependencies are missing
        pass
    else:
        main.add_command(serve)
    try:
        from alerts.cli import alerts as alerts_group
    except ImportError:  # pragma: no cover
        return
    main.add_command(alerts_group, "alerts")


_register_optional()
