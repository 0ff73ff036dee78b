"""``borderwatch serve`` in-process (FastAPI's TestClient over httpx) on SQLite and PostgreSQL: the contract's
URLs, the JSON API and its cursors, exports, facets, Atom feeds, access beyond loopback and triage.

The store is filled through the real ``Store`` from the story dev set (tests/web_support.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from conftest import PG_ADMIN_URL, SHARED, need_service
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from web_support import REVISED, Fixture, docs, populate

from alerts.config import WatcherConfig
from crawler.config import Config, load_config
from crawler.web.access import Access, AccessError, access_for
from crawler.web.app import create_app
from crawler.web.settings import WebUser
from pipelines.db import Database
from pipelines.models import Item, ItemTopic, Revision, Story

WATCHER = {"name": "desk", "notify": ["json://127.0.0.1:9/hook"], "topics": ["tda"], "max_age": "3650d"}
SEARCHES = [
    {"name": "tda-extradition", "query": '"Tren de Aragua" extradited OR extradita', "label": "TdA extraditions"},
    {"name": "fentanyl-es", "query": "fentanilo lang:es"},
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Fixture]]:
    """One filled database per backend for the module (filling takes seconds); tests that write use their
    own users, so they do not see each other's marks."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'bw.db'}"
        yield url, populate(url, watcher=WatcherConfig.model_validate(WATCHER))
        return
    name = f"bw_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        need_service(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url, populate(url, watcher=WatcherConfig.model_validate(WATCHER))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _config(url: str, **extra: Any) -> Config:
    return Config.model_validate({
        "database": url, "watchers": [WATCHER], "searches": SEARCHES,
        "sources": [{"name": "doj", "kind": "feed", "url": "https://www.justice.gov/news/rss"}], **extra,
    })


@pytest.fixture
def app_db(store: tuple[str, Fixture]) -> Iterator[Database]:
    db = Database(store[0])
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def client(store: tuple[str, Fixture], app_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(_config(store[0]), app_db, Access(open=True))) as c:
        yield c


@pytest.fixture
def fx(store: tuple[str, Fixture]) -> Fixture:
    return store[1]


ALICE = WebUser(name="alice", password="correct horse battery", token=None)
BOB = WebUser(name="bob", password="another long secret", token="bob-token-0123456789abcdef")


@pytest.fixture
def locked(store: tuple[str, Fixture], app_db: Database) -> Iterator[TestClient]:
    """The app as it runs bound beyond loopback: two users, every URL behind a login or a token."""
    access = Access(open=False, users=(ALICE, BOB))
    with TestClient(create_app(_config(store[0]), app_db, access)) as c:
        yield c


