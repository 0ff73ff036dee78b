"""The HTML pages: search (facets, timeline), saved searches, an item, a story, sources, the outbox, starred
items, and the login. Each works without JavaScript; htmx (``hx-boost``) only swaps them in place."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import text as sql_text

from crawler.web import reader, triage
from crawler.web.access import LOCAL_USER
from crawler.web.deps import ItemId, SameOrigin, StoryId, User
from crawler.web.highlight import highlighted
from crawler.web.site import Site, _safe_next
from crawler.web.throttle import LoginThrottle, in_words
from crawler.web.timeline import timeline_svg

PAGE = 25  # results per page in the UI
OUTBOX_ROWS = 200
# Threads that compute search pages' facets and timelines beside their hits (two per page being built).
SUMMARY_THREADS = 8


def register(app: FastAPI, site: Site) -> None:
    config, db, engine, access = site.config, site.db, site.engine, site.access
    searches, topic_labels, page = site.searches, site.topic_labels, site.page
    summaries = ThreadPoolExecutor(max_workers=SUMMARY_THREADS, thread_name_prefix="borderwatch-summary")
    app.router.on_shutdown.append(lambda: summaries.shutdown(wait=False, cancel_futures=True))
    throttle = app.state.login_throttle = LoginThrottle()

    # -- login -----------------------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        return page(request, "login.html", {"next": _safe_next(next), "error": None})

    @app.post("/login", include_in_schema=False, dependencies=[SameOrigin])
    def login(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
              next: Annotated[str, Form()] = "/") -> Response:
        name = username.strip()
        address = request.client.host if request.client else "unknown"
        wait = 0.0 if access.open else throttle.wait(address, name)
        if wait > 0:
            refused = page(request, "login.html", {
                "next": _safe_next(next),
                "error": f"Too many failed logins from your address: try again {in_words(wait)}."}, status=429)
            refused.headers["Retry-After"] = str(math.ceil(wait))
            return refused
        found = access.check_password(name, password) if not access.open else LOCAL_USER
        if found is None:
            throttle.failed(address, name)
            return page(request, "login.html", {"next": _safe_next(next), "error": "Wrong name or password."},
                        status=401)
        throttle.succeeded(address, name)
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
        engine.parse(q, user)  # a query that cannot be read is refused before any work starts
        # The facets and the timeline are separate queries over the same matches: run beside the page of hits.
        facets_done = summaries.submit(engine.facets, q, user)
        timeline_done = summaries.submit(engine.timeline, q, user)
        result = (engine.stories(q, PAGE, cursor, user=user) if stories_view
                  else engine.items(q, PAGE, cursor, user=user))
        count = None if stories_view else result.total
        facets = facets_done.result()
        tl = timeline_done.result()
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
            "q": q, "rows": result.rows, "next": result.next, "total": count, "count_limit": engine.count_limit,
            "facets": facets, "chart": chart,
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
        from crawler.cli.alerts import STATES

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
