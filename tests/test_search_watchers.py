"""Saved searches and watchers that follow a query: the config's checks, and a crawl of the local site that
ends with the matching items (and only those) mailed to a local SMTP server."""

from __future__ import annotations

from pathlib import Path

import pytest
from alert_support import SmtpSink
from helpers import bw, bw_here, items_json, write_config
from localsite import Site, news_page, rss, serve
from sqlalchemy import select

from crawler.config import ConfigError, load_config
from pipelines.db import Database
from pipelines.models import AlertEvent, Item

FEED = {"name": "a", "kind": "feed", "url": "http://127.0.0.1/feed"}
HOOK = "json://127.0.0.1/x"

# (config, what the one-line message must say)
BAD: list[tuple[dict[str, object], str]] = [
    ({"searches": [{"name": "x", "query": "since:soon"}]}, "searches[0].query: since:soon: not a date"),
    ({"searches": [{"name": "x", "query": ""}]}, "searches[0].query"),
    ({"searches": [{"name": "Bad Name", "query": "a"}]}, "searches[0].name: 'Bad Name' is not a valid search name"),
    ({"searches": [{"name": "x"}]}, "searches[0].query: required key is missing"),
    ({"searches": [{"name": "x", "query": "a", "colour": 1}]}, "searches[0].colour: unknown key"),
    ({"searches": [{"name": "x", "query": "a"}, {"name": "x", "query": "b"}]},
     "searches[1].name: duplicate search name 'x'"),
    ({"watchers": [{"name": "d", "notify": [HOOK], "query": "lang:english"}]},
     "watchers[0].query: lang:english: not a language code"),
    ({"watchers": [{"name": "d", "notify": [HOOK], "search": "nope"}]},
     "watchers[0].search: no saved search named 'nope'"),
    ({"searches": [{"name": "x", "query": "a"}],
      "watchers": [{"name": "d", "notify": [HOOK], "search": "x", "query": "b"}]},
     "watchers[0].search: give query or search, not both"),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_searches_are_one_line(tmp_path: Path, data: dict[str, object], message: str) -> None:
    path = write_config(tmp_path / "bad.yaml", {"sources": [FEED], **data})
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_query_naming_an_unknown_topic_stops_every_command(tmp_path: Path) -> None:
    for data, where in (({"searches": [{"name": "x", "query": "topic:cartels"}]}, "searches[0].query"),
                        ({"watchers": [{"name": "d", "notify": [HOOK], "query": "a topic:cartels"}]},
                         "watchers[0].query")):
        path = write_config(tmp_path / "c.yaml", {"database": f"sqlite:///{tmp_path / 'bw.db'}",
                                                  "sources": [FEED], **data})
        for command in (["items"], ["crawl"], ["alerts", "list"]):
            proc = bw_here(path, *command)
            assert proc.returncode == 2, (command, proc.stderr)
            assert f"{where}: topic:cartels: unknown topic" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_a_watcher_follows_a_saved_search() -> None:
    from crawler.config import Config

    config = Config.model_validate({"searches": [{"name": "ports", "query": '"puerto cabello" contrabando'}],
                                    "watchers": [{"name": "d", "notify": [HOOK], "search": "ports"}]})
    assert config.watchers[0].query == '"puerto cabello" contrabando'
    assert config.watchers[0].query_label() == "ports"
    assert config.saved_search("ports") is not None and config.saved_search("nope") is None


PAGES = {
    "/news/extradicion": ("Extraditan a un miembro del Tren de Aragua desde Colombia", [
        "Un integrante del Tren de Aragua fue enviado a Estados Unidos tras su extradición, aprobada en octubre.",
        "La fiscalía lo acusa de dirigir una red de extorsión a comerciantes venezolanos en varias ciudades.",
        "Su defensa pidió que se le juzgue en Colombia; la corte rechazó el pedido la semana pasada."]),
    "/news/puerto": ("Decomisan mercancía de contrabando en Puerto Cabello", [
        "La aduana retuvo tres contenedores con cigarrillos y licores declarados como repuestos de auto.",
        "Según los fiscales, el contrabando llegaba por Puerto Cabello desde hace al menos dos años.",
        "Dos funcionarios portuarios quedaron detenidos mientras avanza la investigación."]),
    "/news/feria": ("Abre la feria del libro de Maracay", [
        "La feria reúne a cuarenta editoriales y se extiende hasta el domingo en el parque central.",
        "Habrá lecturas para niños, talleres de escritura y una muestra de fotografía regional.",
        "La entrada es libre y los organizadores esperan más visitantes que el año pasado."]),
}


def test_a_crawl_mails_what_the_followed_queries_match(tmp_path: Path, smtp: SmtpSink) -> None:
    site = Site()
    with serve(site):
        for path, (headline, paragraphs) in PAGES.items():
            site.add(path, news_page(headline, paragraphs, outlet="Diario del Centro"))
        site.add("/feed", rss([{"title": h, "link": site.url(p)} for p, (h, _) in PAGES.items()],
                              title="Diario del Centro"), content_type="application/rss+xml")
        config = write_config(tmp_path / "bw.yaml", {
            "database": f"sqlite:///{tmp_path / 'bw.db'}",
            "crawl": {"download_delay": 0, "extract_workers": 1},
            "sources": [{"name": "diario", "kind": "feed", "url": site.url("/feed")}],
            "searches": [{"name": "ports", "query": '"puerto cabello" contrabando'}],
            "watchers": [
                {"name": "extra", "notify": [smtp.url("extra@example.org")], "max_age": "3650d",
                 "query": '"Tren de Aragua" extradicion'},
                {"name": "ports", "notify": [smtp.url("ports@example.org")], "max_age": "3650d", "search": "ports"},
                {"name": "guns", "notify": [smtp.url("guns@example.org")], "max_age": "3650d",
                 "query": "contrabando topic:firearms"},
            ],
        })
        proc = bw(config, "crawl")
    assert proc.returncode == 0, proc.stderr
    by_to = {m["To"]: m for m in smtp.messages}
    assert sorted(by_to) == ["extra@example.org", "ports@example.org"] and len(smtp.messages) == 2
    assert "Tren de Aragua desde Colombia" in by_to["extra@example.org"]["Subject"]
    assert by_to["ports@example.org"]["Subject"] == (
        "[borderwatch] ports: Decomisan mercancía de contrabando en Puerto Cabello")
    stored = {i["title"]: i for i in items_json(config)}
    assert len(stored) == 3 and stored["Abre la feria del libro de Maracay"]["topics"] == []
    assert stored["Decomisan mercancía de contrabando en Puerto Cabello"]["topics"] == []
    # An outbox event for the items a topic or a followed query matched, none for the fair.
    db = Database(f"sqlite:///{tmp_path / 'bw.db'}")
    try:
        with db.read() as s:
            evented = set(s.scalars(select(AlertEvent.item_id)))
    finally:
        db.dispose()
    fair = stored["Abre la feria del libro de Maracay"]["id"]
    assert fair not in evented and len(evented) == 2
    # The same grammar from the command line.
    found = items_json(config, "--search", '"puerto cabello" -feria')
    assert [i["title"] for i in found] == ["Decomisan mercancía de contrabando en Puerto Cabello"]


def test_the_store_writes_an_event_when_a_followed_query_matches(db: Database) -> None:
    """New items and fuller texts taking an item over, matched through the index in the store's transaction."""
    from pipelines.classify import Classifier
    from pipelines.items import API_TEXT, FEED_TEXT, Article
    from pipelines.search import parse
    from pipelines.store import Store
    from pipelines.tally import Tally

    store = Store(db, Classifier.from_file(None), queries=[parse('"puerto cabello" contrabando')])
    counts = Tally()
    summary = "La aduana retuvo tres contenedores en el puerto."
    full = summary + " El contrabando entraba por Puerto Cabello desde hace dos años, según la fiscalía."
    store.save([
        Article(url="https://example.org/match", source="diario", title="Contrabando en Puerto Cabello",
                text="Tres contenedores retenidos por la aduana."),
        Article(url="https://example.org/fair", source="diario", title="Feria del libro", text="Lecturas y talleres."),
        Article(url="https://example.org/later", source="feed", title="Contenedores retenidos", text=summary,
                authority=FEED_TEXT),
    ], counts)

    def evented() -> dict[str, dict[str, object]]:
        with db.read() as s:
            rows = s.execute(select(Item.url, AlertEvent.payload).join(Item, Item.id == AlertEvent.item_id))
            return {url.rsplit("/", 1)[1]: payload for url, payload in rows}

    assert evented() == {"match": {"topics": [], "query": True}}
    # The API's full text takes the feed's summary over: now it matches, and that is news.
    store.save([Article(url="https://example.org/later", source="api", title="Contenedores retenidos", text=full,
                        authority=API_TEXT)], counts)
    assert counts["fuller_text"] == 1
    assert set(evented()) == {"match", "later"}
    # Without followed queries nothing without a topic is news.
    plain = Store(db, Classifier.from_file(None))
    plain.save([Article(url="https://example.org/other", source="diario", title="Contrabando en Puerto Cabello otra vez",
                        text="Más contenedores.")], counts)
    assert set(evented()) == {"match", "later"}
