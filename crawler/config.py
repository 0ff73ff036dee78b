"""The validated configuration: one YAML file, composed from the parts each package owns.

Every setting is declared once, with its default and a line of help (``Field(description=...)``);
``tests/test_config.py`` fails when one is undocumented or missing from the README.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.config import AlertSettings, WatcherConfig, apprise_secrets, check_query
from alerts.views import Labels
from crawler.web.settings import ServeConfig
from pipelines.db import DEFAULT_DATABASE, DatabaseError, check_url
from pipelines.redact import is_secret_name, register_secret, url_secrets
from pipelines.timeutil import Duration, DurationOrZero, parse_when
from pipelines.yamltext import YamlProblem, parse_yaml

DEFAULT_CONFIG = "config/borderwatch.yaml"
PACKAGED_CONFIG = Path(__file__).resolve().parent.parent / "config" / "borderwatch.yaml"
CATALOGUE = Path(__file__).resolve().parent.parent / "config" / "catalogue.yaml"

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class ConfigError(Exception):
    """A bad configuration file: the message is one line naming the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _networks(value: Any) -> list[str]:
    """A list of networks in CIDR notation (``10.0.0.0/8``, ``fd00::/8``; an address alone is one host)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("expected a list of networks like [\"10.0.0.0/8\", \"127.0.0.0/8\"]")
    out: list[str] = []
    for item in value:
        try:
            out.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not a network like \"10.0.0.0/8\" or an IP address") from None
    return out


class CrawlConfig(_Strict):
    obey_robots: bool = Field(True, description="Obey robots.txt (never turn this off for sites you do not own).")
    download_delay: float = Field(
        1.0, ge=0, description="Seconds between two requests to one host (a source's `delay` overrides it)."
    )
    user_agent: str = Field(
        "borderwatch/0.1 (+https://github.com/borderwatch/borderwatch; monitoring of public press releases)",
        description="The User-Agent sent to every site: name the tool and a way to reach you.",
    )
    concurrency: int = Field(16, ge=1, le=256, description="Requests in flight across all hosts.")
    timeout: float = Field(30.0, gt=0, description="Seconds before a request is abandoned (then retried).")
    retries: int = Field(3, ge=0, le=10, description="Retries of a request that timed out or answered 5xx/429.")
    max_page_size: int = Field(
        8 * 1024 * 1024, ge=64 * 1024, description="Bytes; a larger page is recorded as too large and skipped."
    )
    extract_workers: int = Field(
        0, ge=0, le=64, description="Extraction processes; 0 means one per CPU core."
    )
    extract_timeout: float = Field(
        60.0, gt=0, le=3600,
        description="Seconds one page may take in extraction; a page over it is recorded as too complex.",
    )
    revisit: Duration = Field(
        timedelta(days=3),
        description="Known pages younger than this are revisited (conditional GET) to catch corrections.",
    )

    revisit_every: DurationOrZero = Field(
        timedelta(hours=1),
        description=(
            "A known page is re-checked at most this often (`0s`: on every pass), even when its feed is unchanged."
        ),
    )

    page_attempts: int = Field(
        8, ge=1, le=100,
        description=(
            "Passes that try a failed or blocked page before it is given up (recorded, shown by `status`)."
        ),
    )
    page_backoff_cap: Duration = Field(
        timedelta(days=1),
        description=(
            "The longest wait before a failed or blocked page is tried again (the wait starts at its "
            "source's `every` and doubles after each try)."
        ),
    )
    progress_every: Duration = Field(
        timedelta(minutes=1),
        description="When stderr is not a terminal, a pass logs one progress line per source this often.",
    )

    allow_networks: list[str] = Field(
        default_factory=list,
        description=(
            "Non-public networks (CIDR) every source may follow links and redirects into, e.g. `10.0.0.0/8`."
        ),
    )

    _parse_networks = field_validator("allow_networks", mode="before")(_networks)


class RunConfig(_Strict):
    """How ``borderwatch run`` (the daemon) schedules and guards passes."""

    pass_timeout: Duration = Field(
        timedelta(minutes=30), description="A pass running longer is stopped and recorded as timed out."
    )
    grace: Duration = Field(
        timedelta(seconds=60), description="On SIGTERM/SIGINT, how long running passes may take to finish."
    )
    parallel: int = Field(2, ge=1, le=32, description="Passes running at once (each in its own process).")
    dispatch_every: Duration = Field(
        timedelta(seconds=15), description="How often the daemon delivers pending alerts and digests."
    )
    failures_alert: int = Field(
        3, ge=1, le=100, description="Failed passes in a row before a source raises one health alert."
    )
    quiet_factor: float = Field(
        6.0, gt=1, description="A source with no new item for this many times its usual gap is reported quiet."
    )
    log_format: Literal["text", "json"] = Field("text", description="`json`: one JSON object per log line.")


class _SourceBase(_Strict):
    name: str = Field(description="A unique short name: lowercase letters, digits, `-`, `_`, `.`.")
    url: str = Field(description="The API endpoint, feed, listing page or sitemap to read.")
    since: datetime = Field(
        default_factory=lambda: parse_when("30d"),
        description="How far back the first pass reaches: a date or a duration back from now (`30d`).",
    )
    every: Duration = Field(timedelta(hours=1), description="How often `borderwatch run` passes over the source.")
    content: str | None = Field(None, description="CSS selector of the article's main element on its pages.")
    delay: float | None = Field(None, ge=0, description="Seconds between requests to this source's host.")
    enabled: bool = Field(True, description="A disabled source is kept in the file but never crawled.")
    label: str | None = Field(
        None, min_length=1, max_length=200,
        description="The name alerts show for the source (default: the site's own name, else `name`).",
    )
    allow_networks: list[str] = Field(
        default_factory=list,
        description="Non-public networks (CIDR) this source's links and redirects may lead into (an intranet).",
    )
    language: str | None = Field(
        None,
        description=(
            "The language of the source's items (`en`, `es`, `fr`) when neither the page nor the feed "
            "declares one; else it is detected from the text."
        ),
    )
    note: str | None = Field(
        None, max_length=500,
        description="A line on the source: what it is, how well its way in is known, why it is disabled.",
    )
    keep: Literal["all", "matching"] = Field(
        "all",
        description=(
            "`all`: store every item (a press office); `matching`: store only items that match a topic (a general "
            "news feed), the others are counted as `unmatched`."
        ),
    )

    _parse_networks = field_validator("allow_networks", mode="before")(_networks)

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, v: Any) -> str | None:
        from pipelines.language import primary_tag

        if v is None:
            return None
        tag = primary_tag(str(v))
        if tag is None:
            raise ValueError(f"{v!r} is not a language tag like en, es or fr")
        return tag

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r} is not a valid source name (lowercase letters, digits, '-', '_', '.')")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v

    @field_validator("since", mode="before")
    @classmethod
    def _since(cls, v: Any) -> datetime:
        return parse_when(v)


class DojApiSource(_SourceBase):
    kind: Literal["doj_api"] = Field(description="The source kind.")
    pagesize: int = Field(50, ge=1, le=50, description="Records per API page (the API allows at most 50).")
    rate: float = Field(4.0, gt=0, le=4.0, description="API requests per second at most (DOJ asks for ≤ 4).")
    max_pages: int = Field(200, ge=1, description="Upper bound on API pages read in one pass.")


class FeedSource(_SourceBase):
    kind: Literal["feed"] = Field(description="The source kind.")
    fetch_pages: bool = Field(True, description="Fetch and extract each entry's page (else keep the feed text).")
    full_text: bool = Field(
        True,
        description=(
            "`feed`: an entry that carries its whole article (`content:encoded`) is stored from the feed, its page "
            "not fetched."
        ),
    )


class ListingSource(_SourceBase):
    kind: Literal["listing"] = Field(description="The source kind.")
    links: str = Field(description="CSS selector of the article links on the listing page.")
    next: str | None = Field(None, description="CSS selector of the link to the next listing page.")
    # A bound, not a ceiling: a backfill over a long archive sets it as high as it needs.
    max_pages: int = Field(3, ge=1, description="Listing pages walked at most in one pass.")


class SitemapSource(_SourceBase):
    kind: Literal["sitemap"] = Field(description="The source kind.")
    max_pages: int = Field(500, ge=1, description="Article pages fetched at most in one pass.")
    exclude: list[str] = Field(
        default_factory=list,
        description="`sitemap`: regular expressions; a page whose URL matches one is not fetched (`/the-curator/`).",
    )

    @field_validator("exclude", mode="before")
    @classmethod
    def _patterns(cls, v: Any) -> Any:
        patterns = [v] if isinstance(v, str) else v
        for p in patterns if isinstance(patterns, list) else []:
            try:
                re.compile(str(p))
            except re.error as exc:
                raise ValueError(f"{p!r} is not a regular expression: {exc}") from None
        return patterns


class GcNewsSource(_SourceBase):
    """The Government of Canada's news API (api.io.canada.ca): Atom or JSON, filtered by query parameters."""

    kind: Literal["gc_news"] = Field(description="The source kind.")
    dept: list[str] = Field(
        default_factory=list, description="`gc_news`: department slugs (`publicsafetycanada`…), any of them."
    )
    topic: list[str] = Field(
        default_factory=list, description="`gc_news`: topic slugs (`nationalsecurityanddefence`…), any of them."
    )
    type: list[str] = Field(
        default_factory=lambda: ["newsreleases", "statements"],
        description="`gc_news`: item types (`newsreleases`, `statements`, `backgrounders`, `mediaadvisories`…).",
    )
    pick: int = Field(50, ge=1, le=100, description="`gc_news`: items asked for per pass, newest first.")
    fetch_pages: bool = Field(
        False,
        description=(
            "`gc_news`: fetch each item's www.canada.ca page (those pages hang for non-browser clients, so the "
            "default keeps the API's title and teaser)."
        ),
    )

    @field_validator("dept", "topic", "type", mode="before")
    @classmethod
    def _slugs(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class DrupalViewsSource(_SourceBase):
    """A Drupal view's listing read through ``/views/ajax`` (a POST), as the page's "more" button does."""

    kind: Literal["drupal_views"] = Field(description="The source kind.")
    view_name: str = Field(description="`drupal_views`: the view's machine name (`view_name` in the POST).")
    view_display_id: str = Field("page_1", description="`drupal_views`: the view's display id.")
    items: str = Field(description="`drupal_views`: CSS selector of one listed item in the view's HTML.")
    links: str = Field(description="`listing`, `drupal_views`: CSS selector of the article links.")
    dates: str | None = Field(
        None, description="`drupal_views`: CSS selector, inside an item, of its `time[datetime]`."
    )
    max_pages: int = Field(3, ge=1, description="Listing pages walked at most in one pass.")


class EmbeddedJsonSource(_SourceBase):
    """An HTML listing page whose items are JSON inside the page (a Drupal settings script): RCMP's news."""

    kind: Literal["embedded_json"] = Field(description="The source kind.")
    script: str = Field(
        "script[data-drupal-selector='drupal-settings-json']",
        description="`embedded_json`: CSS selector of the script element whose text is the page's JSON.",
    )
    path: str = Field(
        min_length=1,
        description=(
            "`embedded_json`: dotted path in that JSON to the list of items (`poweb.all_news.rest_export_all_news`); "
            "a string on the way that holds JSON is read as JSON."
        ),
    )
    link_key: str = Field("view_node", description="`embedded_json`: the item key holding the article's URL.")
    title_key: str = Field("title", description="`embedded_json`: the item key holding its title.")
    date_keys: list[str] = Field(
        default_factory=lambda: ["field_publish_date", "created"],
        description="`embedded_json`: item keys holding its date, the first readable one wins.",
    )
    max_items: int = Field(50, ge=1, description="`embedded_json`: the newest items read in one pass.")

    @field_validator("date_keys", mode="before")
    @classmethod
    def _keys(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


SourceConfig = Annotated[
    DojApiSource | FeedSource | ListingSource | SitemapSource | GcNewsSource | DrupalViewsSource | EmbeddedJsonSource,
    Field(discriminator="kind"),
]
SOURCE_KINDS = ("doj_api", "feed", "listing", "sitemap", "gc_news", "drupal_views", "embedded_json")
AnySource = (DojApiSource | FeedSource | ListingSource | SitemapSource | GcNewsSource | DrupalViewsSource
             | EmbeddedJsonSource)


class SavedSearch(_Strict):
    name: str = Field(description="A unique short name for a saved search: lowercase letters, digits, `-`, `_`, `.`.")
    query: str = Field(min_length=1, description="The query, in the search grammar (see Search).")
    label: str | None = Field(
        None, min_length=1, max_length=200,
        description="What the web UI's sidebar and the search's Atom feed call it (default: `name`).",
    )

    @property
    def title(self) -> str:
        return self.label or self.name

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r} is not a valid search name (lowercase letters, digits, '-', '_', '.')")
        return v

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        check_query(v)
        return v


class Config(_Strict):
    database: str = Field(
        DEFAULT_DATABASE,
        description=(
            "SQLAlchemy URL: SQLite by default, `postgresql+psycopg://…` for a team. A SQLite file's folder "
            "must exist (only the default `./data/` is created)."
        ),
    )
    crawl: CrawlConfig = Field(default_factory=lambda: CrawlConfig(), description="How pages are fetched.")
    sources: list[SourceConfig] = Field(default_factory=list, description="What to watch.")
    watchers: list[WatcherConfig] = Field(default_factory=list, description="Who is told, how and about what.")
    searches: list[SavedSearch] = Field(
        default_factory=list, description="Saved searches: a name and a query each (the web UI, feeds, watchers)."
    )
    alerts: AlertSettings = Field(default_factory=lambda: AlertSettings(), description="How alerts are delivered.")
    run: RunConfig = Field(default_factory=lambda: RunConfig(), description="How the daemon runs.")
    topics: str | None = Field(
        None, description="A topics file (YAML); by default the definitions shipped in config/topics.yaml."
    )
    catalogue: bool | list[str] = Field(
        False,
        description=(
            "`true`: every entry of the shipped source catalogue (config/catalogue.yaml), each with its own "
            "`enabled`; a list of entry names: only those. `sources` entries of the same name override their keys."
        ),
    )
    serve: ServeConfig = Field(default_factory=lambda: ServeConfig(), description="The web UI's users.")

    @field_validator("database")
    @classmethod
    def _database(cls, v: str) -> str:
        try:
            check_url(v)
        except DatabaseError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for i, s in enumerate(self.sources):
            if s.name in seen:
                raise _KeyedError(("sources", i, "name"), f"duplicate source name {s.name!r}")
            seen.add(s.name)
        seen = set()
        for i, w in enumerate(self.watchers):
            if w.name in seen:
                raise _KeyedError(("watchers", i, "name"), f"duplicate watcher name {w.name!r}")
            seen.add(w.name)
        saved: dict[str, str] = {}
        for i, search in enumerate(self.searches):
            if search.name in saved:
                raise _KeyedError(("searches", i, "name"), f"duplicate search name {search.name!r}")
            saved[search.name] = search.query
        for i, w in enumerate(self.watchers):
            if w.search is None:
                continue
            if w.query is not None:
                raise _KeyedError(("watchers", i, "search"), "give query or search, not both")
            if w.search not in saved:
                raise _KeyedError(("watchers", i, "search"), f"no saved search named {w.search!r} "
                                  f"(saved: {', '.join(saved) or 'none'})")
            # The watcher follows the saved query from here on: alerts read `query` only.
            self.watchers[i] = w.model_copy(update={"query": saved[w.search]})
        return self

    def saved_search(self, name: str) -> SavedSearch | None:
        return next((s for s in self.searches if s.name == name), None)

    def source_labels(self) -> dict[str, str]:
        """source name → the display name its ``label`` sets (sources without one are left out)."""
        return {s.name: s.label for s in self.sources if s.label}

    def labels(self) -> Labels:
        """What alerts show for topic ids and source names: the topics file's labels, the sources' labels.
        Raises ``pipelines.classify.TopicsError`` when the topics file cannot be read."""
        from pipelines.classify import topic_labels

        return Labels(topic_labels(self.topics), self.source_labels())

    def source(self, name: str) -> AnySource:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)


