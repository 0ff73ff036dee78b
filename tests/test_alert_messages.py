"""What alerts say, end to end: both parts of every e-mail, display names, excerpts and topic labels from the
config, through real SMTP and webhook servers, on SQLite and PostgreSQL; and a real crawl of a local site."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from alert_support import SmtpSink, Webhook, seed_item, seed_update, watcher
from click.testing import CliRunner
from helpers import bw, items_json, write_config
from localsite import Site, justice_page, rss, serve
from sqlalchemy import create_engine, inspect, select, text

from alerts.cli import AlertsApp, alerts
from alerts.config import AlertSettings, WatcherConfig
from alerts.dispatch import dispatch
from alerts.views import Labels
from crawler.config import load_config
from crawler.fetch.spiders.feed import parse_feed
from pipelines.db import MIGRATIONS, Database
from pipelines.extract import extract
from pipelines.models import Item
from pipelines.timeutil import utcnow

# apprise 2.2 imports the stdlib `imghdr` module (deprecated in 3.11, gone in 3.13) when it loads its e-mail
# plugin; that is apprise's business, not ours, so exactly that warning is ignored here.
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

LEAD = ("Eight members of Tren de Aragua were charged today in Nashville with sex trafficking. The defendants ran "
        "a forced-prostitution ring out of motels along Interstate 24, prosecutors said. The investigation began "
        "in 2024 when a victim escaped from a motel room and called the police from a gas station nearby.")
FIRST_TWO = LEAD[:LEAD.index(" The investigation")]
CARTELS_TOPICS = """\
version: 1
topics:
  - id: cartels
    label: Mexican cartels
    description: Items about Mexican drug cartels.
    threshold: 1.0
    rules:
      - id: cartel
        weight: 1.0
        patterns: [cartel]
