"""Messages people like reading: Jinja2 templates over ``alerts.views`` values, pure (values in, strings out).

Each kind of message (``new``, ``update``, ``digest``, ``health``, ``test``) has one body template per format
(``html`` for e-mail, ``md`` for chat, ``txt`` for everything else) and all share ``subject.txt.j2``. An HTML
message also gets its plain-text alternative from the ``txt`` template (e-mail's text part: every link in full).
A templates folder given by the user is searched first, so one file can be overridden without copying the rest.
Topic labels come from the topics file in force and source names from ``sources[].label`` or the site
(``alerts.views.Labels``); there is no built-in table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape

from alerts.views import Alert, Format, HealthAlert, Labels, Message, StoryAlert, TopicEvidence

TEMPLATES = Path(__file__).resolve().parent / "templates"
PRODUCT = "borderwatch"

_EXT: Mapping[str, str] = {"html": "html", "markdown": "md", "text": "txt"}
# Subject lines: mail clients show ~70-100 characters; the headline is cut at a word, with an ellipsis.
SUBJECT_HEADLINE = 80
SUBJECT_MAX = 200
EVIDENCE_MAX = 300  # one sentence of evidence, not a paragraph
# The excerpt: the article's first sentences, about as much as a mail client's preview pane shows.
EXCERPT_MAX = 300
COPIES_MAX = 8  # "also carried by": the first few outlets, then a count
# Only what would start emphasis, code or a link: chat dialects differ on the rest.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]])")
_SPACES = re.compile(r"\s+")


def shorten(text: str, width: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``width`` characters, with "…" if cut."""
    text = _SPACES.sub(" ", text or "").strip()
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    if " " in cut[width // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-–—") + "…"


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_escape(text: str) -> str:
    """Text safe to put in Markdown, on one line: the characters that would start emphasis, links or code
    escaped."""
    return _md(_SPACES.sub(" ", text or "").strip())


@lru_cache(maxsize=1)
def shipped_topic_labels() -> Mapping[str, str]:
    """The labels of the shipped topics file: what a caller that names no topics file gets."""
    from pipelines.classify import topic_labels

    return topic_labels(None)


def topic_label(topic: str, labels: Mapping[str, str]) -> str:
    """The topic's label from the topics file; an id no file defines any more is shown as it is."""
    return labels.get(topic) or topic


# A sentence ends at . ! ? (maybe followed by a closing quote or bracket) before a space and a capital,
# a digit or an opening quote; "U.S. Attorney" is not an end (one capital letter before the dot).
_SENTENCE_END = re.compile(r"(?<![A-Z])(?<!\b[A-Z][a-z])[.!?][\"'”’)\]]?(?=\s+[\"“‘(]?[A-Z0-9ÁÉÍÓÚÑ¿¡])")


def excerpt(text: str, title: str = "", width: int = EXCERPT_MAX) -> str:
    """The first sentences of an article, on one line: whole sentences up to ``width`` characters, else the
    first sentence cut at a word. A first line that only repeats the title is left out."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if lines and title and _SPACES.sub(" ", lines[0]).casefold() == _SPACES.sub(" ", title).strip().casefold():
        lines = lines[1:]
    flat = _SPACES.sub(" ", " ".join(lines)).strip()
    if len(flat) <= width:
        return flat
    best = 0
    for end in _SENTENCE_END.finditer(flat):
        stop = end.end()
        if stop > width:
            break
        best = stop
    if best >= width // 3:
        return flat[:best]
    return shorten(flat, width)


def format_when(value: datetime | None, tz: str = "UTC", *, with_time: bool = True) -> str:
    """``2026-11-03 14:05 EST`` in the watcher's time zone ("date unknown" when there is none)."""
    if value is None:
        return "date unknown"
    local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(ZoneInfo(tz))
    if not with_time:
        return local.strftime("%Y-%m-%d")
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or tz)


def _highlight(sentence: str, phrase: str, fmt: Format) -> str | Markup:
    """The evidence sentence with its matching phrase emphasised, escaped for the format."""
    sentence = shorten(sentence, EVIDENCE_MAX)
    at = sentence.lower().find(phrase.lower()) if phrase else -1
    if fmt == "html":
        if at < 0:
            return escape(sentence)
        end = at + len(phrase)
        return escape(sentence[:at]) + Markup("<b>") + escape(sentence[at:end]) + Markup("</b>") + escape(
            sentence[end:]
        )
    if fmt == "markdown":
        if at < 0:
            return md_escape(sentence)
        end = at + len(phrase)
        return _md(sentence[:at]) + "**" + _md(sentence[at:end]) + "**" + _md(sentence[end:])
    return sentence


