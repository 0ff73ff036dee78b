"""The Atom feeds: per topic, per query, per saved search, per source; one entry per story (``atom``)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from crawler.web import reader
from crawler.web.atom import FEED_ENTRIES, atom_feed
from crawler.web.deps import User
from crawler.web.site import Site


def register(app: FastAPI, site: Site) -> None:
    db, engine, searches, topic_labels = site.db, site.engine, site.searches, site.topic_labels

    # -- feeds -----------------------------------------------------------------------------------------
    def feed(request: Request, user: str, q: str, title: str, page_url: str) -> Response:
        result = engine.stories(q, FEED_ENTRIES, user=user)
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
        return feed(request, user, q, topic_labels.get(topic, topic), f"/?{urlencode({'q': q})}")

    @app.get("/feeds/search.atom", summary="Atom: one entry per story matching a query")
    def search_feed(request: Request, user: User, q: str = "") -> Response:
        return feed(request, user, q, q or "everything", f"/?{urlencode({'q': q})}")

    @app.get("/feeds/searches/{name}.atom", summary="Atom: one entry per story of a saved search")
    def saved_feed(request: Request, user: User, name: str) -> Response:
        found = searches.get(name)
        if found is None:
            return JSONResponse({"error": f"no saved search named {name!r}"}, status_code=404)
        return feed(request, user, found.query, found.title, f"/searches/{name}")

    @app.get("/feeds/sources/{source}.atom", summary="Atom: one entry per story from a source")
    def source_feed(request: Request, user: User, source: str) -> Response:
        q = f"source:{source}"
        return feed(request, user, q, source, f"/?{urlencode({'q': q})}")