"""


def text_and_html(message: EmailMessage) -> tuple[str, str]:
    return SmtpSink.text_of(message), SmtpSink.html_of(message)


def seed_story(db: Database, **options: Any) -> tuple[int, list[str]]:
    """A DOJ release and two outlets' copies of it; → (the release's item id, [its url, the copies' urls])."""
    title = "Eight TdA members charged with sex trafficking in Nashville motels"
    item, story = seed_item(db, title=title, text=f"{title}\n{LEAD}", site_name="U.S. Department of Justice",
                            url="https://www.justice.gov/opa/pr/eight-tda-members", **options)
    seed_item(db, title="Eight charged in motel ring", source="border-report", story=story, event=False,
              url="http://www.borderreport.example/news/eight-charged/", site_name="Border Report")
    seed_item(db, title="Venezuelan gang members charged", source="wire", story=story, event=False,
              url="https://wire.example/a/123?id=9")
    return item, ["https://www.justice.gov/opa/pr/eight-tda-members",
                  "http://www.borderreport.example/news/eight-charged/", "https://wire.example/a/123?id=9"]


def test_new_update_and_digest_emails_carry_every_link_in_their_text_part(db: Database, smtp: SmtpSink) -> None:
    t0 = utcnow()
    ws = [watcher("desk", smtp.url("desk@example.org")),
          watcher("morning", smtp.url("morning@example.org"), mode="digest", every="1h")]
    labels = Labels(sources={"wire": "The Wire Service"})
    item, urls = seed_story(db, now=t0)
    dispatch(db, ws, now=t0, labels=labels)
    [new] = smtp.messages
    assert new["To"] == "desk@example.org"
    text, html = text_and_html(new)
    for url in urls:
        assert url in text, url  # every link in full, in the part text-only readers see
        assert f'href="{url.replace("&", "&amp;")}"' in html, url
    assert "\nU.S. Department of Justice · " in text  # the site's own name, not "doj-api"
    assert f"- Border Report: Eight charged in motel ring ({t0 - timedelta(hours=1):%Y-%m-%d}) {urls[1]}" in text
    assert "- The Wire Service: Venezuelan gang members charged" in text  # the config's label wins
    assert f"Read it at U.S. Department of Justice: {urls[0]}" in text
    assert FIRST_TWO in text and FIRST_TWO in html and "gas station" not in text

    seed_update(db, item, "a ninth defendant added", now=t0 + timedelta(minutes=5))
    dispatch(db, ws, now=t0 + timedelta(minutes=5), labels=labels)
    update = [m for m in smtp.messages if m["To"] == "desk@example.org"][-1]
    assert update["Subject"].startswith("[borderwatch] Updated: ")
    text, _ = text_and_html(update)
    assert text.startswith("Updated: a ninth defendant added")
    assert all(url in text for url in urls)

    dispatch(db, ws, now=t0 + timedelta(minutes=61), labels=labels)
    [digest] = [m for m in smtp.messages if m["To"] == "morning@example.org"]
    assert digest["Subject"].startswith("[borderwatch] Digest: 1 new story, 1 update")
    text, html = text_and_html(digest)
    assert all(url in text for url in urls)
    assert "Also carried by 2 other outlets." in html


def test_test_email_has_our_text_part_too(db: Database, smtp: SmtpSink) -> None:
    @dataclass
    class Config:
        watchers: list[WatcherConfig]
        alerts: AlertSettings = field(default_factory=lambda: AlertSettings.model_validate({}))

    app = AlertsApp(Config([watcher("desk", smtp.url())]), db)
    result = CliRunner().invoke(alerts, ["test", "desk"], obj=app, catch_exceptions=False)
    assert result.exit_code == 0
    text, html = text_and_html(smtp.messages[0])
    assert text.startswith("This is a test message from borderwatch for the watcher desk.")
    assert "<b>desk</b>" in html


def test_topic_and_source_labels_from_the_config_arrive_in_every_format(
    db: Database, smtp: SmtpSink, hook: Webhook, tmp_path: Path
) -> None:
    (tmp_path / "topics.yaml").write_text(CARTELS_TOPICS, encoding="utf-8")
    config = load_config(write_config(tmp_path / "bw.yaml", {
        "database": "sqlite:///unused.db",
        "topics": str(tmp_path / "topics.yaml"),
        "sources": [{"name": "doj-news", "kind": "feed", "url": "https://www.justice.gov/news/rss",
                     "label": "DOJ press releases"}],
    }))
    ws = [watcher("desk", [smtp.url(), hook.url("/text"), f"mmost://127.0.0.1:{hook.port}/t0ken"],
                  topics=["cartels"])]
    seed_item(db, title="Leader of a cartel cell extradited", source="doj-news", topics=["cartels"],
              site_name="Justice News", evidences={"cartels": [
                  {"phrase": "cartel", "sentence": "The cartel cell moved tons of meth.", "weight": 1.0,
                   "where": "body"}]})
    report = dispatch(db, ws, labels=config.labels())
    assert report.sent == 1 and report.errors == []
    subject = "[borderwatch] Mexican cartels: Leader of a cartel cell extradited"
    text, html = text_and_html(smtp.messages[0])
    assert smtp.messages[0]["Subject"] == subject
    assert "- Mexican cartels: \"The cartel cell moved tons of meth.\"" in text and "DOJ press releases · " in text
    assert "<b>Mexican cartels</b>" in html and "DOJ press releases &middot; " in html
    [plain] = [r.payload for r in hook.received if r.path == "/text"]
    assert plain["title"] == subject and "- Mexican cartels: " in plain["message"]
    assert "DOJ press releases · " in plain["message"]
    [chat] = [r.payload for r in hook.received if r.path == "/hooks/t0ken"]
    assert "- **Mexican cartels**: The **cartel** cell" in chat["text"] and "DOJ press releases · " in chat["text"]


def test_a_database_at_0001_gets_site_names(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    engine = create_engine(database_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO items (url, source, title, text, first_seen, updated, content_hash, doj_topics, "
            "doj_components, revision_count, authority) VALUES ('https://e.org/a', 'doj-api', 'T', 'x', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'h', '[]', '[]', 0, 2)"))
    engine.dispose()
    db = Database(database_url)
    try:
        assert "site_name" in {c["name"] for c in inspect(db.engine).get_columns("items")}
        with db.write() as s:
            item = s.scalars(select(Item)).one()
            assert item.site_name is None and item.title == "T"
            item.site_name = "Example News"
        with db.read() as s:
            assert s.scalars(select(Item.site_name)).one() == "Example News"
    finally:
        db.dispose()


@pytest.mark.parametrize(("head", "expected"), [
    ('<meta property="og:site_name" content=" Border  Report ">', "Border Report"),
    ('<meta content="gob.mx" property="og:site_name" />', "gob.mx"),  # as gob.mx writes it
    ('<meta name="application-name" content="Justice News">', "Justice News"),
    ('<meta property="og:site_name" content=""><meta name="application-name" content="App">', "App"),
    ("", None),
])
def test_the_page_names_its_site(head: str, expected: str | None) -> None:
    page = (f"<html><head><title>x</title>{head}</head><body><article><p>{LEAD}</p></article></body></html>")
    assert extract(page, "https://e.org/a").site_name == expected


def test_the_feed_names_its_site() -> None:
    body = rss([{"title": "A", "link": "https://e.org/a"}], title="Justice News").encode()
    [(_, hints, _)] = parse_feed(body)[0]
    assert hints["site_name"] == "Justice News"


def test_a_crawl_with_an_email_watcher_sends_both_parts_with_links(tmp_path: Path, smtp: SmtpSink) -> None:
    site = Site()
    with serve(site):
        paragraphs = ["Eight members of Tren de Aragua were charged today in Nashville with sex trafficking.",
                      "The defendants ran a forced-prostitution ring out of motels along Interstate 24 from 2023 "
                      "to 2025, prosecutors said, moving the victims between cities every few weeks.",
                      "The case was investigated by HSI Nashville and the FBI, with the help of the "
                      "Metropolitan Nashville Police Department.",
                      "Tren de Aragua is a Venezuelan transnational criminal organization."]
        site.add("/opa/pr/tda-nashville", justice_page("Eight Tren de Aragua Members Charged in Nashville",
                                                       paragraphs, topics=("Human Trafficking",)))
        site.add("/news/rss", rss([{"title": "Eight Tren de Aragua Members Charged in Nashville",
                                    "link": site.url("/opa/pr/tda-nashville")}], title="Justice News"),
                 content_type="application/rss+xml")
        # The shipped topics with one label changed: the crawl's alerts must use the file's label.
        shipped = (Path(__file__).resolve().parent.parent / "config" / "topics.yaml").read_text(encoding="utf-8")
        assert shipped.count("label: Tren de Aragua\n") == 1
        topics = tmp_path / "topics.yaml"
        topics.write_text(shipped.replace("label: Tren de Aragua\n", "label: TdA gang\n"), encoding="utf-8")
        config = write_config(tmp_path / "bw.yaml", {
            "database": f"sqlite:///{tmp_path / 'bw.db'}",
            "topics": str(topics),
            "crawl": {"download_delay": 0, "extract_workers": 1},
            "sources": [{"name": "doj-news", "kind": "feed", "url": site.url("/news/rss")}],
            "watchers": [{"name": "desk", "notify": [smtp.url()], "topics": ["tda"], "max_age": "30d"}],
        })
        proc = bw(config, "crawl")
    assert proc.returncode == 0, proc.stderr
    [mail] = smtp.messages
    text, html = text_and_html(mail)
    [item] = items_json(config)
    article = item["url"]  # what the item's link is (the links work decides it), written out in full
    assert mail["Subject"] == "[borderwatch] TdA gang: Eight Tren de Aragua Members Charged in Nashville"
    assert "\nJustice News · " in text  # the feed's own name
    assert paragraphs[0] in text and paragraphs[1] in html and "HSI Nashville" not in text  # the excerpt
    assert f"Read it at Justice News: {article}" in text
    assert f'href="{article}"' in html
    evidence = text[text.index("- TdA gang: "):].splitlines()[0]
    assert "Members Charged in Nashville" not in evidence  # a body sentence, not the title again
    assert paragraphs[3] in evidence  # ... and not the excerpt's sentence again


def test_an_email_url_that_asks_for_plain_text_gets_our_text(db: Database, smtp: SmtpSink) -> None:
    _, urls = seed_story(db)
    dispatch(db, [watcher("desk", smtp.url() + "&format=text")])
    [mail] = smtp.messages
    assert mail.get_content_type() == "text/plain"
    body = str(mail.get_content())
    assert all(url in body for url in urls) and "Also carried by:" in body