class _KeyedError(ValueError):
    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _expand(value: Any, loc: tuple[str | int, ...], env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                raise _KeyedError(loc, f"environment variable {m.group(1)} is not set")
            if is_secret_name(m.group(1)):
                register_secret(env[m.group(1)])  # ${SMTP_PASSWORD}: hidden wherever it shows
            return env[m.group(1)]
        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: _expand(v, (*loc, str(k)), env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*loc, i), env) for i, v in enumerate(value)]
    return value


def format_loc(loc: tuple[str | int, ...] | list[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _explain(err: ValidationError, origin: list[tuple[str | int, ...]] | None = None) -> str:
    e = err.errors()[0]
    loc = [p for p in e["loc"] if p not in SOURCE_KINDS]  # drop the union tag pydantic inserts
    loc = list(_user_loc(tuple(loc), origin or []))
    # pydantic nests a tagged union's errors under the tag value; keep the user's path.
    key = format_loc(loc)
    etype = e["type"]
    if etype == "extra_forbidden":
        return f"{key}: unknown key"
    if etype == "union_tag_invalid":
        kind = e.get("input", {}).get("kind") if isinstance(e.get("input"), dict) else None
        return f"{key}.kind: unknown source kind {kind!r} (expected one of {', '.join(SOURCE_KINDS)})"
    if etype == "union_tag_not_found":
        return f"{key}.kind: missing (expected one of {', '.join(SOURCE_KINDS)})"
    if etype == "missing":
        return f"{key}: required key is missing"
    msg = str(e["msg"])
    msg = msg.removeprefix("Value error, ")
    return f"{key}: {msg}"


class CatalogueError(Exception):
    """The shipped catalogue cannot be read (a broken install): one line naming the file."""


_CATALOGUE_CACHE: dict[str, list[dict[str, Any]]] = {}


def catalogue_entries(path: Path = CATALOGUE) -> list[dict[str, Any]]:
    """The shipped source catalogue's entries (raw mappings, in the file's order)."""
    key = str(path)
    if key not in _CATALOGUE_CACHE:
        try:
            raw = parse_yaml(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, YamlProblem) as exc:
            raise CatalogueError(f"{path}: cannot read the source catalogue: {exc}") from None
        entries = raw.get("sources") if isinstance(raw, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e for e in entries):
            raise CatalogueError(f"{path}: sources: expected a list of named source entries")
        _CATALOGUE_CACHE[key] = entries
    return [dict(e) for e in _CATALOGUE_CACHE[key]]


def compose_catalogue(
    data: dict[str, Any], entries: list[dict[str, Any]] | None = None
) -> tuple[dict[str, Any], list[tuple[str | int, ...]]]:
    """The config's ``sources`` with the catalogue's entries in: all of them (``catalogue: true``), the named
    ones (``catalogue: [a, b]``), and any a ``sources`` entry without a ``kind`` names. A ``sources`` entry with a
    catalogue entry's name overrides that entry's keys. Returns the data and, for each composed source, where
    the user wrote it (``("sources", i)``) or ``("catalogue", name)``, so errors name the user's key."""
    use = data.get("catalogue", False)
    user = data.get("sources")
    if user is None:
        user = []
    if not isinstance(user, list):
        return data, []  # validation says what is wrong with it
    if use in (False, None) and not any(isinstance(s, dict) and "kind" not in s for s in user):
        return data, [("sources", i) for i in range(len(user))]
    catalogue = {e["name"]: e for e in (entries if entries is not None else catalogue_entries())}
    if use is True:
        wanted = list(catalogue)
    elif use in (False, None):
        wanted = []
    elif isinstance(use, list):
        wanted = []
        for i, name in enumerate(use):
            if not isinstance(name, str) or name not in catalogue:
                raise _KeyedError(("catalogue", i), f"no catalogue entry named {name!r} (see config/catalogue.yaml)")
            wanted.append(name)
    else:
        raise _KeyedError(("catalogue",), "expected true, false or a list of catalogue entry names")
    composed: list[Any] = []
    origin: list[tuple[str | int, ...]] = []
    index: dict[str, int] = {}
    for name in dict.fromkeys(wanted):
        index[name] = len(composed)
        composed.append(dict(catalogue[name]))
        origin.append(("catalogue", name))
    overridden: set[str] = set()
    for j, src in enumerate(user):
        name = src.get("name") if isinstance(src, dict) else None
        if isinstance(src, dict) and isinstance(name, str) and name not in overridden:
            if name in index:  # the user's keys over the catalogue's
                composed[index[name]] = {**composed[index[name]], **src}
                origin[index[name]] = ("sources", j)
                overridden.add(name)
                continue
            if "kind" not in src:  # a reference to a catalogue entry by its name
                if name not in catalogue:
                    raise _KeyedError(("sources", j, "kind"), f"missing (expected one of {', '.join(SOURCE_KINDS)}), "
                                      f"and {name!r} names no catalogue entry")
                index[name] = len(composed)
                composed.append({**catalogue[name], **src})
                origin.append(("sources", j))
                overridden.add(name)
                continue
        composed.append(src)
        origin.append(("sources", j))
    return {**data, "sources": composed}, origin


def _user_loc(loc: tuple[str | int, ...], origin: list[tuple[str | int, ...]]) -> tuple[str | int, ...]:
    """A composed source's error location, as the user wrote it."""
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int) and loc[1] < len(origin):
        return (*origin[loc[1]], *loc[2:])
    return loc


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate a config file. Raises ConfigError with a one-line message."""
    env = os.environ if env is None else env
    if path is None:
        path = env.get("BORDERWATCH_CONFIG") or DEFAULT_CONFIG
        if not Path(path).exists() and path == DEFAULT_CONFIG and PACKAGED_CONFIG.exists():
            path = PACKAGED_CONFIG
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None
    try:
        raw = parse_yaml(text)
    except YamlProblem as exc:
        where = f"{exc.where}: " if exc.where else ""
        raise ConfigError(f"{p}: {where}not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of keys (database, crawl, sources, …)")
    origin: list[tuple[str | int, ...]] = []
    try:
        data = _expand(raw, (), env)
        data, origin = compose_catalogue(data)
        config = Config.model_validate(data)
    except _KeyedError as exc:
        raise ConfigError(f"{p}: {format_loc(_user_loc(exc.loc, origin))}: {exc}") from None
    except ValidationError as exc:
        # a model validator's _KeyedError arrives wrapped by pydantic
        cause = exc.errors()[0].get("ctx", {}).get("error")
        if isinstance(cause, _KeyedError):
            raise ConfigError(f"{p}: {format_loc(_user_loc(cause.loc, origin))}: {cause}") from None
        raise ConfigError(f"{p}: {_explain(exc, origin)}") from None
    except CatalogueError as exc:
        raise ConfigError(str(exc)) from None
    register_config_secrets(config)
    return _resolve_paths(config, p)


def register_config_secrets(config: Config) -> None:
    """Make every credential the configuration holds one that logs, records and output never show."""
    for source in config.sources:
        for secret in url_secrets(source.url):
            register_secret(secret)
    register_secret(_database_password(config.database))
    for user in config.serve.users:
        register_secret(user.password)
        register_secret(user.token)
    for watcher in config.watchers:
        for url in watcher.notify:
            for secret in apprise_secrets(url):
                register_secret(secret)


def _database_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None


def _resolve_paths(config: Config, path: Path) -> Config:
    """A relative topics file is taken relative to the config file's folder's parent project."""
    if config.topics and not Path(config.topics).is_absolute() and not Path(config.topics).exists():
        candidate = path.resolve().parent.parent / config.topics
        if candidate.exists():
            return config.model_copy(update={"topics": str(candidate)})
    return config
