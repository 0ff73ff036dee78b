"""Message rendering, digest windows and channel helpers: pure functions, no database, no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from markupsafe import escape

from alerts.channels import channels_of, message_format, scrub
from alerts.config import WatcherConfig
from alerts.deliver import backoff
from alerts.digest import digest_due, next_time_of_day, window_close
from alerts.load import best_evidence
from alerts.render import Renderer, excerpt, md_escape, shorten
from alerts.views import HealthAlert, Labels, StoryAlert, StoryCopy, TopicEvidence
from pipelines.classify import topic_labels

# apprise 2.2 imports the stdlib `imghdr` module (deprecated in 3.11, gone in 3.13) when it loads its e-mail
# plugin; that is apprise's business, not ours, so exactly that warning is ignored here.
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

T0 = datetime(2026, 11, 3, 15, 5, tzinfo=UTC)

TDA = StoryAlert(
    kind="new",
    title="Eight TdA members charged with sex trafficking in Nashville motels",
    url="https://www.justice.gov/opa/pr/eight-tda-members-charged",
    source="doj-api",
    published=T0,
    topics=(
        TopicEvidence("tda", 0.93, "Eight members of Tren de Aragua (TdA) were charged with sex trafficking.",
                      "Tren de Aragua"),
        TopicEvidence("firearms", 0.41, "One defendant also sold rifles to a straw purchaser.", "sold rifles"),
    ),
    copies=(
        StoryCopy("usao-mdtn", "Eight charged in motel sex-trafficking ring", "https://www.justice.gov/usao-mdtn/x",
                  T0),
        StoryCopy("ap", "Venezuelan gang members charged", "https://apnews.com/x", None),
    ),
    item_id=1,
    story_id=1,
)


def _watcher(**options: object) -> WatcherConfig:
    return WatcherConfig.model_validate({"name": "desk", "notify": ["json://127.0.0.1:9/hook"], **options})


# -- subjects and bodies ------------------------------------------------------------------------------------------


def test_subject_names_topics_and_headline() -> None:
    message = Renderer(follow=["tda"]).alert(TDA, "text")
    assert message.title == (
        "[borderwatch] Tren de Aragua: Eight TdA members charged with sex trafficking in Nashville motels"
    )
    both = Renderer().alert(TDA, "text")  # a watcher of every topic sees every topic, best first
    assert both.title.startswith("[borderwatch] Tren de Aragua + Firearms trafficking: Eight TdA")


def test_long_headline_is_cut_at_a_word_with_an_ellipsis() -> None:
    long = StoryAlert(**{**TDA.__dict__, "title": "Eight TdA members charged with sex trafficking " * 4})
    title = Renderer(follow=["tda"]).alert(long, "text").title
    assert title == (
        "[borderwatch] Tren de Aragua: Eight TdA members charged with sex trafficking Eight TdA members charged with…"
    )


def test_text_body_has_source_date_link_evidence_and_copies() -> None:
    body = Renderer(timezone="America/Chicago").alert(TDA, "text").body
    assert "doj-api · 2026-11-03 09:05 CST" in body
    assert TDA.url in body
    assert '- Tren de Aragua: "Eight members of Tren de Aragua (TdA) were charged with sex trafficking."' in body
    assert '- Firearms trafficking: "One defendant also sold rifles to a straw purchaser."' in body
    assert "Also carried by:" in body
    assert "- usao-mdtn: Eight charged in motel sex-trafficking ring (2026-11-03) https://www.justice.gov/usao-mdtn/x" in body
    assert "- ap: Venezuelan gang members charged (date unknown) https://apnews.com/x" in body


def test_html_body_escapes_and_highlights_the_evidence_phrase() -> None:
    hostile = StoryAlert(**{**TDA.__dict__, "title": "<script>alert(1)</script> & friends"})
    message = Renderer().alert(hostile, "html")
    assert message.body_format == "html"
    assert "<script>" not in message.body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in message.body
    assert "Eight members of <b>Tren de Aragua</b> (TdA)" in message.body
    assert f'href="{TDA.url}"' in message.body
    assert "usao-mdtn" in message.body and "Also carried by" in message.body


def test_markdown_body_links_and_escapes() -> None:
    tricky = StoryAlert(**{**TDA.__dict__, "title": "Charges in *Operation* [Take Back]_America"})
    body = Renderer().alert(tricky, "markdown").body
    assert f"**[Charges in \\*Operation\\* \\[Take Back\\]\\_America]({TDA.url})**" in body
    assert "- **Tren de Aragua**: Eight members of **Tren de Aragua** (TdA)" in body
    assert "_Also carried by:_ [usao-mdtn](https://www.justice.gov/usao-mdtn/x), [ap](https://apnews.com/x)" in body


def test_many_copies_are_counted_not_listed() -> None:
    copies = tuple(StoryCopy(f"outlet-{i}", f"Copy {i}", f"https://e.org/{i}") for i in range(11))
    body = Renderer().alert(StoryAlert(**{**TDA.__dict__, "copies": copies}), "text").body
    assert "outlet-7" in body and "outlet-8" not in body
    assert "- and 3 more" in body


def test_update_says_what_changed() -> None:
    update = StoryAlert(**{**TDA.__dict__, "kind": "update", "reason": "title changed; a ninth defendant added"})
    message = Renderer(follow=["tda"]).alert(update, "text")
    assert message.title.startswith("[borderwatch] Updated: Tren de Aragua: Eight TdA")
    assert message.body.startswith("Updated: title changed; a ninth defendant added")
    html = Renderer().alert(update, "html").body
    assert "<b>Updated.</b> title changed; a ninth defendant added" in html


def test_health_and_recovery_are_short() -> None:
    at = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    health = HealthAlert("health", "doj-news", "failing: 3 passes in a row", "HTTP 503 from www.justice.gov", at)
    message = Renderer().alert(health, "text")
    assert message.title == "[borderwatch] Source problem: doj-news: failing: 3 passes in a row"
    assert message.body == (
        "doj-news: failing: 3 passes in a row\nHTTP 503 from www.justice.gov\nSince 2026-11-03 12:00 UTC\n"
    )
    recovery = Renderer().alert(HealthAlert("recovery", "doj-news", "works again"), "markdown")
    assert recovery.title == "[borderwatch] Source recovered: doj-news: works again"
    assert len(recovery.body.splitlines()) <= 3


def test_digest_groups_by_topic_followed_first() -> None:
    fentanyl = StoryAlert(
        kind="new", title="Man sentenced for fentanyl that caused a fatal overdose", url="https://e.org/f",
        source="usao-az", published=T0, topics=(TopicEvidence("fentanyl", 0.8, "He sold fentanyl pills.", "fentanyl"),),
    )
    firearms = StoryAlert(**{**fentanyl.__dict__, "title": "Straw purchaser sentenced", "url": "https://e.org/g",
                             "topics": (TopicEvidence("firearms", 0.7, "He bought 40 rifles.", "rifles"),)})
    update = StoryAlert(**{**TDA.__dict__, "kind": "update", "reason": "a ninth defendant added"})
    renderer = Renderer(follow=["fentanyl", "tda", "firearms"])
    message = renderer.digest([TDA, firearms, fentanyl, update], "text", since=T0 - timedelta(hours=1))
    assert message.title == (
        "[borderwatch] Digest: 3 new stories, 1 update (Fentanyl 1, Tren de Aragua 1, Firearms trafficking 1)"
    )
    body = message.body
    order = [body.index(h) for h in ("== Fentanyl (1) ==", "== Tren de Aragua (1) ==",
                                     "== Firearms trafficking (1) ==", "== Updated (1) ==")]
    assert order == sorted(order)
    assert "Changed: a ninth defendant added" in body
    # a digest entry shows the primary topic's evidence only; in text, the other outlets with their links
    tda_section = body[body.index("== Tren de Aragua"):body.index("== Firearms")]
    assert "sold rifles" not in tda_section and "Also carried by:" in tda_section
    assert "https://www.justice.gov/usao-mdtn/x" in tda_section and "https://apnews.com/x" in tda_section
    html = renderer.digest([TDA, fentanyl], "html").body
    assert html.index(">Fentanyl (1)</h1>") < html.index(">Tren de Aragua (1)</h1>")
    assert "Also carried by 2 other outlets." in html  # the HTML digest stays compact: a count


def test_test_message_and_formats() -> None:
    for fmt in ("html", "markdown", "text"):
        message = Renderer().test("desk", fmt)
        assert message.title == "[borderwatch] Test message for watcher desk"
        assert "desk" in message.body and message.body_format == fmt


def test_user_templates_override_one_file(tmp_path: Path) -> None:
    (tmp_path / "new.txt.j2").write_text("NEW {{ story.title }} <{{ story.url }}>\n", encoding="utf-8")
    renderer = Renderer(tmp_path)
    assert renderer.alert(TDA, "text").body == f"NEW {TDA.title} <{TDA.url}>\n"
    assert "Also carried by" in renderer.alert(TDA, "html").body  # the rest still comes from the shipped set


def test_a_broken_user_template_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "new.txt.j2").write_text("{{ story.no_such_field }}", encoding="utf-8")
    with pytest.raises(Exception, match="no_such_field"):
        Renderer(tmp_path).alert(TDA, "text")


# -- small pure helpers (table-driven) ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "width", "expected"), [
    ("short", 10, "short"),
    ("  spaced \n out  ", 20, "spaced out"),
    ("Eight TdA members charged with sex trafficking", 30, "Eight TdA members charged…"),
    ("Supercalifragilisticexpialidocious", 10, "Supercali…"),
])
def test_shorten(text: str, width: int, expected: str) -> None:
    assert shorten(text, width) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("plain", "plain"),
    ("*bold* _it_ `code` [link]", "\\*bold\\* \\_it\\_ \\`code\\` \\[link\\]"),
])
def test_md_escape(text: str, expected: str) -> None:
    assert md_escape(text) == expected


@pytest.mark.parametrize(("url", "fmt"), [
    ("mailto://user:pw@example.org", "html"),
    ("mailtos://user:pw@example.org", "html"),
    ("slack://T000/B000/XXXX", "markdown"),
    ("msteams://a/b/c/d", "markdown"),
    ("discord://1/abc", "markdown"),
    ("tgram://123:abc/456", "markdown"),
    ("ntfy://topic", "markdown"),
    ("json://127.0.0.1:8080/hook", "text"),
    ("pover://u@t", "text"),
])
def test_message_format_by_scheme(url: str, fmt: str) -> None:
    assert message_format(url) == fmt


@pytest.mark.parametrize(("url", "secret"), [
    ("json://user:hunter2pw@127.0.0.1:8080/hook", "hunter2pw"),
    ("mailto://desk:s3cr3tpass@mail.example.org:2525/a@example.org", "s3cr3tpass"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "TIiajkdnlazkcOXrIdevi7FQ"),
])
def test_scrub_hides_what_apprise_hides(url: str, secret: str) -> None:
    text = f"Failed to send to {url}: token {secret} rejected"
    cleaned = scrub(text, url)
    assert secret not in cleaned
    assert "rejected" in cleaned
    channel = channels_of(WatcherConfig.model_validate({"name": "w", "notify": [url]}))[0]
    assert secret not in channel.name and secret not in repr(channel)


def test_channels_that_look_alike_get_numbered() -> None:
    w = WatcherConfig.model_validate({"name": "w", "notify": ["json://u:one1@h/x", "json://u:two2@h/x"]})
    assert [c.name for c in channels_of(w)] == ["json://u:****@h/x", "json://u:****@h/x #2"]


def test_best_evidence_takes_the_heaviest_sentence() -> None:
    evidence = [
        {"phrase": "TdA", "sentence": "", "weight": 5, "where": "title"},
        {"phrase": "Tren de Aragua", "sentence": "Members of Tren de Aragua were charged.", "weight": 2},
        {"phrase": "gang", "sentence": "The gang operated in motels.", "weight": 1},
        "not a mapping",
    ]
    assert best_evidence(evidence) == ("Members of Tren de Aragua were charged.", "Tren de Aragua")
    assert best_evidence(None) == ("", "")


def test_backoff_doubles_to_the_cap() -> None:
    from alerts.config import AlertSettings

    settings = AlertSettings.model_validate({"backoff": "30s", "backoff_cap": "5m"})
    assert [backoff(n, settings).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]


# -- digest windows -----------------------------------------------------------------------------------------------


def test_every_window_counts_from_the_last_digest() -> None:
    w = _watcher(mode="digest", every="1h")
    assert not digest_due(w, last_sent=None, oldest_waiting=T0, now=T0 + timedelta(minutes=59))
    assert digest_due(w, last_sent=None, oldest_waiting=T0, now=T0 + timedelta(hours=1))
    assert not digest_due(w, last_sent=T0, oldest_waiting=T0 + timedelta(minutes=50), now=T0 + timedelta(minutes=55))
    assert digest_due(w, last_sent=T0, oldest_waiting=T0 + timedelta(minutes=50), now=T0 + timedelta(minutes=61))


def test_at_window_closes_at_the_local_time_of_day() -> None:
    w = _watcher(mode="digest", at="08:00", timezone="America/Mexico_City")  # UTC-6, no DST
    waiting = datetime(2026, 11, 3, 20, 0, tzinfo=UTC)  # 14:00 in Mexico City
    assert window_close(w, last_sent=None, oldest_waiting=waiting) == datetime(2026, 11, 4, 14, 0, tzinfo=UTC)
    assert not digest_due(w, last_sent=None, oldest_waiting=waiting, now=datetime(2026, 11, 4, 13, 59, tzinfo=UTC))
    assert digest_due(w, last_sent=None, oldest_waiting=waiting, now=datetime(2026, 11, 4, 14, 0, tzinfo=UTC))
    # an old digest does not make a new alert go out at once: it waits for the next 08:00
    long_ago = datetime(2026, 10, 1, 14, 0, tzinfo=UTC)
    assert not digest_due(w, last_sent=long_ago, oldest_waiting=waiting, now=datetime(2026, 11, 4, 9, 0, tzinfo=UTC))


def test_next_time_of_day_across_dst() -> None:
    # New York leaves DST on 2026-11-01: 08:00 is 12:00 UTC before, 13:00 UTC after.
    assert next_time_of_day(datetime(2026, 10, 31, 13, 0, tzinfo=UTC), "08:00", "America/New_York") == datetime(
        2026, 11, 1, 13, 0, tzinfo=UTC
    )
    assert next_time_of_day(datetime(2026, 10, 30, 11, 0, tzinfo=UTC), "08:00", "America/New_York") == datetime(
        2026, 10, 30, 12, 0, tzinfo=UTC
    )


def test_every_and_at_whichever_first() -> None:
    w = _watcher(mode="digest", every="12h", at="08:00")
    waiting = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
    assert window_close(w, last_sent=None, oldest_waiting=waiting) == datetime(2026, 11, 3, 8, 0, tzinfo=UTC)


# -- what a message says: text parts, display names, excerpts, evidence, labels ----------------------------------

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
CARTELS = StoryAlert(
    kind="new", title="Leader of a cartel cell extradited", url="https://www.justice.gov/opa/pr/cartel-cell",
    source="doj-news", published=T0, topics=(TopicEvidence("cartels", 1.2, "The cartel cell moved tons of meth.",
                                                           "cartel"),),
)
LEAD = ("A federal grand jury in Nashville returned an indictment charging eight members of Tren de Aragua with sex "
        "trafficking. According to U.S. Attorney Jane Doe, the defendants ran a forced-prostitution ring out of "
        "motels along Interstate 24. The investigation began in 2024 after a victim escaped and called the police "
        "from a gas station near the motel.")


def _text_of_every_kind(renderer: Renderer) -> dict[str, str]:
    update = StoryAlert(**{**TDA.__dict__, "kind": "update", "reason": "a ninth defendant added"})
    out: dict[str, str] = {}
    for kind, message in (("new", renderer.alert(TDA, "html")), ("update", renderer.alert(update, "html")),
                          ("digest", renderer.digest([TDA, update], "html")),
                          ("health", renderer.alert(HealthAlert("health", "doj-news", "failing"), "html")),
                          ("test", renderer.test("desk", "html"))):
        assert message.body_format == "html" and message.text is not None, kind
        assert "<" not in message.text, kind  # plain text, not HTML
        out[kind] = message.text
    return out


def test_html_messages_carry_a_text_part_with_every_link_in_full() -> None:
    texts = _text_of_every_kind(Renderer())
    for kind in ("new", "update", "digest"):
        assert TDA.url in texts[kind], kind
        for copy in TDA.copies:
            assert copy.url in texts[kind], (kind, copy.url)
    assert f"Read it at doj-api: {TDA.url}" in texts["new"]
    assert texts["update"].startswith("Updated: a ninth defendant added")
    assert texts["health"].startswith("doj-news: failing")
    assert "watcher desk" in texts["test"]
    # chat and text channels get no second part: their body is all they show
    assert Renderer().alert(TDA, "markdown").text is None and Renderer().alert(TDA, "text").text is None


def test_topic_labels_come_from_the_topics_file(tmp_path: Path) -> None:
    topics = tmp_path / "topics.yaml"
    topics.write_text(CARTELS_TOPICS, encoding="utf-8")
    renderer = Renderer(labels=Labels(topic_labels(topics)))
    for fmt in ("html", "markdown", "text"):
        message = renderer.alert(CARTELS, fmt)
        assert message.title == "[borderwatch] Mexican cartels: Leader of a cartel cell extradited", fmt
        assert "Mexican cartels" in message.body and "Cartels" not in message.body, fmt
    digest = renderer.digest([CARTELS], "text")
    assert "== Mexican cartels (1) ==" in digest.body and "(Mexican cartels 1)" in digest.title
    # the shipped file is the default, and an id no file defines is shown as it is
    assert Renderer().alert(TDA, "text").title.startswith("[borderwatch] Tren de Aragua + Firearms trafficking:")
    assert Renderer().alert(CARTELS, "text").title.startswith("[borderwatch] cartels: ")


def test_a_label_is_escaped_for_markdown() -> None:
    renderer = Renderer(labels=Labels({"cartels": "Cartels *and* gangs_"}))
    assert "- **Cartels \\*and\\* gangs\\_**:" in renderer.alert(CARTELS, "markdown").body


@pytest.mark.parametrize(("config_labels", "site", "shown"), [
    ({"doj-api": "U.S. DOJ (API)"}, "U.S. Department of Justice", "U.S. DOJ (API)"),  # the config wins
    ({}, "U.S. Department of Justice", "U.S. Department of Justice"),  # then the site's own name
    ({"other": "Other"}, "", "doj-api"),  # else the source's name
])
def test_source_display_name(config_labels: dict[str, str], site: str, shown: str) -> None:
    alert = StoryAlert(**{**TDA.__dict__, "source_label": site, "copies": (
        StoryCopy("usao-mdtn", "Eight charged", "https://www.justice.gov/usao-mdtn/x", T0, "Middle District"),)})
    renderer = Renderer(labels=Labels(sources=config_labels))
    text = renderer.alert(alert, "text").body
    assert f"\n{shown} · 2026-11-03 15:05 UTC\n" in text
    assert f"Read it at {shown}: {TDA.url}" in text
    assert "- Middle District: Eight charged (2026-11-03) https://www.justice.gov/usao-mdtn/x" in text
    html = renderer.alert(alert, "html").body
    assert f"{escape(shown)} &middot; 2026-11-03" in html and f"Read it at {escape(shown)} &rarr;" in html
    markdown = renderer.alert(alert, "markdown").body
    assert f"{md_escape(shown)} · 2026-11-03 15:05 UTC" in markdown and "[Middle District](" in markdown


def test_new_and_update_messages_have_an_excerpt_in_every_format() -> None:
    alert = StoryAlert(**{**TDA.__dict__, "excerpt": f"{TDA.title}\n{LEAD}"})
    first_two = LEAD[:LEAD.index(" The investigation")]
    for fmt in ("html", "markdown", "text"):
        body = Renderer().alert(alert, fmt).body
        assert (md_escape(first_two) if fmt == "markdown" else first_two) in body, fmt
        assert "gas station" not in body, fmt  # ~300 characters, whole sentences
        assert body.count(TDA.title) == 1, fmt  # the headline only: the excerpt does not repeat it
    update = StoryAlert(**{**alert.__dict__, "kind": "update", "reason": "a ninth defendant added"})
    assert first_two in Renderer().alert(update, "text").body
    assert first_two not in Renderer().digest([alert], "text").body  # a digest entry stays short


@pytest.mark.parametrize(("text", "expected"), [
    ("", ""),
    ("One short sentence.", "One short sentence."),
    (LEAD, LEAD[:LEAD.index(" The investigation")]),  # whole sentences; "U.S. Attorney" is no sentence end
    ("word " * 100, shorten("word " * 100, 300)),  # no sentence end in reach: cut at a word, with "…"
    ("The Title\nThe body starts here.", "The body starts here."),  # a first line repeating the title goes
])
def test_excerpt(text: str, expected: str) -> None:
    assert excerpt(text, "The Title") == expected
    assert len(excerpt(text, "The Title")) <= 300


def test_evidence_is_taken_from_the_body_before_the_title() -> None:
    title = "Eight TdA members charged with sex trafficking"
    stored = [
        {"phrase": "TdA", "sentence": title, "weight": 4.0, "where": "title"},
        {"phrase": "Tren de Aragua", "sentence": "They are members of Tren de Aragua.", "weight": 1.0, "where": "body"},
    ]
    assert best_evidence(stored, title) == ("They are members of Tren de Aragua.", "Tren de Aragua")
    # a body sentence that only repeats the title (a feed's text often starts with it) is no better
    repeated = [{"phrase": "TdA", "sentence": title + ".", "weight": 2.0, "where": "body"}, stored[1]]
    assert best_evidence(repeated, title)[0] == "They are members of Tren de Aragua."
    # with no body evidence, the title is still shown rather than nothing
    assert best_evidence(stored[:1], title) == (title, "TdA")
    # a sentence the excerpt already shows gives way to another body sentence, if there is one
    later = {"phrase": "TdA", "sentence": "TdA is a Venezuelan gang.", "weight": 0.5, "where": "body"}
    excerpt_shown = "They are members of Tren de Aragua. They ran a ring."
    assert best_evidence([*stored, later], title, excerpt_shown)[0] == "TdA is a Venezuelan gang."
    assert best_evidence(stored, title, excerpt_shown)[0] == "They are members of Tren de Aragua."


def test_best_evidence_prefers_a_sentence_of_the_article_to_metadata() -> None:
    """A DOJ topic tag decided too, but "doj_topics: Drug Trafficking" is no sentence to show a reader, even
    when every body sentence is in the excerpt already."""
    body = "A Phoenix man was sentenced for distributing fentanyl pills that caused a fatal overdose."
    stored = [
        {"phrase": "Drug Trafficking", "sentence": "doj_topics: Drug Trafficking", "weight": 3.0, "where": "meta"},
        {"phrase": "fentanyl", "sentence": body, "weight": 1.0, "where": "body"},
    ]
    assert best_evidence(stored, "Phoenix man sentenced", shown=body) == (body, "fentanyl")
    only_meta = [stored[0]]
    assert best_evidence(only_meta, "Phoenix man sentenced") == ("doj_topics: Drug Trafficking", "Drug Trafficking")
