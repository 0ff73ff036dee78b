"""Configuration: every bad file gives one line naming the file and key, exit 2, no traceback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helpers import bw_here

from alerts.config import AlertSettings, WatcherConfig
from crawler.config import (
    Config,
    ConfigError,
    CrawlConfig,
    DojApiSource,
    DrupalViewsSource,
    EmbeddedJsonSource,
    FeedSource,
    GcNewsSource,
    ListingSource,
    RunConfig,
    SavedSearch,
    SitemapSource,
    load_config,
)
from crawler.web.settings import ServeConfig, WebUser

ROOT = Path(__file__).resolve().parent.parent
FEED = "{name: a, kind: feed, url: 'http://127.0.0.1/feed'}"

# (file content, what the one-line message must say)
BAD = [
    ("colour: blue\n", "colour: unknown key"),
    ("crawl: {download_delay: fast}\n", "crawl.download_delay"),
    ("crawl: {revisit: soon}\n", "crawl.revisit: not a duration"),
    ("crawl: {delay: 1}\n", "crawl.delay: unknown key"),
    ("sources:\n - {name: a, kind: rss, url: 'http://x'}\n", "sources[0].kind: unknown source kind 'rss'"),
    ("sources:\n - {name: a, url: 'http://x'}\n", "sources[0].kind: missing"),
    ("sources:\n - {name: a, kind: feed, url: 'http://x', every: 5x}\n", "sources[0].every: not a duration"),
    ("sources:\n - {name: a, kind: feed, url: 'http://x', since: last-year}\n", "sources[0].since"),
    ("sources:\n - {name: a, kind: feed, url: 'ftp://x'}\n", "sources[0].url"),
    ("sources:\n - {name: A B, kind: feed, url: 'http://x'}\n", "sources[0].name"),
    ("sources:\n - {name: a, kind: feed, url: 'http://x', links: a}\n", "sources[0].links: unknown key"),
    ("sources:\n - {name: a, kind: listing, url: 'http://x'}\n", "sources[0].links: required key is missing"),
    (f"sources:\n - {FEED}\n - {FEED}\n", "sources[1].name: duplicate source name 'a'"),
    ("sources:\n - {name: a, kind: doj_api, url: 'http://x', pagesize: 100}\n", "sources[0].pagesize"),
    ("watchers:\n - {name: d, notify: ['bogus://x']}\n", "watchers[0].notify: not an apprise URL"),
    ("watchers:\n - {name: d, notify: []}\n", "watchers[0].notify"),
    ("watchers:\n - {name: d, notify: ['json://127.0.0.1/x'], mode: digest}\n", "watchers[0]: a digest needs"),
    ("watchers:\n - {name: d, notify: ['json://127.0.0.1/x'], mode: digest, at: '25:00'}\n", "watchers[0].at"),
    ("watchers:\n - {name: d, notify: ['json://127.0.0.1/x'], timezone: Mars/Olympus}\n", "watchers[0].timezone"),
    ("watchers:\n - {name: d, notify: ['json://127.0.0.1/x'], max_age: old}\n", "watchers[0].max_age"),
    ("watchers:\n - {name: d, notify: ['json://127.0.0.1/x'], mode: digest, every: 1y}\n",
     "watchers[0].every: not a duration: '1y'"),
    ("run: {grace: 0s}\n", "run.grace: a duration must be positive"),
    ("alerts: {backoff: later}\n", "alerts.backoff: not a duration"),
    ("crawl: {revisit_every: -1}\n", "crawl.revisit_every: a duration must be positive"),
    ("crawl: {progress_every: 0}\n", "crawl.progress_every: a duration must be positive"),
    ("database: '${BORDERWATCH_TEST_UNSET_VAR}'\n", "database: environment variable BORDERWATCH_TEST_UNSET_VAR is not set"),
    ("sources: [\n", "not valid YAML"),
    ("- just\n- a list\n", "the top level must be a mapping"),
]


@pytest.mark.parametrize(("content", "message"), BAD)
def test_bad_config_is_one_line_naming_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    text = str(err.value)
    assert message in text
    assert text.startswith(str(path))
    assert "\n" not in text


@pytest.mark.parametrize(("content", "message"), BAD[:6] + BAD[14:15])
def test_cli_exits_2_without_traceback(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    proc = bw_here(path, "crawl")
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_watcher_on_an_undefined_topic_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"sources:\n - {FEED}\nwatchers:\n - {{name: d, notify: ['json://127.0.0.1/x'], topics: [cartels]}}\n")
    proc = bw_here(path, "crawl")
    assert proc.returncode == 2
    assert "watchers[0].topics: unknown topic 'cartels'" in proc.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    proc = bw_here(tmp_path / "nope.yaml", "items")
    assert proc.returncode == 2 and "no such config file" in proc.stderr


def test_env_expansion_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("database: 'sqlite:///${DATA}/bw.db'\nsources:\n - " + FEED + "\n")
    config = load_config(path, env={"DATA": "/srv/bw"})
    assert config.database == "sqlite:////srv/bw/bw.db"
    assert config.crawl.obey_robots is True and config.crawl.download_delay == 1.0
    src = config.sources[0]
    assert isinstance(src, FeedSource) and src.every.total_seconds() == 3600


# One Duration type reads every duration of the file, in every section (crawl.revisit_every may be 0).
DURATIONS = [
    ("crawl: {revisit: 7d, revisit_every: 0s}", lambda c: (c.crawl.revisit.days, c.crawl.revisit_every.seconds), (7, 0)),
    ("crawl: {revisit_every: 0}", lambda c: c.crawl.revisit_every.total_seconds(), 0),
    ("crawl: {page_backoff_cap: 1h30m, progress_every: 90}", lambda c: (c.crawl.page_backoff_cap.total_seconds(),
                                                                       c.crawl.progress_every.total_seconds()), (5400, 90)),
    ("run: {pass_timeout: 12h, grace: 30s, dispatch_every: 2m}",
     lambda c: [d.total_seconds() for d in (c.run.pass_timeout, c.run.grace, c.run.dispatch_every)], [43200, 30, 120]),
    ("sources:\n - {name: a, kind: feed, url: 'http://127.0.0.1/feed', every: 2w}",
     lambda c: c.sources[0].every.days, 14),
    ("alerts: {backoff: 1m, backoff_cap: 2h, stale_sending: 5m}",
     lambda c: [d.total_seconds() for d in (c.alerts.backoff, c.alerts.backoff_cap, c.alerts.stale_sending)],
     [60, 7200, 300]),
    ("watchers:\n - {name: d, notify: ['json://127.0.0.1/x'], mode: digest, every: 12h, max_age: 3d}",
     lambda c: (c.watchers[0].every.total_seconds(), c.watchers[0].max_age.days), (43200, 3)),
]


@pytest.mark.parametrize(("content", "read", "expected"), DURATIONS)
def test_durations_are_read_alike_everywhere(tmp_path: Path, content: str, read: Any, expected: Any) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(content + "\n", encoding="utf-8")
    assert read(load_config(path, env={})) == expected


def test_shipped_config_is_valid_and_names_real_sources() -> None:
    config = load_config(ROOT / "config" / "borderwatch.yaml", env={})
    kinds = {s.kind for s in config.sources}
    assert {"doj_api", "feed"} <= kinds
    urls = " ".join(s.url for s in config.sources)
    assert "https://www.justice.gov/api/v1/press_releases.json" in urls
    assert "justice.gov/news/rss" in urls
    assert config.database.startswith("sqlite:///")


def _documented_keys() -> set[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", readme, flags=re.M))


def test_every_setting_is_declared_with_help_and_in_the_readme() -> None:
    documented = _documented_keys()
    models = [("", Config), ("crawl.", CrawlConfig), ("sources[].", DojApiSource), ("sources[].", FeedSource),
              ("sources[].", ListingSource), ("sources[].", SitemapSource), ("sources[].", GcNewsSource),
              ("sources[].", DrupalViewsSource), ("sources[].", EmbeddedJsonSource), ("watchers[].", WatcherConfig),
              ("alerts.", AlertSettings),
              ("run.", RunConfig), ("searches[].", SavedSearch), ("serve.", ServeConfig),
              ("serve.users[].", WebUser)]
    missing = []
    for prefix, model in models:
        for name, field in model.model_fields.items():
            if prefix == "" and name in ("crawl",):
                continue
            if prefix == "" and name in ("sources", "watchers", "alerts", "run", "serve"):
                continue
            assert field.description, f"{model.__name__}.{name} has no help text"
            if f"{prefix}{name}" not in documented:
                missing.append(f"{prefix}{name}")
    assert not missing, f"settings missing from the README table: {missing}"


@pytest.mark.parametrize(("args", "message"), [
    (["items", "--limit", "0"], "Invalid value for '--limit'"),
    (["items", "--format", "xml"], "Invalid value for '--format'"),
    (["alerts", "list", "--state", "weird"], "Invalid value for '--state'"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["items", "--since"], "Option '--since' requires an argument"),
])
def test_bad_arguments_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"database: 'sqlite:///{tmp_path}/bw.db'\nsources:\n - {FEED}\n")
    proc = bw_here(path, *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_and_version_exit_0() -> None:
    assert bw_here(None, "--help").returncode == 0
    assert bw_here(None, "items", "--help").returncode == 0
    version = bw_here(None, "--version")
    assert version.returncode == 0 and "version" in version.stdout
