"""Atom 1.0 feeds (feedgen): one entry per story, its id stable, ``updated`` moved only by a new copy or a
material revision of one (a minor fix never makes a feed reader show the story again)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from feedgen.feed import FeedGenerator
from markupsafe import escape

from pipelines.timeutil import utcnow

# Stories in one feed: feed readers poll, so the newest are enough.
FEED_ENTRIES = 50


def story_entry_id(story_id: int) -> str:
    return f"urn:borderwatch:story:{story_id}"


def atom_feed(*, feed_id: str, title: str, self_url: str, page_url: str, stories: list[dict[str, Any]],
              updates: dict[int, datetime], base_url: str, labels: dict[str, str] | None = None) -> bytes:
    labels = labels or {}
    fg = FeedGenerator()
    fg.id(feed_id)
    fg.title(title)
    fg.link(href=self_url, rel="self", type="application/atom+xml")
    fg.link(href=page_url, rel="alternate", type="text/html")
    fg.generator("borderwatch")
    ordered = sorted(stories, key=lambda st: (updates.get(st["story"]) or st["published"], st["story"]),
                     reverse=True)
    fg.updated(max((updates.get(st["story"]) or st["published"] for st in ordered), default=utcnow()))
    for st in ordered:
        copies = st["copies"]
        first = next((c for c in copies if c["id"] == st["first"]), copies[0] if copies else None)
        fe = fg.add_entry(order="append")
        fe.id(story_entry_id(st["story"]))
        fe.title(st["title"] or f"story {st['story']}")
        fe.updated(updates.get(st["story"]) or st["published"])
        story_page = f"{base_url}stories/{st['story']}"
        # One link per entry: feedgen 1.0.0 writes an entry's links without their rel and type
        # (lkiesow/python-feedgen#135), so a second one would read as a second `alternate`. The story's
        # page on this server is linked from the content instead.
        if first is not None:
            fe.published(first["published"] or first["first_seen"])
            fe.link(href=first["url"], rel="alternate")
        else:
            fe.link(href=story_page, rel="alternate")
        for source in st["sources"]:
            fe.author(name=source)
        for topic in st["topics"]:
            fe.category(term=topic, label=labels.get(topic, topic))
        lines = "".join(
            f'<li><a href="{escape(c["url"])}">{escape(c["title"])}</a> — {escape(c["source"])}'
            f'{" (first)" if first is not None and c["id"] == first["id"] else ""}</li>'
            for c in copies
        )
        fe.content(f'<p>{len(copies)} cop{"y" if len(copies) == 1 else "ies"} '
                   f'(<a href="{escape(story_page)}">the story in borderwatch</a>):</p><ul>{lines}</ul>', type="html")
    out: bytes = fg.atom_str(pretty=True)
    return out
