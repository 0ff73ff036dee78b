"""Classification of news in English, Spanish and French (issue 14): the news dev set's aims on its tuned and
held-aside parts, and what the scoring asks of an item — where the evidence sits (title, lead, body), asides,
list items, explicit commitments late in long statements — with the evidence and its notes explaining every
decision. The examples are written for these tests in the shape of real reporting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.devset import BATCHES, LANGUAGES, load_news, part_of
from pipelines.classify import Classifier, TopicResult

NEWS = Path(__file__).resolve().parent / "fixtures" / "classify" / "news.jsonl"
ALL_FILES = (NEWS, *BATCHES.values())
KINDS = {
    "passing",
    "passing-control",
    "generic",
    "generic-control",
    "vocab",
    "vocab-control",
    "late",
    "charge-list",
    "control",
}


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.from_file()


def result(classifier: Classifier, title: str, text: str, topic: str) -> TopicResult | None:
    return next((r for r in classifier.classify(title, text) if r.topic == topic), None)


def matched(classifier: Classifier, title: str, text: str = "") -> set[str]:
    return {r.topic for r in classifier.matched(title, text)}


# ------------------------------------------------------------------------------------------ the dev set


def test_news_rows_are_well_formed(classifier: Classifier) -> None:
    rows = [json.loads(line) for path in ALL_FILES for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 300
    ids = set()
    for row in rows:
        assert set(row) == {"id", "language", "title", "text", "labels", "kind", "reason"}, row["id"]
        assert row["id"].startswith(f"news-{row['language']}-") and row["id"] not in ids
        ids.add(row["id"])
        assert row["language"] in LANGUAGES and row["kind"] in KINDS and row["reason"].strip()
        assert set(row["labels"]) <= set(classifier.topic_ids) and row["labels"] == sorted(row["labels"])
    for lang in LANGUAGES:  # every language has positives of every topic
        for topic in classifier.topic_ids:
            assert sum(1 for r in rows if r["language"] == lang and topic in r["labels"]) >= 5, (lang, topic)


def test_the_split_is_fixed_by_id() -> None:
    """The held-aside part is decided by a seeded hash of the id, never by hand: the same ids, the same parts."""
    rows = load_news()
    parts = [part_of(r["id"]) for r in rows]
    assert parts.count("held") == 64 and parts.count("tuned") == 129
    assert part_of("news-en-tariff-aside-1") == part_of("news-en-tariff-aside-1")


def _scores(classifier: Classifier, rows: list[dict[str, object]]) -> dict[str, dict[str, int]]:
    counts = {t: {"tp": 0, "fp": 0, "fn": 0} for t in classifier.topic_ids}
    for row in rows:
        predicted = {r.topic for r in classifier.matched(str(row["title"]), str(row["text"]))}
        gold = set(row["labels"])  # type: ignore[call-overload]
        for topic, c in counts.items():
            if topic in predicted:
                c["tp" if topic in gold else "fp"] += 1
            elif topic in gold:
                c["fn"] += 1
    return counts


def _f1(c: dict[str, int]) -> tuple[float, float, float]:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def test_tuned_part_meets_the_aim(classifier: Classifier) -> None:
    """The rules were tuned on this part: F1 >= 0.95 and precision >= 0.95 for every topic."""
    rows = [r for r in load_news() if part_of(r["id"]) == "tuned"]
    for topic, c in _scores(classifier, rows).items():
        p, _, f1 = _f1(c)
        assert p >= 0.95 and f1 >= 0.95, (topic, c)


def test_held_part_does_not_regress(classifier: Classifier) -> None:
    """Never tuned on: the floors are below the figures measured when tuning ended (see the README), so a
    change that loses ground on unseen items fails here."""
    rows = [r for r in load_news() if part_of(r["id"]) == "held"]
    micro = {"tp": 0, "fp": 0, "fn": 0}
    for c in _scores(classifier, rows).values():
        for k in micro:
            micro[k] += c[k]
    p, _, f1 = _f1(micro)
    assert p >= HELD_FLOOR["precision"] and f1 >= HELD_FLOOR["f1"], micro


HELD_FLOOR = {"precision": 0.90, "f1": 0.90}


def test_every_topic_and_language_meets_the_issue_goal(classifier: Classifier) -> None:
    """Issue 14's goal for real news — F1 >= 0.95 for every topic in every language, precision never below
    0.92 — held on the whole news set (every part has been seen by now: a regression guard, not an estimate;
    the blind figures are in the README)."""
    rows = [json.loads(line) for path in ALL_FILES for line in path.read_text(encoding="utf-8").splitlines()]
    for lang in LANGUAGES:
        for topic, c in _scores(classifier, [r for r in rows if r["language"] == lang]).items():
            p, _, f1 = _f1(c)
            assert p >= 0.92 and f1 >= 0.95, (lang, topic, c)


# ---------------------------------------------------------------------------------- what an item is about

TARIFF_STORY = (
    "Parts makers on both sides of the river are halting lines as new duties take effect. "
    "A single part can cross the border several times before it ends up in a car, industry groups say. "
    "Dealers were told to expect higher prices. Union leaders said layoffs could start within weeks. "
    "The White House has tied the duties to fentanyl crossing the border, a claim the two neighbours reject. "
    "Trade lawyers expect a flood of exemption requests."
)


def test_a_passing_mention_after_the_lead_is_an_aside(classifier: Classifier) -> None:
    r = result(classifier, "Car plants idle as duties bite", TARIFF_STORY, "fentanyl")
    assert r is None or not r.matched
    # The same clause as the story's subject decides.
    assert "fentanyl" in matched(classifier, "Canada names fentanyl czar", "He will coordinate fentanyl seizures.")


def test_an_aside_is_explained(classifier: Classifier) -> None:
    text = (
        "The police chief was sworn in on Monday. He promised more officers on foot patrol. "
        "He spent 25 years with the force. He praised his predecessor. "
        "Separately, a man who pleaded guilty last week admitted selling fentanyl pills and counterfeit "
        "oxycodone tablets in the same district. The ceremony lasted an hour."
    )
    r = result(classifier, "New police chief sworn in", text, "fentanyl")
    assert r is not None and not r.matched
    assert r.evidence and all("aside" in e.note and "after the lead" in e.note for e in r.evidence)
    assert abs(r.score - sum(e.weight for e in r.evidence)) < 1e-6


def test_an_explicit_commitment_counts_however_late(classifier: Classifier) -> None:
    filler = " ".join(f"The ministers discussed topic number {n} at length." for n in range(8))
    text = (
        f"{filler} Before closing, the ministers signed a memorandum of understanding under which police in "
        "Canada and Mexico will exchange intelligence on organized crime groups."
    )
    r = result(classifier, "Readout of the ministers' meeting", text, "agreement")
    assert r is not None and r.matched
    explicit = [e for e in r.evidence if "explicit" in e.note]
    assert explicit and explicit[0].phrase == "memorandum of understanding" and explicit[0].weight == 3.0


def test_one_charge_in_a_list_is_not_the_item(classifier: Classifier) -> None:
    title = "Police arrest gang figure wanted in Venezuela"
    text = (
        "Police arrested a Tren de Aragua figure on Sunday. Venezuela wants him for homicide, kidnapping, "
        "extortion, arms trafficking, drug trafficking and money laundering."
    )
    assert matched(classifier, title, text) == {"tda"}
    # A title that names the offence is about it, even in a list.
    assert "firearms" in matched(
        classifier, "Four charged with narco-terrorism, drug trafficking, and firearms trafficking"
    )


def test_a_list_of_the_topics_own_things_is_not_dampened(classifier: Classifier) -> None:
    text = (
        "Customs officers at the crossing found six rifles, two pistols, 30 magazines and 900 rounds hidden "
        "in the door panels of a car heading into Mexico."
    )
    r = result(classifier, "Guns found in car at border bridge", text, "firearms")
    assert r is not None and r.matched and not any("list item" in e.note for e in r.evidence)


def test_list_factor_counts_one_item_of_an_enumeration_at_a_fraction() -> None:
    """The opt-in ``list_factor``: one mention in an enumeration of other things counts at a fraction; an
    enumeration of the topic's own things, and the lead-in before an enumeration, count in full."""
    clf = Classifier.from_mapping(
        {
            "version": 1,
            "scoring": {"list_factor": 0.5},
            "topics": [
                {
                    "id": "guns",
                    "label": "Guns",
                    "description": "Gun flows.",
                    "threshold": 2.0,
                    "rules": [{"id": "flow", "weight": 2.0, "patterns": ["arms trafficking", "rifles", "pistols"]}],
                }
            ],
        }
    )
    listed = clf.classify("Man arrested", "He is wanted for homicide, extortion, arms trafficking and fraud.")
    assert listed[0].score == 1.0 and listed[0].evidence[0].note == "list item"
    own = clf.classify("Guns seized", "Officers found six rifles, two pistols, 30 magazines and 900 rounds.")
    assert own[0].score == 3.0 and not any(e.note for e in own[0].evidence)  # 2.0 + 2.0 x repeat decay
    lead_in = clf.classify("Man sentenced", "He sold rifles to buyers in Texas, Ohio and Georgia.")
    assert lead_in[0].score == 2.0 and lead_in[0].matched


