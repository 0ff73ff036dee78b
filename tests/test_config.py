"""Configuration: every bad file gives one line naming the file and key, exit 2, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import bw

from alerts.config import AlertSettings, WatcherConfig
from crawler.config import (
    Config,
    ConfigError,
    CrawlConfig,
    DojApiSource,
    FeedSource,
    ListingSource,
    RunConfig,
    SavedSearch,
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
    proc = bw(path, "crawl")
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_watcher_on_an_undefined_topic_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"sources:\n - {FEED}\nwatchers:\n - {{name: d, notify: ['json://127.0.0.1/x'], topics: [cartels]}}\n")
    proc = bw(path, "crawl")
    assert proc.returncode == 2
    assert "watchers[0].topics: unknown topic 'cartels'" in proc.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    proc = bw(tmp_path / "nope.yaml", "items")
    assert proc.returncode == 2 and "no such config file" in proc.stderr


def test_env_expansion_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("database: 'sqlite:///${DATA}/bw.db'\nsources:\n - " + FEED + "\n")
    config = load_config(path, env={"DATA": "/srv/bw"})
    assert config.database == "sqlite:////srv/bw/bw.db"
    assert config.crawl.obey_robots is True and config.crawl.download_delay == 1.0
    src = config.sources[0]
    assert isinstance(src, FeedSource) and src.every.total_seconds() == 3600


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
              ("sources[].", ListingSource), ("watchers[].", WatcherConfig), ("alerts.", AlertSettings),
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
    proc = bw(path, *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_and_version_exit_0(tmp_path: Path) -> None:
    assert bw(None, "--help").returncode == 0
    assert bw(None, "items", "--help").returncode == 0
    version = bw(None, "--version")
    assert version.returncode == 0 and "version" in version.stdout
