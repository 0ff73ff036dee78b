"""The JSON API: items, one item, stories, one story, facets, sources, saved searches, triage, and CSV /
JSON-lines exports of any search. Lists are paged with an opaque cursor (keyset)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from crawler.web import reader, triage
from crawler.web.deps import ItemId, Limit, SameOrigin, StoryId, User
from crawler.web.models import ItemsPage, StoriesPage
from crawler.web.site import Site, _json_default, _jsonable
from pipelines.timeutil import as_utc


def register(app: FastAPI, site: Site) -> None:
    config, db, engine = site.config, site.db, site.engine

    # -- the JSON API ----------------------------------------------------------------------------------
    @app.get("/api/items", response_model=ItemsPage, summary="Items matching a query, best first")
    def api_items(user: User, q: str = "", limit: Limit = 50, cursor: str | None = None) -> Any:
        result = engine.items(q, limit, cursor, user=user)
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

    @app.get("/api/triage", summary="Your starred and annotated items, with your marks")
    def api_marked(user: User) -> Any:
        return {"items": _jsonable(triage.marked_items(db, user))}

    @app.get("/api/stories", response_model=StoriesPage, summary="Stories with an item matching a query")
    def api_stories(user: User, q: str = "", limit: Limit = 50, cursor: str | None = None) -> Any:
        result = engine.stories(q, limit, cursor, user=user)
        return {"stories": _jsonable(result.rows), "next": result.next}

    @app.get("/api/stories/{story_id}", summary="One story: every copy, which came first, what differs")
    def api_story(user: User, story_id: StoryId) -> Any:
        found = reader.story_detail(db, story_id)
        if found is None:
            return JSONResponse({"error": f"no story with id {story_id}"}, status_code=404)
        return _jsonable(found)

    @app.get("/api/facets", summary="Counts by topic, source, language and month of the items matching a query")
    def api_facets(user: User, q: str = "") -> Any:
        return {name: [{"value": v, "count": n} for v, n in values] for name, values in engine.facets(q, user).items()}

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
        rows = engine.iter_items(q, limit, user=user)
        first = next(rows, None)  # read before the response starts: a bad query is a 400, not a cut stream
        return StreamingResponse(_csv_lines(first, rows), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="borderwatch.csv"'})

    @app.get("/api/export.jsonl", summary="Every item matching a query as JSON lines (all unless limit is given)")
    def export_jsonl(user: User, q: str = "", limit: Annotated[int | None, Query(ge=1)] = None) -> Response:
        rows = engine.iter_items(q, limit, user=user)
        first = next(rows, None)
        return StreamingResponse(_jsonl_lines(first, rows), media_type="application/x-ndjson",
                                 headers={"Content-Disposition": 'attachment; filename="borderwatch.jsonl"'})


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