# ------------------------------------------------------------------------- generic words and vocabulary

GENERIC = [
    # (title, text, topic that must not match)
    (
        "Navy dismantles meth lab in the mountains",
        "Troops found four tons of methamphetamine and thousands of liters of precursor chemicals.",
        "fentanyl",
    ),
    ("Canada and Ecuador sign free trade treaty", "The treaty removes tariffs on wheat and shrimp.", "agreement"),
    (
        "Canada and Germany announce partnership on critical minerals",
        "The two governments will fund lithium processing research.",
        "agreement",
    ),
    (
        "Le Québec et le Mexique signent un partenariat sur l'éducation",
        "L'entente vise à accueillir davantage d'étudiants mexicains.",
        "agreement",
    ),
    (
        "Senators clash over handgun freeze",
        "Sport shooters said the freeze on buying and selling handguns punishes licensed owners.",
        "firearms",
    ),
    (
        "U.S. tourist fined for pistol left in glove box",
        "Border officers found a loaded pistol in his car. He said he forgot it was there and paid a penalty.",
        "firearms",
    ),
    (
        "Minister defends embargo on arms sales to Israel",
        "She urged other European states to stop exports of weapons.",
        "firearms",
    ),
]


@pytest.mark.parametrize(("title", "text", "topic"), GENERIC)
def test_generic_words_do_not_decide(classifier: Classifier, title: str, text: str, topic: str) -> None:
    assert topic not in matched(classifier, title, text)


