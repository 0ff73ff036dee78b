"""A small store for search tests: English, Spanish and French items modelled on the kind of releases and
reports borderwatch stores (written for these tests), with topics, sources, languages, dates and stories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pipelines.db import Database
from pipelines.models import Item, ItemTopic, Story


@dataclass(frozen=True)
class Doc:
    key: str
    source: str
    lang: str | None
    published: str  # ISO date
    title: str
    text: str
    topics: tuple[str, ...] = ()
    story: str | None = None


DOCS = [
    Doc("tda-es", "noticias-es", "es", "2026-11-10", "Extraditan a un líder del Tren de Aragua a Estados Unidos",
        "La extradición del cabecilla, acusado de trata y de tráfico de fentanilo, se concretó el martes en Bogotá.",
        ("tda",)),
    Doc("tda-doj", "doj", "en", "2026-10-05", "Tren de Aragua member sentenced for sex trafficking",
        "A member of the Venezuelan gang Tren de Aragua was sentenced to 20 years in federal prison in Houston.",
        ("tda",), "s1"),
    Doc("tda-usao", "usao", "en-US", "2026-10-06", "Houston man sentenced in Tren de Aragua case",
        "The U.S. Attorney's Office said the defendant ran a trafficking ring for Tren de Aragua.",
        ("tda",), "s1"),
    Doc("fent-pills", "doj", "en", "2026-09-01", "Man charged with distributing fentanyl-laced pills",
        "Agents seized 4,000 counterfeit pills and 3kg of powder near the border crossing in Nogales.",
        ("fentanyl",)),
    Doc("fent-fr", "radio-fr", "fr", "2026-11-01", "Saisie record de fentanyl à la frontière",
        "La Sûreté et les douanes ont saisi des comprimés; l'enquête vise un réseau lié au Mexique.",
        ("fentanyl",)),
    Doc("guns", "doj", "en", "2026-08-15", "Firearms trafficker sentenced; rifles smuggled to Mexico",
        "He bought AR-15 rifles in Arizona and moved them across the U.S.-Mexico border, prosecutors said.",
        ("firearms",)),
    Doc("pact-en", "state", "en", "2026-07-01", "U.S., Canada and Mexico sign a security agreement",
        "The three governments agreed to share intelligence on cartels and precursor chemicals.",
        ("agreement",)),
    Doc("pact-es", "noticias-es", "es", "2026-07-02", "Acuerdo de seguridad entre México y Estados Unidos",
        "Los gobiernos firmaron un acuerdo para frenar el tráfico de armas y de fentanilo.",
        ("agreement", "firearms")),
    Doc("nino", "noticias-es", "es", "2026-06-20", "Rescatan a un niño en una operación contra la trata",
        "El menor, de doce años, fue hallado en Maracay; la fiscalía abrió una investigación.", ()),
    Doc("hostile", "blog", None, "2026-06-10", 'Quote " and NEAR * : ( ) OR AND - tricks',
        "A page about <b>markup</b> & odd characters: {braces} [brackets] ^caret title:colon.", ()),
    Doc("aragua-state", "noticias-es", "es", "2026-06-01", "El gobernador de Aragua inaugura un hospital",
        "El estado Aragua recibe nuevas ambulancias; el acto fue en Maracay.", ()),
    Doc("train", "noticias-es", "es", "2026-05-15", "Un tren de carga sale de Aragua",
        "El tren de mercancías partió de Aragua hacia Puerto Cabello sin incidentes.", ()),
]


def load(db: Database) -> dict[str, int]:
    """Store ``DOCS``; the item id of each key (and ``story:NAME`` → the story's id)."""
    ids: dict[str, int] = {}
    with db.write() as s:
        stories: dict[str, Story] = {}
        for d in DOCS:
            when = datetime.fromisoformat(d.published).replace(tzinfo=UTC)
            story = None
            if d.story:
                story = stories.get(d.story)
                if story is None:
                    story = stories[d.story] = Story(title=d.title, created=when)
                    s.add(story)
                    s.flush()
            item = Item(url=f"https://example.org/{d.key}", source=d.source, title=d.title, text=d.text,
                        language=d.lang, published=when, first_seen=when, updated=when, content_hash=d.key,
                        story_id=story.id if story else None)
            s.add(item)
            s.flush()
            ids[d.key] = item.id
            for t in d.topics:
                s.add(ItemTopic(item_id=item.id, topic=t, score=1.0, evidence=[], classified_at=when))
        for name, story in stories.items():
            ids[f"story:{name}"] = story.id
    return ids
