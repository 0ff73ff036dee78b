"""``borderwatch serve``: the ASGI app (FastAPI, Jinja2, vendored htmx). Pages, the JSON API and Atom feeds.

Every page is server-rendered and works without JavaScript; htmx (``hx-boost``) only swaps pages in place.
Reads go through ``crawler.web.engine`` and ``crawler.web.reader``; the only writes are triage marks.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import text as sql_text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from crawler.config import Config
from crawler.read.search import QueryError
from crawler.web import reader, triage
from crawler.web.access import LOCAL_USER, Access
from crawler.web.atom import FEED_ENTRIES, atom_feed
from crawler.web.engine import MAX_LIMIT, Engine
from crawler.web.highlight import highlighted
from crawler.web.models import ItemsPage, StoriesPage
from crawler.web.timeline import timeline_svg
from pipelines.db import Database
from pipelines.timeutil import as_utc

HERE = Path(__file__).resolve().parent
PAGE = 25  # results per page in the UI
OUTBOX_ROWS = 200


class LoginRequired(Exception):
    """No session, no token: pages redirect to the login form, feeds and the API answer 401."""


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


def current_user(request: Request) -> str:
    """The user, or LoginRequired. Open access (loopback): everyone is ``local``."""
    access: Access = request.app.state.access
    if access.open:
        return LOCAL_USER
    user = request.session.get("user")
    if isinstance(user, str) and any(u.name == user for u in access.users):
        return user
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    path = request.url.path
    if token is None and (path.startswith("/feeds/") or path.startswith("/api/") or path == "/healthz"):
        token = request.query_params.get("token")
    if token:
        found = access.check_token(token)
        if found:
            return found
    raise LoginRequired()


def same_origin(request: Request) -> None:
    """A form or API write must come from this site's own pages (or from a script, which sends no Origin):
    another site's page cannot make a visitor's browser mark items or log in (the session cookie is
    ``SameSite=Lax`` too; this also covers loopback, where no cookie is needed)."""
    origin = request.headers.get("origin")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site == "cross-site" or (origin is not None and urlsplit(origin).netloc != request.headers.get("host")):
        raise StarletteHTTPException(403, "refused: a write from another site's page")


User = Annotated[str, Depends(current_user)]
SameOrigin = Depends(same_origin)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows in one page.")]
# Ids are 64-bit integers in the database: a larger number is a bad request, not a database error.
ItemId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="An item's id.")]
StoryId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="A story's id.")]


# The names a browser uses for loopback: a page answering to any other Host header while bound to loopback
# would be readable by another site through DNS rebinding.
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def create_app(config: Config, db: Database, access: Access, *, allowed_hosts: list[str] | None = None) -> FastAPI:
    labels = config.labels()
    topic_labels = dict(labels.topics)
    engine = Engine(db, list(topic_labels))
    searches = {s.name: s for s in config.searches}
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(human=_human, topic_labels=topic_labels, searches=config.searches,
                                 with_filter=with_filter, without_filter=without_filter, month_filter=month_filter,
                                 quote=quote, urlencode=urlencode)

    app = FastAPI(
        title="borderwatch", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None,
        description="Items, stories, sources and facets of the borderwatch store; queries use the search grammar.",
    )
    app.state.access = access
    app.state.engine = engine
    app.add_middleware(SessionMiddleware, secret_key=access.session_key, session_cookie="borderwatch_session",
                       max_age=int(access.session_days * 86400), same_site="lax")
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, _exc: LoginRequired) -> Response:
        path = request.url.path
        if path.startswith("/api/") or path.startswith("/feeds/") or path in ("/healthz", "/openapi.json"):
            return JSONResponse({"error": "login required: a session, or a token (Authorization: Bearer, "
                                          "or ?token= for feeds and the API)"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="borderwatch"'})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        message = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))
        if request.url.path.startswith("/api/") or request.url.path.startswith("/feeds/"):
            return JSONResponse({"error": message}, status_code=422)
        return page(request, "error.html", {"message": message}, status=422)

    @app.exception_handler(QueryError)
    async def _bad_query(request: Request, exc: QueryError) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.startswith("/feeds/"):
            return JSONResponse({"error": str(exc)}, status_code=400)
        return page(request, "error.html", {"message": str(exc), "q": request.query_params.get("q", "")},
                    status=400)

    def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        user = LOCAL_USER if access.open else request.session.get("user")
        token = access.token_of(user) if (user and not access.open) else None
        base = {"user": user, "open": access.open, "token": token, "q": ""}
        return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)

    def feed_url(path: str, user: str | None) -> str:
        token = access.token_of(user) if (user and not access.open) else None
        if token is None:
            return path
        return path + ("&" if "?" in path else "?") + urlencode({"token": token})

    templates.env.globals["feed_url"] = feed_url

    # -- login -----------------------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        return page(request, "login.html", {"next": _safe_next(next), "error": None})

    @app.post("/login", include_in_schema=False, dependencies=[SameOrigin])
    def login(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
              next: Annotated[str, Form()] = "/") -> Response:
        found = access.check_password(username.strip(), password) if not access.open else LOCAL_USER
        if found is None:
            return page(request, "login.html", {"next": _safe_next(next), "error": "Wrong name or password."},
                        status=401)
        request.session.clear()
        request.session["user"] = found
        return RedirectResponse(_safe_next(next), status_code=303)

    @app.post("/logout", include_in_schema=False, dependencies=[SameOrigin])
    def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login" if not access.open else "/", status_code=303)

    # -- pages -----------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, summary="The search page")
    def search_page(request: Request, user: User, q: str = "", cursor: str | None = None,
                    view: str = "items") -> Response:
        return render_search(request, user, q, cursor, view, saved=None)

    @app.get("/searches/{name}", response_class=HTMLResponse, summary="A saved search's page")
    def saved_page(request: Request, user: User, name: str, cursor: str | None = None,
                   view: str = "items") -> Response:
        found = searches.get(name)
        if found is None:
            raise HTTPException(404, f"no saved search named {name!r}")
        return render_search(request, user, found.query, cursor, view, saved=found)

    def render_search(request: Request, user: str, q: str, cursor: str | None, view: str, saved: Any) -> Response:
        stories_view = view == "stories"
        result = engine.stories(q, PAGE, cursor) if stories_view else engine.items(q, PAGE, cursor)
        count = None if stories_view else result.total
        facets = engine.facets(q)
        tl = engine.timeline(q)
        chart = timeline_svg(tl.bucket, tl.periods, tl.series, topic_labels)
        ids = [r["id"] for r in result.rows] if not stories_view else []
        marks = triage.marks(db, user, ids)
        def link(view: str = "items", cursor: str | None = None) -> str:
            params = {} if saved is not None else {"q": q}
            if view != "items":
                params["view"] = view
            if cursor:
                params["cursor"] = cursor
            return f"{request.url.path}?{urlencode(params)}" if params else request.url.path

        return page(request, "search.html", {
            "link": link, "bucket": tl.bucket,
            "q": q, "rows": result.rows, "next": result.next, "total": count, "facets": facets, "chart": chart,
            "view": "stories" if stories_view else "items", "marks": marks, "saved": saved, "cursor": cursor,
        })

    @app.get("/items/{item_id}", response_class=HTMLResponse, summary="An item's page")
    def item_page(request: Request, user: User, item_id: ItemId) -> Response:
        found = reader.item_detail(db, item_id)
        if found is None:
            raise HTTPException(404, f"no item with id {item_id}")
        phrases = {t["topic"]: [str(e.get("phrase", "")) for e in t["evidence"]] for t in found["topic_evidence"]}
        body = highlighted(found["text"], phrases)
        marks = triage.marks(db, user, [item_id]).get(item_id, triage.Marks())
        return page(request, "item.html", {"item": found, "body": body, "marks": marks})

    @app.post("/items/{item_id}/triage", include_in_schema=False, dependencies=[SameOrigin])
    def triage_form(request: Request, user: User, item_id: ItemId, action: Annotated[str, Form()],
                    note: Annotated[str | None, Form()] = None, next: Annotated[str, Form()] = "") -> Response:
        try:
            marks = triage.mark(db, user, item_id, action, note)
        except triage.TriageError as exc:
            raise HTTPException(400, str(exc)) from None
        if request.headers.get("hx-request") and request.headers.get("hx-target", "").startswith("triage-"):
            return page(request, "_triage.html", {"item_id": item_id, "marks": marks, "next": next})
        return RedirectResponse(_safe_next(next or f"/items/{item_id}"), status_code=303)

    @app.get("/starred", response_class=HTMLResponse, summary="Your starred and annotated items")
    def starred_page(request: Request, user: User) -> Response:
        return page(request, "starred.html", {"rows": triage.marked_items(db, user)})

    @app.get("/api/triage", summary="Your starred and annotated items, with your marks")
    def api_marked(user: User) -> Any:
        return {"items": _jsonable(triage.marked_items(db, user))}

    @app.get("/stories/{story_id}", response_class=HTMLResponse, summary="A story's page: every copy")
    def story_page(request: Request, user: User, story_id: StoryId) -> Response:
        found = reader.story_detail(db, story_id)
        if found is None:
            raise HTTPException(404, f"no story with id {story_id}")
        return page(request, "story.html", {"story": found})

    @app.get("/sources", response_class=HTMLResponse, summary="Sources and their health")
    def sources_page(request: Request, user: User) -> Response:
        from crawler.read.status import gather, retry_line, when_next

        report = gather(db, config, datetime.now(UTC))
        return page(request, "sources.html", {"report": report, "when_next": when_next, "retry_line": retry_line})

    @app.get("/alerts", response_class=HTMLResponse, summary="The alert outbox")
    def alerts_page(request: Request, user: User, state: str | None = None) -> Response:
        from alerts.cli import STATES

        if state is not None and state not in STATES:
            raise HTTPException(400, f"state: {state!r} is not one of {', '.join(STATES)}")
        rows = reader.outbox(db, list(config.watchers), state, OUTBOX_ROWS)
        counts = reader.delivery_counts(db, list(config.watchers))
        return page(request, "alerts.html", {"rows": rows, "state": state, "states": STATES, "counts": counts})

    @app.get("/healthz", summary="200 when the store is reachable")
    def healthz(user: User) -> Response:
        try:
            with db.read() as s:
                s.execute(sql_text("SELECT 1"))
        except Exception as exc:  # any failure of the store is an unhealthy answer, not a crash
            return JSONResponse({"ok": False, "error": str(exc).splitlines()[0]}, status_code=503)
        return JSONResponse({"ok": True})

    # -- the JSON API ----------------------------------------------------------------------------------
    @app.get("/api/items", response_model=ItemsPage, summary="Items matching a query, best first")
    def api_items(user: User, q: str = "", limit: Limit = 50, cursor: str | None = None) -> Any:
        result = engine.items(q, limit, cursor)
        return {"items": _jsonable(result.rows), "next": result.next, "total": result.total}

    @app.get("/api/items/{item_id}", summary="One item with its topics and evidence, its story's copies and revisions")
    def api_item(user: User, item_id: ItemId) -> Any:
        found = reader.item_detail(db, item_id)
        if found is None:
            return JSONResponse({"error": f"no item with id {item_id}"}, status_code=404)
        found["triage"] = triage.marks(db, user, [item_id]).get(item_id, triage.Marks()).as_json()
        return _jsonable(found)

    @app.post("/api/items/{item_id}/triage", summary="Mark an item read/unread, star it, or set its note",
              dependencies=[SameOrigin])
    def api_triage(user: User, item_id: ItemId, body: dict[str, Any]) -> Any:
        action = str(body.get("action", ""))
        note = body.get("note")
        try:
            marks = triage.mark(db, user, item_id, action, note if isinstance(note, str) else None)
        except triage.TriageError as exc:
            status = 404 if str(exc).startswith("no item") else 400
            return JSONResponse({"error": str(exc)}, status_code=status)
        return marks.as_json()

    @app.get("/api/stories", response_model=StoriesPage, summary="Stories with an item matching a query")
    def api_stories(user: User, q: str = "", limit: Limit = 50, cursor: str | None = None) -> Any:
        result = engine.stories(q, limit, cursor)
        return {"stories": _jsonable(result.rows), "next": result.next}

    @app.get("/api/stories/{story_id}", summary="One story: every copy, which came first, what differs")
    def api_story(user: User, story_id: StoryId) -> Any:
        found = reader.story_detail(db, story_id)
        if found is None:
            return JSONResponse({"error": f"no story with id {story_id}"}, status_code=404)
        return _jsonable(found)

    @app.get("/api/facets", summary="Counts by topic, source, language and month of the items matching a query")
    def api_facets(user: User, q: str = "") -> Any:
        return {name: [{"value": v, "count": n} for v, n in values] for name, values in engine.facets(q).items()}

    @app.get("/api/sources", summary="The sources and their health")
    def api_sources(user: User) -> Any:
        from crawler.read.status import gather, to_json

        return to_json(gather(db, config, datetime.now(UTC)))

    @app.get("/api/searches", summary="The saved searches, with their URLs")
    def api_searches(request: Request, user: User) -> Any:
        return {"searches": [{
            "name": s.name, "label": s.title, "query": s.query, "page": f"/searches/{s.name}",
            "api": f"/api/items?{urlencode({'q': s.query})}", "feed": f"/feeds/searches/{s.name}.atom",
        } for s in config.searches]}

    @app.get("/api/export.csv", summary="Every item matching a query as CSV (all of them unless limit is given)")
    def export_csv(user: User, q: str = "", limit: Annotated[int | None, Query(ge=1)] = None) -> Response:
        rows = engine.iter_items(q, limit)
        first = next(rows, None)  # read before the response starts: a bad query is a 400, not a cut stream
        return StreamingResponse(_csv_lines(first, rows), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="borderwatch.csv"'})

    @app.get("/api/export.jsonl", summary="Every item matching a query as JSON lines (all unless limit is given)")
    def export_jsonl(user: User, q: str = "", limit: Annotated[int | None, Query(ge=1)] = None) -> Response:
        rows = engine.iter_items(q, limit)
        first = next(rows, None)
        return StreamingResponse(_jsonl_lines(first, rows), media_type="application/x-ndjson",
                                 headers={"Content-Disposition": 'attachment; filename="borderwatch.jsonl"'})

    # -- feeds -----------------------------------------------------------------------------------------
    def feed(request: Request, q: str, title: str, page_url: str) -> Response:
        result = engine.stories(q, FEED_ENTRIES)
        updates = reader.story_updates(db, [st["story"] for st in result.rows])
        base = str(request.base_url)
        self_url = str(request.url.remove_query_params("token"))
        body = atom_feed(feed_id=self_url, title=f"borderwatch: {title}", self_url=self_url,
                         page_url=base.rstrip("/") + page_url, stories=result.rows, updates=updates,
                         base_url=base, labels=topic_labels)
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    @app.get("/feeds/topics/{topic}.atom", summary="Atom: one entry per story of a topic")
    def topic_feed(request: Request, user: User, topic: str) -> Response:
        if topic not in topic_labels:
            return JSONResponse({"error": f"no topic {topic!r}"}, status_code=404)
        q = f"topic:{topic}"
        return feed(request, q, topic_labels.get(topic, topic), f"/?{urlencode({'q': q})}")

    @app.get("/feeds/search.atom", summary="Atom: one entry per story matching a query")
    def search_feed(request: Request, user: User, q: str = "") -> Response:
        return feed(request, q, q or "everything", f"/?{urlencode({'q': q})}")

    @app.get("/feeds/searches/{name}.atom", summary="Atom: one entry per story of a saved search")
    def saved_feed(request: Request, user: User, name: str) -> Response:
        found = searches.get(name)
        if found is None:
            return JSONResponse({"error": f"no saved search named {name!r}"}, status_code=404)
        return feed(request, found.query, found.title, f"/searches/{name}")

    @app.get("/feeds/sources/{source}.atom", summary="Atom: one entry per story from a source")
    def source_feed(request: Request, user: User, source: str) -> Response:
        q = f"source:{source}"
        return feed(request, q, source, f"/?{urlencode({'q': q})}")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(user: User) -> Any:
        return app.openapi()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.startswith("/feeds/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return page(request, "error.html", {"message": exc.detail}, status=exc.status_code)

    return app


def _safe_next(target: str) -> str:
    """Only a path of this site (never ``//host`` or a scheme): a login cannot send people elsewhere."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


CSV_FIELDS = ["id", "published", "first_seen", "updated", "source", "lang", "topics", "story", "title", "url", "text"]


def _csv_lines(first: dict[str, Any] | None, rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    yield buf.getvalue()
    if first is None:
        return
    for row in _chain(first, rows):
        buf.seek(0)
        buf.truncate()
        writer.writerow({k: _cell(row.get(k)) for k in CSV_FIELDS})
        yield buf.getvalue()


def _jsonl_lines(first: dict[str, Any] | None, rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    if first is None:
        return
    for row in _chain(first, rows):
        out = {k: v for k, v in row.items() if k != "snippet"}
        yield json.dumps(out, ensure_ascii=False, default=_json_default) + "\n"


def _chain(first: dict[str, Any], rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)