VOCABULARY = [
    ("Le Chili démantèle une cellule du Train d'Aragua", "", "tda"),
    ("Police break up Aragua Train cell in Santiago", "", "tda"),
    ("Canada and Mexico launch comprehensive strategic partnership with a security pillar", "", "agreement"),
    ("México y Estados Unidos instalan grupo de implementación de alto nivel en seguridad", "", "agreement"),
    ("Le Canada signe de nouveaux accords de sécurité avec les États-Unis", "", "agreement"),
    ("Joint statement: Canada and U.S. agree to share intelligence on cartels", "", "agreement"),
    ("Woman arrested at bridge with 12 guns hidden in car doors", "She was driving into Mexico.", "firearms"),
    ("Detienen en la aduana a hombre con armas ocultas en una llanta", "Ingresaba desde Texas.", "firearms"),
    ("Man sold 3D-printed Glock switches to buyers online", "", "firearms"),
    ("Vinculan a proceso a hombre por venta de armas traídas de San Diego", "", "firearms"),
]


@pytest.mark.parametrize(("title", "text", "topic"), VOCABULARY)
def test_vocabulary_of_real_reporting(classifier: Classifier, title: str, text: str, topic: str) -> None:
    assert topic in matched(classifier, title, text)


def test_fentanyl_as_a_tariffs_reason_is_negative_evidence(classifier: Classifier) -> None:
    text = "Stocks fell on Tuesday as tariffs that Washington tied to fentanyl took effect."
    r = result(classifier, "Stocks tumble", text, "fentanyl")
    assert r is None or not r.matched
    assert r is None or any(e.weight < 0 and e.phrase == "tariffs" for e in r.evidence)


def test_supporting_evidence_never_decides_alone(classifier: Classifier) -> None:
    """An instrument signed, with no security subject anywhere: supporting evidence only, no topic."""
    assert "agreement" not in matched(
        classifier, "Canada and Mexico sign air transport agreement", "The agreement adds direct flights."
    )
    # With other evidence it adds: the same signing next to a commitment against organized crime.
    r = result(
        classifier,
        "Canada and Mexico sign memorandum",
        "The two governments signed a memorandum. Both governments agreed to share intelligence on cartels.",
        "agreement",
    )
    assert r is not None and r.matched
