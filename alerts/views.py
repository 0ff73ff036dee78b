"""What an alert says, as plain values: the input of rendering, built from the database by ``alerts.load``.

Nothing here touches a database, a template or the network, so messages can be rendered and tested from
hand-made values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

StoryKind = Literal["new", "update"]
HealthKind = Literal["health", "recovery"]
Format = Literal["html", "markdown", "text"]


@dataclass(frozen=True)
class TopicEvidence:
    """One topic of an item, with the sentence that best shows why (and the phrase that matched in it)."""

    topic: str
    score: float = 0.0
    sentence: str = ""
    phrase: str = ""


@dataclass(frozen=True)
class StoryCopy:
    """Another outlet's copy of the same story."""

    source: str
    title: str
    url: str
    published: datetime | None = None
    source_label: str = ""  # the outlet's display name (``source`` when empty)


@dataclass(frozen=True)
class StoryAlert:
    """A new story, or a material change of an item of a story already alerted."""

    kind: StoryKind
    title: str
    url: str
    source: str
    published: datetime | None
    topics: tuple[TopicEvidence, ...] = ()
    copies: tuple[StoryCopy, ...] = ()
    reason: str = ""  # what changed (updates only): ``Revision.reason``
    item_id: int | None = None
    story_id: int | None = None
    source_label: str = ""  # the outlet's display name (``source``, the config name, when empty)
    excerpt: str = ""  # the first sentences of the article


@dataclass(frozen=True)
class HealthAlert:
    """A source started failing (``health``) or works again (``recovery``)."""

    kind: HealthKind
    source: str
    message: str
    detail: str = ""
    at: datetime | None = None


Alert = StoryAlert | HealthAlert


@dataclass(frozen=True)
class Labels:
    """What people read instead of ids: topic labels from the topics file in force, and the display names
    that ``sources[].label`` gives sources (else the site's own name stored with each item, else the id)."""

    topics: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """A rendered message: what apprise is given. ``text`` is the plain-text alternative of an HTML body
    (e-mail's text/plain part), rendered from the text templates, not converted from the HTML."""

    title: str
    body: str
    body_format: Format
    text: str | None = None
