"""Real local endpoints for alert tests (an SMTP server and an HTTP webhook), and a stand-in for the store.

- ``SmtpSink``: aiosmtpd in a thread on an ephemeral port; apprise reaches it with
  ``mailto://127.0.0.1:PORT/to@example.org?from=…`` (``mailto://`` without credentials is plain SMTP, no TLS).
- ``Webhook``: ``http.server`` in a thread on an ephemeral port; apprise's ``json://127.0.0.1:PORT/path`` posts
  ``{"title", "message", "type", …}`` to it. ``fail_next(n)`` makes it answer 503 to the next n requests.
- ``seed_*``: write items, topics, stories, revisions and outbox events as the store does.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from alerts.config import WatcherConfig
from pipelines.db import Database
from pipelines.models import AlertEvent, Item, ItemTopic, Revision, Story
from pipelines.timeutil import utcnow

# ---------------------------------------------------------------------------------------------------------------
# SMTP


class _EphemeralController(Controller):
    """aiosmtpd's Controller with ``port=0``: learn the bound port before its self-test connects to it."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    """An SMTP server that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller = _EphemeralController(self, hostname="127.0.0.1", port=0)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(parsed)
        return "250 OK"

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def url(self, to: str = "desk@example.org", sender: str = "borderwatch@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}/{to}?from={sender}"

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()

    @staticmethod
    def html_of(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("html",))
        assert part is not None, "no HTML part"
        return str(part.get_content())

    @staticmethod
    def text_of(message: EmailMessage) -> str:
        """The text/plain part of a multipart/alternative message (what text-only readers and filters see)."""
        assert message.get_content_type() == "multipart/alternative", message.get_content_type()
        part = message.get_body(preferencelist=("plain",))
        assert part is not None, "no text part"
        return str(part.get_content())


# ---------------------------------------------------------------------------------------------------------------
# Webhook


@dataclass
class Received:
    path: str
    payload: dict[str, Any]
    authorization: str | None


@dataclass
class Webhook:
    """An HTTP endpoint that records JSON posts; can be told to fail for a while."""

    received: list[Received] = field(default_factory=list)
    refused: int = 0
    delay: float = 0.0  # seconds each request takes (a slow channel)
    _fail: int = 0
    _status: int = 503
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def fail_next(self, n: int, status: int = 503) -> None:
        with self._lock:
            self._fail, self._status = n, status

    def url(self, path: str = "/hook", user: str | None = None, password: str | None = None) -> str:
        creds = f"{user}:{password}@" if user and password else (f"{user}@" if user else "")
        return f"json://{creds}127.0.0.1:{self.port}{path}"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def titles(self, path: str | None = None) -> list[str]:
        with self._lock:
            return [r.payload.get("title", "") for r in self.received if path is None or r.path == path]

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < end:
            time.sleep(0.02)

    def __enter__(self) -> Webhook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if hook.delay:
                    time.sleep(hook.delay)
                with hook._lock:
                    if hook._fail > 0:
                        hook._fail -= 1
                        hook.refused += 1
                        status = hook._status
                    else:
                        status = 200
                        hook.received.append(
                            Received(self.path, json.loads(body or b"{}"), self.headers.get("Authorization"))
                        )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------------------------------------------------------
# Watchers and the store's side


def watcher(name: str, notify: str | list[str], **options: Any) -> WatcherConfig:
    return WatcherConfig.model_validate({"name": name, "notify": [notify] if isinstance(notify, str) else notify,
                                         **options})


def evidence(sentence: str, phrase: str, weight: float = 1.0, where: str = "text") -> dict[str, Any]:
    return {"phrase": phrase, "sentence": sentence, "weight": weight, "where": where}


_counter = iter(range(1, 10**9))


def seed_item(
    db: Database,
    *,
    title: str = "",
    source: str = "doj-api",
    topics: Mapping[str, float] | Iterable[str] = ("tda",),
    story: int | None = None,
    published: datetime | None = None,
    url: str | None = None,
    evidences: Mapping[str, list[dict[str, Any]]] | None = None,
    now: datetime | None = None,
    event: bool = True,
    undated: bool = False,
    text: str = "text",
    site_name: str | None = None,
) -> tuple[int, int]:
    """A new item as the store writes it (with its story, topics and a ``new`` event); → (item id, story id)."""
    now = now or utcnow()
    n = next(_counter)
    scores = dict(topics) if isinstance(topics, Mapping) else {t: 0.9 for t in topics}
    with db.write() as s:
        if story is None:
            st = Story(title=title, created=now)
            s.add(st)
            s.flush()
            story = st.id
        item = Item(
            url=url or f"https://www.justice.gov/opa/pr/item-{n}", source=source, title=title or f"Item {n}",
            text=text, site_name=site_name, published=None if undated else (published if published is not None else now - timedelta(hours=1)),
            first_seen=now, updated=now, content_hash=f"{n:064x}", story_id=story,
        )
        s.add(item)
        s.flush()
        for topic, score in scores.items():
            ev = (evidences or {}).get(topic) or [evidence(f"This release is about {topic}.", topic)]
            s.add(ItemTopic(item_id=item.id, topic=topic, score=score, evidence=ev, classified_at=now))
        if event and scores:
            s.add(AlertEvent(kind="new", item_id=item.id, story_id=story, created=now))
        return item.id, story


def seed_update(db: Database, item_id: int, reason: str = "the text changed", *, now: datetime | None = None) -> int:
    """A material change of an item: a revision and an ``update`` event; → revision id."""
    now = now or utcnow()
    with db.write() as s:
        item = s.get(Item, item_id)
        assert item is not None
        rev = Revision(item_id=item_id, seen_at=now, title=item.title, text=item.text,
                       content_hash=item.content_hash, material=True, reason=reason)
        s.add(rev)
        s.flush()
        s.add(AlertEvent(kind="update", item_id=item_id, story_id=item.story_id, revision_id=rev.id, created=now))
        return rev.id


def seed_health(db: Database, source: str, kind: str = "health", message: str = "failing",
                detail: str = "", *, now: datetime | None = None) -> None:
    with db.write() as s:
        s.add(AlertEvent(kind=kind, source=source, created=now or utcnow(),
                         payload={"message": message, "detail": detail}))
