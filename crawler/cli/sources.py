"""``borderwatch sources`` and ``borderwatch sources check NAME [--file PAGE]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from crawler.cli.main import App, _level, usage_error
from pipelines.timeutil import utcnow


@click.group(invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json: one JSON object per source and line.")
@click.pass_context
def sources(ctx: click.Context, fmt: str) -> None:
    """Every configured source (enabled or not): publisher, kind, language, last pass and health."""
    if ctx.invoked_subcommand is not None:
        return
    from crawler.read.sources import render_rows, source_rows

    app: App = ctx.obj
    now = utcnow()
    rows = source_rows(app.db, app.config, now)
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    for line in render_rows(rows, now):
        click.echo(line)


@sources.command()
@click.argument("name")
@click.option("--file", "file_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              metavar="PAGE", help="A saved page, feed, listing or API response (gzip is fine) instead of the web.")
@click.pass_obj
def check(app: App, name: str, file_path: Path | None) -> None:
    """Read one source now (or a saved page) and print what a pass would store, storing nothing."""
    from crawler.passes.check import CheckError, check_file, check_live, render

    config = app.config
    try:
        source = config.source(name)
    except KeyError:
        names = ", ".join(s.name for s in config.sources) or "none"
        usage_error(f"sources check: no source named {name!r} (configured: {names})")
    classifier = app.classifier  # the topics in force (exit 2 when the topics file is broken)
    if file_path is not None:
        try:
            report = check_file(config, source, file_path, classifier)
        except CheckError as exc:
            usage_error(f"sources check: {exc}")
    else:
        report = check_live(config, source, classifier, log_level=_level(app.verbose))
    for line in render(report, getattr(source, "publisher", None) or source.label):
        click.echo(line)
    if report.problem:
        sys.exit(1)  # the source could not be read: said above, and the exit code says so to scripts