@lru_cache(maxsize=16)
def _environment(folder: str | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if folder:
        loaders.append(jinja2.FileSystemLoader(folder))
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined,  # a typo in a user's template fails loudly, not silently blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["shorten"] = shorten
    env.filters["md"] = md_escape
    return env


class Renderer:
    """Renders alerts for one watcher's view of the world: its time zone and the topics it follows."""

    def __init__(
        self,
        templates: str | Path | None = None,
        *,
        timezone: str = "UTC",
        follow: Sequence[str] = (),
        labels: Labels | None = None,
        query: str | None = None,
    ) -> None:
        self.templates = str(templates) if templates else None
        # A watcher following a query (or a saved search): what its messages name when an item has no topic.
        self.query = query
        self.timezone = timezone
        self.follow = tuple(follow)
        self.labels = labels if labels is not None else Labels(shipped_topic_labels())

    # -- public -------------------------------------------------------------------------------------------

    def alert(self, alert: Alert, fmt: Format) -> Message:
        """One story (new or updated) or one source-health change."""
        if isinstance(alert, HealthAlert):
            at = format_when(alert.at, self.timezone) if alert.at else None
            return self._render("health", fmt, lambda f: {"alert": alert, "at": at})
        return self._render(alert.kind, fmt, lambda f: {"alert": alert, "story": self._story(alert, f)})

    def digest(self, alerts: Iterable[StoryAlert], fmt: Format, *, since: datetime | None = None) -> Message:
        """One message for a digest window: stories grouped by topic, updates at the end."""
        alerts = list(alerts)
        stories = [a for a in alerts if a.kind == "new"]
        updates = [a for a in alerts if a.kind == "update"]

        def context(f: Format) -> dict[str, Any]:
            groups: dict[str, list[dict[str, Any]]] = {}
            for alert in stories:
                primary = self._interesting(alert.topics)
                key = primary[0].topic if primary else ""
                groups.setdefault(key, []).append(self._story(alert, f))
            order = [t for t in self.follow if t in groups] + sorted(t for t in groups if t not in self.follow)
            return {
                "groups": [
                    {"topic": t, "label": self._label(t) if t else "Other", "stories": groups[t]} for t in order
                ],
                "updates": [self._story(a, f) for a in updates],
                "count": len(stories),
                "update_count": len(updates),
                "since": format_when(since, self.timezone) if since else None,
            }

        return self._render("digest", fmt, context)

    def test(self, watcher: str, fmt: Format) -> Message:
        """The message ``alerts test WATCHER`` sends."""
        return self._render("test", fmt, lambda f: {"watcher": watcher})

    # -- helpers ------------------------------------------------------------------------------------------

    def _label(self, topic: str) -> str:
        return topic_label(topic, self.labels.topics)

    def _source(self, name: str, site: str) -> str:
        """A source's display name: its ``label`` in the config, else the site's own name, else its id."""
        return self.labels.sources.get(name) or _SPACES.sub(" ", site).strip() or name

    def _interesting(self, topics: Sequence[TopicEvidence]) -> list[TopicEvidence]:
        """The item's topics this watcher follows (all, if it follows all), best score first."""
        chosen = [t for t in topics if not self.follow or t.topic in self.follow] or list(topics)
        return sorted(chosen, key=lambda t: -t.score)

    def _story(self, alert: StoryAlert, fmt: Format) -> dict[str, Any]:
        topics = self._interesting(alert.topics)
        others = [t for t in sorted(alert.topics, key=lambda t: -t.score) if t not in topics]
        return {
            "title": _SPACES.sub(" ", alert.title).strip() or alert.url,
            "url": alert.url,
            "source": self._source(alert.source, alert.source_label),
            "source_id": alert.source,
            "excerpt": excerpt(alert.excerpt, alert.title),
            "published": format_when(alert.published, self.timezone),
            "date": format_when(alert.published, self.timezone, with_time=False),
            "labels": [self._label(t.topic) for t in topics] or ([self.query] if self.query else []),
            "topics": [
                {
                    "label": self._label(t.topic),
                    "topic": t.topic,
                    "score": t.score,
                    "evidence": _highlight(t.sentence, t.phrase, fmt) if t.sentence else "",
                }
                for t in [*topics, *others]
            ],
            "copies": [
                {"source": self._source(c.source, c.source_label), "url": c.url,
                 "title": _SPACES.sub(" ", c.title).strip() or c.url,
                 "date": format_when(c.published, self.timezone, with_time=False)}
                for c in alert.copies[:COPIES_MAX]
            ],
            "more_copies": max(0, len(alert.copies) - COPIES_MAX),
            "reason": _SPACES.sub(" ", alert.reason).strip(),
        }

    def _render(self, kind: str, fmt: Format, build: Callable[[Format], dict[str, Any]]) -> Message:
        """The message in ``fmt``; an HTML message also gets its plain-text alternative, rendered from the
        ``txt`` template with the same values (``build`` makes them for one format: escaping differs)."""
        env = _environment(self.templates)

        def render(f: Format) -> tuple[dict[str, Any], str]:
            context = {"product": PRODUCT, "kind": kind, "format": f, "timezone": self.timezone, **build(f)}
            return context, env.get_template(f"{kind}.{_EXT[f]}.j2").render(context).strip() + "\n"

        context, body = render(fmt)
        text = render("text")[1] if fmt == "html" else None
        subject = env.get_template("subject.txt.j2").render(context, headline_width=SUBJECT_HEADLINE)
        return Message(title=shorten(subject, SUBJECT_MAX), body=body, body_format=fmt, text=text)
