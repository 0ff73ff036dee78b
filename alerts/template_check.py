"""Start-up check of a templates folder (``alerts.templates``): every message rendered once from sample values.

A template with an error would otherwise be accepted at load and then fail every send. Rendering each kind of
message (new, update, health, digest, test) in each format through ``alerts.render.Renderer`` reaches every
template a send can use (bodies, the subject, the partials they include), so what fails here is what would
fail there, named by file and line.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import jinja2

from alerts.views import Format, HealthAlert, Message, StoryAlert, StoryCopy, TopicEvidence

SAMPLE_TIME = datetime(2026, 1, 15, 14, 30, tzinfo=UTC)


class TemplateProblem(ValueError):
    """A templates folder that cannot be used: one line naming the file and line."""


def _samples() -> tuple[StoryAlert, StoryAlert, HealthAlert]:
    topics = (
        TopicEvidence("tda", 0.9, "Eight members of Tren de Aragua were charged today.", "Tren de Aragua"),
        TopicEvidence("fentanyl", 0.4, "The defendants also sold fentanyl pills.", "fentanyl"),
    )
    copies = (StoryCopy("border-report", "Eight charged in Nashville", "https://example.org/copy", SAMPLE_TIME),)
    new = StoryAlert(kind="new", title="Eight Tren de Aragua Members Charged", url="https://example.org/pr/1",
                     source="doj-api", published=SAMPLE_TIME, topics=topics, copies=copies, item_id=1, story_id=1)
    update = StoryAlert(kind="update", title="Eight Tren de Aragua Members Charged", url="https://example.org/pr/1",
                        source="doj-api", published=SAMPLE_TIME, topics=topics, reason="two paragraphs added",
                        item_id=1, story_id=1)
    health = HealthAlert(kind="health", source="doj-news", message="failing", detail="HTTP 500 on 3 passes",
                         at=SAMPLE_TIME)
    return new, update, health


def _where(exc: BaseException) -> str:
    """``file, line N`` of the template an error came from (jinja2 maps its frames to template lines)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.filename or exc.name}, line {exc.lineno}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return f"{frame.filename}, line {frame.lineno}"
    return ""


def check_templates(folder: str) -> None:
    """Raise ``TemplateProblem`` unless ``folder`` exists and every message renders with its templates."""
    from alerts.render import Renderer

    path = Path(folder)
    if not path.is_dir():
        raise TemplateProblem(f"no such folder: {path}" if not path.exists() else f"not a folder: {path}")
    renderer = Renderer(folder, follow=("tda",))
    new, update, health = _samples()
    renders: list[tuple[str, Callable[[Format], Message]]] = [
        ("a new-story alert", lambda fmt: renderer.alert(new, fmt)),
        ("an update alert", lambda fmt: renderer.alert(update, fmt)),
        ("a source-health alert", lambda fmt: renderer.alert(health, fmt)),
        ("a digest", lambda fmt: renderer.digest([new, update], fmt, since=SAMPLE_TIME)),
        ("a test message", lambda fmt: renderer.test("desk", fmt)),
    ]
    for fmt in get_args(Format):
        for what, render in renders:
            try:
                render(fmt)
            except jinja2.TemplateNotFound as exc:
                raise TemplateProblem(f"template {exc.name} not found (rendering {what} as {fmt})") from None
            except Exception as exc:
                where = _where(exc)
                message = getattr(exc, "message", None) or str(exc)
                head = f"{where}: " if where else ""
                raise TemplateProblem(
                    f"{head}{type(exc).__name__}: {message} (rendering {what} as {fmt})"
                ) from None
