"""What an alert says, as plain values: the input of rendering, built from the database by ``alerts.load``.

Nothing here touches a database, a template or the network, so messages can be rendered and tested from
hand-made values.
"""

from __future__ import annotations

from dataclasses import dataclass
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
class Message:
    """A rendered message: what apprise is given."""

    title: str
    body: str
    body_format: Format