def _all_pages(client: TestClient, path: str, q: str, key: str, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"q": q, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = client.get(path, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        rows.extend(body[key])
        cursor = body["next"]
        if cursor is None:
            return rows
        assert len(body[key]) == limit
    raise AssertionError("the cursor never ended")


# -- the contract's URLs -------------------------------------------------------------------------------------

def test_every_contract_url_answers(client: TestClient, fx: Fixture) -> None:
    item_id = fx.ids["doj-25-1075"]
    for path, kind in [
        ("/", "text/html"), ("/?q=extradited", "text/html"),
        ("/api/items?q=&limit=5", "application/json"), (f"/api/items/{item_id}", "application/json"),
        ("/api/stories?q=&limit=5", "application/json"),
        ("/feeds/topics/tda.atom", "application/atom+xml"), ("/feeds/search.atom?q=fentanyl", "application/atom+xml"),
        ("/healthz", "application/json"),
    ]:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert r.headers["content-type"].startswith(kind), (path, r.headers["content-type"])


def _contract_urls() -> list[str]:
    contract = SHARED / "CONTRACT.md"
    if not contract.exists():
        need_service(f"the shared contract is not at {contract}")
    text = contract.read_text(encoding="utf-8")
    section = text[text.index("## Web and API"):]
    section = section[:section.index("\n## ", 5)] if "\n## " in section[5:] else section
    return re.findall(r"`GET (/[^`]*)`", section)


def test_the_contract_urls_are_in_the_readme_and_answer(client: TestClient, fx: Fixture) -> None:
    urls = _contract_urls()
    assert len(urls) >= 7
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for url in urls:
        path = url.split("?")[0]
        assert path in readme, f"{url} is not in the README"
        concrete = path.replace("{id}", str(fx.ids["doj-25-1075"])).replace("{topic}", "tda")
        r = client.get(concrete, params={"q": "Aragua"} if "q=" in url else None)
        assert r.status_code == 200, (url, r.text[:200])


def test_items_api_has_the_contract_fields_and_snippets(client: TestClient, fx: Fixture) -> None:
    body = client.get("/api/items", params={"q": "extradited", "limit": 3}).json()
    assert set(body) >= {"items", "next"}
    hit = body["items"][0]
    assert {"id", "url", "source", "title", "published", "first_seen", "updated", "topics", "story", "text",
            "lang", "snippet"} <= set(hit)
    assert "<mark>" in hit["snippet"].lower()
    assert hit["url"].startswith("https://")


def test_cursor_walks_every_match_once(client: TestClient) -> None:
    for q in ("", "Aragua", "topic:tda", "fentanyl OR fentanilo"):
        total = client.get("/api/items", params={"q": q, "limit": 1}).json()["total"]
        rows = _all_pages(client, "/api/items", q, "items", 4)
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)) == total > 0, q


def test_a_foreign_cursor_is_a_clear_400(client: TestClient) -> None:
    for cursor in ("nonsense", "eyJ4Ijox", "W10"):
        r = client.get("/api/items", params={"q": "", "cursor": cursor})
        assert r.status_code == 400
        assert "cursor" in r.json()["error"] and "\n" not in r.json()["error"]


@pytest.mark.parametrize(("q", "status"), [
    ("topic:nope", 400), ("since:yesterdayish", 400), ("story:abc", 400),
    ('"unbalanced quote', 200), ("NEAR(tren aragua)", 200), ("'; DROP TABLE items; --", 200), ("*", 200),
    ("tren -", 200), ("OR OR", 200), ("\x00", 200),
])
def test_hostile_queries_are_read_or_refused_in_one_line(client: TestClient, q: str, status: int) -> None:
    r = client.get("/api/items", params={"q": q})
    assert r.status_code == status, r.text
    if status == 400:
        assert "\n" not in r.json()["error"]
        page = client.get("/", params={"q": q})
        assert page.status_code == 400 and 'role="alert"' in page.text


@pytest.mark.parametrize("path", ["/api/items?limit=500", "/api/items?limit=0", "/api/items/99999999999999999999",
                                  "/api/items/abc", "/api/stories/-1", "/api/export.csv?limit=0"])
