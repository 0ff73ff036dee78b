"""``borderwatch serve``: the ASGI app (FastAPI, Jinja2, vendored htmx) — its pages (``pages``), JSON API
(``api``) and Atom feeds (``feeds``) over one ``Site``; errors answered in one line, as JSON or a page.

Reads go through ``crawler.web.engine`` and ``crawler.web.reader``; the only writes are triage marks.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from crawler.config import Config
from crawler.read.search import QueryError
from crawler.web import api, feeds, pages
from crawler.web.access import Access
from crawler.web.deps import LOOPBACK_HOSTS, LoginRequired, User
from crawler.web.site import HERE, Site
from pipelines.db import Database

__all__ = ["LOOPBACK_HOSTS", "create_app"]


def create_app(config: Config, db: Database, access: Access, *, allowed_hosts: list[str] | None = None) -> FastAPI:
    site = Site.build(config, db, access)
    page = site.page
    app = FastAPI(
        title="borderwatch", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None,
        description="Items, stories, sources and facets of the borderwatch store; queries use the search grammar.",
    )
    app.state.access = access
    app.state.engine = site.engine
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

    pages.register(app, site)
    api.register(app, site)
    feeds.register(app, site)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(user: User) -> Any:
        return app.openapi()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.startswith("/feeds/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return page(request, "error.html", {"message": exc.detail}, status=exc.status_code)

    return app

    return app
