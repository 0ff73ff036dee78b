"""What the pages, the API and the feeds of ``borderwatch serve`` share: the config, the store, the search
engine, the access policy and the templates (``Site``); and the links facets and logins are made of."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from crawler.config import Config, SavedSearch
from crawler.web.access import LOCAL_USER, Access
from crawler.web.engine import Engine
from pipelines.db import Database
from pipelines.timeutil import as_utc

HERE = Path(__file__).resolve().parent


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    raise TypeError(type(value).__name__)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


def _human(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def with_filter(q: str, name: str, value: str) -> str:
    """``q`` narrowed by ``name:value`` (replacing a filter of the same name)."""
    kept = [t for t in q.split() if not t.lower().startswith(f"{name}:")]
    token = f'{name}:{value}' if " " not in value else f'{name}:"{value}"'
    return " ".join([*kept, token]).strip()


def without_filter(q: str, name: str) -> str:
    return " ".join(t for t in q.split() if not t.lower().startswith(f"{name}:"))


def month_filter(q: str, month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    nxt = f"{y + 1:04d}-01-01" if m == 12 else f"{y:04d}-{m + 1:02d}-01"
    return with_filter(with_filter(q, "since", f"{month}-01"), "until", nxt)


def _safe_next(target: str) -> str:
    """Only a path of this site (never ``//host`` or a scheme): a login cannot send people elsewhere."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@dataclass
class Site:
    config: Config
    db: Database
    access: Access
    engine: Engine
    topic_labels: dict[str, str]
    searches: dict[str, SavedSearch] = field(default_factory=dict)
    templates: Jinja2Templates = field(init=False)

    def __post_init__(self) -> None:
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals.update(
            human=_human, topic_labels=self.topic_labels, searches=self.config.searches, with_filter=with_filter,
            without_filter=without_filter, month_filter=month_filter, quote=quote, urlencode=urlencode,
            feed_url=self.feed_url)

    @classmethod
    def build(cls, config: Config, db: Database, access: Access) -> Site:
        topic_labels = dict(config.labels().topics)
        return cls(config, db, access, Engine(db, list(topic_labels)), topic_labels,
                   {s.name: s for s in config.searches})

    def page(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        access = self.access
        user = LOCAL_USER if access.open else request.session.get("user")
        token = access.token_of(user) if (user and not access.open) else None
        base = {"user": user, "open": access.open, "token": token, "q": ""}
        return self.templates.TemplateResponse(request, name, {**base, **context}, status_code=status)

    def feed_url(self, path: str, user: str | None) -> str:
        """``path`` with the user's token when a login is needed: what a feed reader can fetch."""
        token = self.access.token_of(user) if (user and not self.access.open) else None
        if token is None:
            return path
        return path + ("&" if "?" in path else "?") + urlencode({"token": token})