def test_bad_parameters_are_one_line_errors(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 422
    assert set(r.json()) == {"error"} and "\n" not in r.json()["error"]
    page = client.get("/items/99999999999999999999")
    assert page.status_code == 422 and 'role="alert"' in page.text


def test_one_item_with_evidence_copies_and_revisions(client: TestClient, fx: Fixture) -> None:
    item = client.get(f"/api/items/{fx.ids[REVISED]}").json()
    assert item["topics"] and item["topic_evidence"][0]["evidence"]
    assert item["story"] == fx.stories["tda-chile"]
    gold = {d["id"] for d in docs() if d["story"] == "tda-chile"} - {REVISED}
    assert {c["id"] for c in item["copies"]} == {fx.ids[d] for d in gold}
    [rev] = item["revision_list"]
    assert "fourth suspect" in rev["diff"] and rev["diff"].count("+ ") >= 1
    assert client.get("/api/items/999999").status_code == 404


def test_item_page_highlights_evidence_and_shows_the_diff(client: TestClient, fx: Fixture) -> None:
    page = client.get(f"/items/{fx.ids[REVISED]}").text
    assert '<mark class="evidence" data-topics="tda"' in page
    assert "Revisions" in page and 'class="ins"' in page and "fourth suspect" in page


def test_story_page_names_the_first_copy_and_what_differs(client: TestClient, fx: Fixture) -> None:
    sid = fx.stories["tda-chile"]
    story = client.get(f"/api/stories/{sid}").json()
    assert story["first"] == fx.ids["doj-25-1075"]  # the DOJ release came first
    assert len(story["copies"]) == 8 and {"en", "es", "fr"} <= {c["lang"] for c in story["copies"]}
    others = [c for c in story["copies"] if not c["first"]]
    assert all(0 <= c["similarity"] <= 1 and c["kind"] in ("same text", "copy", "rewrite") for c in others)
    assert any(c["kind"] == "rewrite" for c in others) and any(c["kind"] != "rewrite" for c in others)
    page = client.get(f"/stories/{sid}").text
    assert "first</strong>" in page and page.count("<tr") == 9


def test_stories_api_pages_through_every_story(client: TestClient, fx: Fixture) -> None:
    rows = _all_pages(client, "/api/stories", "", "stories", 2)
    assert sorted(r["story"] for r in rows) == sorted(set(fx.stories.values()))
    tda = _all_pages(client, "/api/stories", "topic:tda", "stories", 50)
    assert all("tda" in r["topics"] for r in tda)
    assert fx.stories["tda-chile"] in {r["story"] for r in tda}


def test_facets_count_what_their_filter_finds(client: TestClient) -> None:
    facets = client.get("/api/facets", params={"q": "Aragua OR fentanyl"}).json()
    assert set(facets) == {"topic", "source", "lang", "month"}
    for name in ("topic", "source", "lang"):
        for entry in facets[name]:
            q = f"Aragua OR fentanyl {name}:{entry['value']}"
            assert client.get("/api/items", params={"q": q, "limit": 1}).json()["total"] == entry["count"], q


def test_search_page_shows_facets_timeline_and_follows_a_facet(client: TestClient) -> None:
    page = client.get("/", params={"q": "Aragua"}).text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="timeline"' in page
    assert 'data-facet="lang:es"' in page and 'data-facet="topic:tda"' in page
    narrowed = client.get("/", params={"q": "Aragua lang:es"}).text
    assert "lang:es" in narrowed
    es = client.get("/api/items", params={"q": "Aragua lang:es"}).json()["items"]
    assert es and all(i["lang"] == "es" for i in es)


def test_exports_are_complete_unless_limited(client: TestClient) -> None:
    total = client.get("/api/items", params={"q": "", "limit": 1}).json()["total"]
    lines = client.get("/api/export.jsonl", params={"q": ""}).text.splitlines()
    assert len(lines) == total and len({json.loads(x)["id"] for x in lines}) == total
    rows = list(csv.DictReader(io.StringIO(client.get("/api/export.csv", params={"q": "topic:tda"}).text)))
    assert len(rows) == client.get("/api/items", params={"q": "topic:tda", "limit": 1}).json()["total"]
    assert all("tda" in r["topics"].split(";") for r in rows)
    assert len(client.get("/api/export.jsonl", params={"q": "", "limit": 3}).text.splitlines()) == 3
    assert client.get("/api/export.csv", params={"q": "topic:nope"}).status_code == 400


def test_openapi_describes_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/api/items", "/api/items/{item_id}", "/api/stories", "/api/facets", "/api/sources",
            "/api/export.csv", "/feeds/topics/{topic}.atom"} <= set(spec["paths"])


