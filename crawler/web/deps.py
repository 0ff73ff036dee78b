"""What every request of ``borderwatch serve`` is checked for: who asks (a session, a token, or loopback),
whether a write comes from this site's own pages, and the shapes of ids and limits."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Query, Request
from fastapi import Path as PathParam
from starlette.exceptions import HTTPException as StarletteHTTPException

from crawler.web.access import LOCAL_USER, Access
from crawler.web.engine import MAX_LIMIT


class LoginRequired(Exception):
    """No session, no token: pages redirect to the login form, feeds and the API answer 401."""


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