def test_sources_and_outbox_pages(client: TestClient) -> None:
    assert "<th scope=\"row\"><a" in client.get("/sources").text
    outbox = client.get("/alerts").text
    assert "desk" in outbox and "pending" in outbox
    assert client.get("/alerts", params={"state": "bogus"}).status_code == 400
    sources = client.get("/api/sources").json()
    assert {s["source"] for s in sources["sources"]} >= {"doj", "usao"}


def test_saved_searches_have_page_feed_and_api(client: TestClient) -> None:
    listed = client.get("/api/searches").json()["searches"]
    assert [s["name"] for s in listed] == ["tda-extradition", "fentanyl-es"]
    page = client.get("/searches/tda-extradition").text
    assert "TdA extraditions" in page and "/feeds/searches/tda-extradition.atom" in page
    feed = feedparser.parse(client.get("/feeds/searches/tda-extradition.atom").content)
    assert feed.entries and not feed.bozo
    api = client.get(listed[1]["api"]).json()["items"]
    assert api and all(i["lang"] == "es" for i in api)
    assert client.get("/searches/nope").status_code == 404


# -- Atom ---------------------------------------------------------------------------------------------------

def test_topic_feed_one_entry_per_story_with_stable_ids(client: TestClient, fx: Fixture, app_db: Database) -> None:
    body = client.get("/feeds/topics/tda.atom").content
    feed = feedparser.parse(body)
    assert not feed.bozo and feed.feed.title == "borderwatch: Tren de Aragua"
    ids = [e.id for e in feed.entries]
    assert len(ids) == len(set(ids))
    with app_db.read() as s:
        tda_stories = set(s.scalars(select(Item.story_id).join(ItemTopic, ItemTopic.item_id == Item.id)
                                    .where(ItemTopic.topic == "tda")))
    assert set(ids) == {f"urn:borderwatch:story:{sid}" for sid in tda_stories}
    assert feedparser.parse(client.get("/feeds/topics/tda.atom").content).entries[0].id == ids[0]
    revised = next(e for e in feed.entries if e.id == f"urn:borderwatch:story:{fx.stories['tda-chile']}")
    first_copy = next(d for d in docs() if d["id"] == "doj-25-1075")
    assert [(lk.rel, lk.href) for lk in revised.links] == [("alternate", first_copy["url"])]  # opens the original
    assert revised.updated.startswith(fx.revised_at.strftime("%Y-%m-%dT%H:%M"))  # the material correction
    assert client.get("/feeds/topics/nope.atom").status_code == 404


def test_source_feed_and_search_feed(client: TestClient) -> None:
    feed = feedparser.parse(client.get("/feeds/sources/noticias.atom").content)
    assert feed.entries and all("noticias" in [a.name for a in e.authors] for e in feed.entries)
    feed = feedparser.parse(client.get("/feeds/search.atom", params={"q": "fentanilo"}).content)
    assert feed.entries and not feed.bozo


def test_entry_updated_moves_on_material_revision_only(sqlite_url: str) -> None:
    from pipelines.classify import Classifier
    from pipelines.items import Article
    from pipelines.store import Store
    from pipelines.tally import Tally

    db = Database(sqlite_url)
    try:
        d = next(x for x in docs() if x["id"] == "az-fentanyl-reyes")
        t0 = datetime(2026, 4, 1, tzinfo=UTC)

        def save(text: str, at: Any) -> Tally:
            counts: Tally = Tally()
            Store(db, Classifier.from_file(None), now=lambda: at).save(
                [Article(url=d["url"], source="doj", title=d["title"], text=text, published=t0)], counts)
            return counts

        save(d["text"], t0)
        with TestClient(create_app(_config(sqlite_url), db, Access(open=True))) as c:
            def updated() -> str:
                return str(feedparser.parse(c.get("/feeds/topics/fentanyl.atom").content).entries[0].updated)

            first = updated()
            assert save(d["text"].replace(". ", ".  ", 1), t0 + timedelta(days=1))["updated"] == 0  # a trivial fix
            assert updated() == first
            later = t0 + timedelta(days=2)
            assert save(d["text"] + "\n\nThe co-defendant was sentenced to 20 years on Friday.", later)["updated"] == 1
            assert updated().startswith(later.strftime("%Y-%m-%dT%H:%M")) and updated() != first
    finally:
        db.dispose()


def test_facets_follow_new_items_at_once_and_reclassification_within_a_minute(sqlite_url: str) -> None:
    from crawler.web.engine import SUMMARY_TTL, Engine
    from pipelines.classify import Classifier
    from pipelines.items import Article
    from pipelines.store import Store
    from pipelines.tally import Tally

    db = Database(sqlite_url)
    try:
        chosen = [d for d in docs() if d["story"] == "laredo-straw"]
        t0 = datetime(2026, 4, 1, tzinfo=UTC)

        def save(d: dict[str, Any]) -> None:
            Store(db, Classifier.from_file(None), now=lambda: t0).save(
                [Article(url=d["url"], source="doj", title=d["title"], text=d["text"], published=t0)], Tally())

        now = [0.0]
        engine = Engine(db, ["tda", "fentanyl", "firearms", "agreement"], clock=lambda: now[0])
        save(chosen[0])
        assert dict(engine.facets("")["source"]) == {"doj": 1}
        save(chosen[1])  # a new item: counted on the next request, whatever the cache holds
        assert dict(engine.facets("")["source"]) == {"doj": 2}
        with db.write() as s:  # a change the items table does not show (a reclassification)
            s.execute(text("DELETE FROM item_topics"))
        assert engine.facets("")["topic"]  # kept...
        now[0] += SUMMARY_TTL + 1
        assert engine.facets("")["topic"] == []  # ...for at most a minute
        assert engine.timeline("").series == {}
    finally:
        db.dispose()


# -- access and triage ----------------------------------------------------------------------------------------

def test_beyond_loopback_every_url_needs_a_login_or_a_token(locked: TestClient, fx: Fixture) -> None:
    item = fx.ids["doj-25-1075"]
    for path in ("/api/items", f"/api/items/{item}", "/api/stories", "/feeds/topics/tda.atom",
                 "/feeds/search.atom?q=x", "/healthz", "/openapi.json", "/api/export.csv"):
        r = locked.get(path)
        assert r.status_code == 401, path
    for path in ("/", f"/items/{item}", "/sources", "/alerts", "/stories/1", "/searches/fentanyl-es"):
        r = locked.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    assert locked.get("/static/htmx.min.js").status_code == 200  # the page assets are public
    from crawler.web.access import feed_token

    assert locked.get("/feeds/topics/tda.atom", params={"token": feed_token(ALICE)}).status_code == 200
    assert locked.get("/feeds/topics/tda.atom", params={"token": "wrong" * 5}).status_code == 401
    assert locked.get("/api/items", headers={"Authorization": f"Bearer {BOB.token}"}).status_code == 200
    assert locked.get("/", params={"token": BOB.token}, follow_redirects=False).status_code == 303  # pages: log in


def test_login_and_logout(locked: TestClient) -> None:
    wrong = locked.post("/login", data={"username": "alice", "password": "nope", "next": "/sources"})
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    ok = locked.post("/login", data={"username": "alice", "password": ALICE.password, "next": "/sources"},
                     follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/sources"
    assert locked.get("/sources").status_code == 200
    assert locked.get("/api/items").status_code == 200  # the session serves the API too
    page = locked.get("/").text
    assert "alice" in page and "token=" in page  # feed links carry the user's token for feed readers
    evil = locked.post("/login", data={"username": "alice", "password": ALICE.password,
                                       "next": "//evil.example/"}, follow_redirects=False)
    assert evil.headers["location"] == "/"
    locked.post("/logout")
    assert locked.get("/sources", follow_redirects=False).status_code == 303


def test_triage_is_per_user(locked: TestClient, fx: Fixture) -> None:
    item = fx.ids["laredo-straw"]
    alice = {"Authorization": f"Bearer {alice_token()}"}
    bob = {"Authorization": f"Bearer {BOB.token}"}
    assert locked.post(f"/api/items/{item}/triage", json={"action": "read"}, headers=alice).json()["read"] is True
    locked.post(f"/api/items/{item}/triage", json={"action": "star"}, headers=alice)
    marks = locked.post(f"/api/items/{item}/triage", json={"action": "note", "note": "check the Laredo docket"},
                        headers=alice).json()
    assert marks == {"read": True, "starred": True, "note": "check the Laredo docket"}
    assert locked.get(f"/api/items/{item}", headers=alice).json()["triage"] == marks
    assert locked.get(f"/api/items/{item}", headers=bob).json()["triage"] == {"read": False, "starred": False,
                                                                            "note": ""}
    assert locked.post(f"/api/items/{item}/triage", json={"action": "explode"}, headers=bob).status_code == 400
    assert locked.post("/api/items/999999/triage", json={"action": "read"}, headers=bob).status_code == 404
    assert locked.post(f"/api/items/{item}/triage", json={"action": "note", "note": "x" * 5000},
                       headers=bob).status_code == 400


def alice_token() -> str:
    from crawler.web.access import feed_token

    return feed_token(ALICE)


def test_starred_page_lists_the_users_marks(locked: TestClient, fx: Fixture) -> None:
    bob = {"Authorization": f"Bearer {BOB.token}"}
    item = fx.ids["az-fentanyl-reyes"]
    locked.post(f"/api/items/{item}/triage", json={"action": "star"}, headers=bob)
    assert item in [r["id"] for r in locked.get("/api/triage", headers=bob).json()["items"] if r["starred"]]
    alice_marks = locked.get("/api/triage", params={"token": alice_token()}).json()["items"]
    assert item not in [r["id"] for r in alice_marks]  # Bob's star is his own
    locked.post("/login", data={"username": "bob", "password": BOB.password})
    page = locked.get("/starred").text
    assert f'href="/items/{item}"' in page and "★" in page
    locked.post(f"/api/items/{item}/triage", json={"action": "unstar"}, headers=bob)
    assert f'href="/items/{item}"' not in locked.get("/starred").text
    locked.post("/logout")


CAROL = WebUser(name="carol", password="carols long secret", token="carol-token-0123456789abcd")
DAVE = WebUser(name="dave", password="daves long secret", token="dave-token-0123456789abcdef")


def test_is_unread_and_is_starred_read_each_users_own_marks(store: tuple[str, Fixture], app_db: Database,
                                                             fx: Fixture) -> None:
    access = Access(open=False, users=(CAROL, DAVE))
    with TestClient(create_app(_config(store[0]), app_db, access)) as c:
        carol = {"Authorization": f"Bearer {CAROL.token}"}
        dave = {"Authorization": f"Bearer {DAVE.token}"}

        def ids(q: str, who: dict[str, str]) -> set[int]:
            r = c.get("/api/items", params={"q": q, "limit": 200}, headers=who)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["total"] == len(body["items"]), q
            return {row["id"] for row in body["items"]}

        every = ids("", carol)
        starred, read = fx.ids["laredo-straw"], fx.ids["az-fentanyl-reyes"]
        assert ids("is:unread", carol) == every  # nothing marked yet (and the count is cached from here)
        c.post(f"/api/items/{starred}/triage", json={"action": "star"}, headers=carol)
        c.post(f"/api/items/{read}/triage", json={"action": "read"}, headers=carol)
        assert ids("is:starred", carol) == {starred}
        assert ids("is:read", carol) == {read}
        assert ids("is:unread", carol) == every - {read}  # a mark shows at once, not a minute later
        assert ids("-is:starred", carol) == every - {starred}
        assert ids("is:starred,read", carol) == {starred, read}
        assert ids("is:unread is:starred", carol) == {starred}
        assert ids("is:starred", dave) == set() and ids("is:unread", dave) == every  # Carol's marks are hers
        facets = c.get("/api/facets", params={"q": "is:starred"}, headers=carol).json()
        assert sum(e["count"] for e in facets["source"]) == 1
        stories = c.get("/api/stories", params={"q": "is:starred"}, headers=carol).json()["stories"]
        assert [copy["id"] for st in stories for copy in st["copies"] if copy["id"] == starred] == [starred]
        feed = feedparser.parse(c.get("/feeds/search.atom", params={"q": "is:starred", "token": CAROL.token}).text)
        assert len(feed.entries) == 1
        c.post(f"/api/items/{read}/triage", json={"action": "unread"}, headers=carol)
        assert ids("is:unread", carol) == every
        bad = c.get("/api/items", params={"q": "is:lost"}, headers=carol)
        assert bad.status_code == 400 and "is:lost: not a mark" in bad.json()["error"]
        c.post("/login", data={"username": "carol", "password": CAROL.password})
        page = c.get("/", params={"q": "is:starred"})
        assert page.status_code == 200 and f'href="/items/{starred}"' in page.text
        assert f'href="/items/{read}"' not in page.text
        assert 'href="/?q=is%3Aunread">Unread only</a>' in c.get("/").text  # one click from any search


def test_failed_logins_make_the_address_wait(store: tuple[str, Fixture], app_db: Database) -> None:
    from crawler.web.throttle import FAILURES_PER_NAME, WINDOW_SECONDS

    access = Access(open=False, users=(CAROL, DAVE))
    with TestClient(create_app(_config(store[0]), app_db, access)) as c:
        now = [1000.0]
        c.app.state.login_throttle.clock = lambda: now[0]  # type: ignore[attr-defined]
        for _ in range(FAILURES_PER_NAME):
            assert c.post("/login", data={"username": "carol", "password": "guess"}).status_code == 401
        refused = c.post("/login", data={"username": "carol", "password": CAROL.password})
        assert refused.status_code == 429, refused.text  # even the right password waits
        assert "Too many failed logins from your address: try again in 15 minutes." in refused.text
        assert refused.headers["Retry-After"] == str(int(WINDOW_SECONDS))
        assert c.get("/sources", follow_redirects=False).status_code == 303  # not logged in
        # Another name from the address is not held up by Carol's failures…
        ok = c.post("/login", data={"username": "dave", "password": DAVE.password}, follow_redirects=False)
        assert ok.status_code == 303
        c.post("/logout")
        now[0] += WINDOW_SECONDS - 30
        assert "try again in 30 seconds" in c.post("/login", data={"username": "carol", "password": "x"}).text
        now[0] += 30  # …and once the failures are older than the window, Carol may log in again.
        ok = c.post("/login", data={"username": "carol", "password": CAROL.password}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/"


def test_the_login_throttle_counts_per_name_and_per_address() -> None:
    from crawler.web.throttle import FAILURES_PER_ADDRESS, FAILURES_PER_NAME, LoginThrottle

    now = [0.0]
    t = LoginThrottle(clock=lambda: now[0])
    for i in range(FAILURES_PER_ADDRESS):  # a guesser trying many names, each fewer times than the name limit
        assert t.wait("10.0.0.9", f"user{i // (FAILURES_PER_NAME - 1)}") == 0
        t.failed("10.0.0.9", f"user{i // (FAILURES_PER_NAME - 1)}")
    assert t.wait("10.0.0.9", "someone-new") > 0  # the address has used its tries
    assert t.wait("10.0.0.7", "user0") == 0  # another address has not
    for _ in range(FAILURES_PER_NAME - 1):
        t.failed("10.0.0.7", "user0")
    t.succeeded("10.0.0.7", "user0")  # a success clears that name's failures from that address
    t.failed("10.0.0.7", "user0")
    assert t.wait("10.0.0.7", "user0") == 0


def test_writes_from_another_sites_page_are_refused(client: TestClient, fx: Fixture) -> None:
    item = fx.ids["laredo-straw"]
    r = client.post(f"/items/{item}/triage", data={"action": "read"}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    r = client.post(f"/api/items/{item}/triage", json={"action": "read"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    r = client.post(f"/api/items/{item}/triage", json={"action": "unread"}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200


def test_bound_to_loopback_other_host_names_are_refused(store: tuple[str, Fixture], app_db: Database) -> None:
    from crawler.web.app import LOOPBACK_HOSTS

    app = create_app(_config(store[0]), app_db, Access(open=True), allowed_hosts=LOOPBACK_HOSTS)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"Host": "localhost:8000"}).status_code == 200
        assert c.get("/", headers={"Host": "rebound.example"}).status_code == 400  # DNS rebinding


def test_triage_form_without_javascript(client: TestClient, fx: Fixture) -> None:
    item = fx.ids["mou-interpol-fr"]
    r = client.post(f"/items/{item}/triage", data={"action": "read", "next": "/?q=interpol"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/?q=interpol"
    page = client.get(f"/items/{item}").text
    assert "Mark unread" in page
    fragment = client.post(f"/items/{item}/triage", data={"action": "star", "next": ""},
                           headers={"HX-Request": "true", "HX-Target": f"triage-{item}"})
    assert fragment.text.lstrip().startswith(f'<div class="triage" id="triage-{item}">')
    assert "Starred" in fragment.text
    client.post(f"/items/{item}/triage", data={"action": "unread"})


def test_the_web_never_writes_the_crawls_tables(client: TestClient, app_db: Database, fx: Fixture) -> None:
    def snapshot() -> tuple[Any, ...]:
        with app_db.read() as s:
            counts = [s.scalar(select(func.count()).select_from(t)) for t in (Item, ItemTopic, Revision, Story)]
            return (*counts, s.scalar(select(func.max(Item.updated))))

    before = snapshot()
    for path in ("/", "/?q=Aragua", f"/items/{fx.ids['doj-25-1075']}", f"/stories/{fx.stories['anti-tren']}",
                 "/sources", "/alerts", "/feeds/topics/tda.atom", "/api/export.jsonl", "/api/facets"):
        assert client.get(path).status_code == 200
    assert snapshot() == before


# -- start-up checks ------------------------------------------------------------------------------------------

def test_access_policy_at_start(tmp_path: Path) -> None:
    from crawler.web.settings import ServeConfig

    assert access_for("127.0.0.1", ServeConfig(), {}, "c.yaml").open
    assert access_for("::1", ServeConfig(), {}, "c.yaml").open
    assert access_for("localhost", ServeConfig(), {}, "c.yaml").open
    with pytest.raises(AccessError, match=r"--host 0\.0\.0\.0 is not loopback: configure serve\.users"):
        access_for("0.0.0.0", ServeConfig(), {}, "c.yaml")
    users = ServeConfig(users=[ALICE])
    raw_literal = {"serve": {"users": [{"name": "alice", "password": "correct horse battery"}]}}
    with pytest.raises(AccessError, match=r"serve\.users\[0\]\.password: must come from the environment"):
        access_for("192.0.2.7", users, raw_literal, "c.yaml")
    raw_env = {"serve": {"users": [{"name": "alice", "password": "${ALICE_PASSWORD}"}]}}
    assert not access_for("192.0.2.7", users, raw_env, "c.yaml").open


def test_config_keys_load(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("searches:\n  - {name: a, query: fentanyl}\nserve:\n  users:\n"
                    "    - {name: alice, password: '${PW}'}\n", encoding="utf-8")
    config = load_config(path, env={"PW": "a long enough secret"})
    assert config.searches[0].query == "fentanyl" and config.serve.users[0].password == "a long enough secret"
