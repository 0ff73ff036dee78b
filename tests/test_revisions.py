"""Material vs trivial changes, the content hash and the readable diff, on a real DOJ page.

The page is the 25-1075 Tren de Aragua extradition release as extracted from its HTML (with its share
widget, "Updated" stamp and "Related Content" block), from tests/fixtures/stories/docs.jsonl.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from pipelines.revisions import compare, content_hash, readable_diff

FIXTURES = Path(__file__).parent / "fixtures" / "stories"
TITLE = ("United States Extradites Three Alleged Members of Tren de Aragua to Chile to Face Prosecution for "
         "Murder, Kidnapping, and other Violent Offenses")


@cache
def page() -> str:
    for line in (FIXTURES / "docs.jsonl").read_text().splitlines():
        d = json.loads(line)
        if d["id"] == "doj-25-1075":
            return str(d["text"])
    raise LookupError("doj-25-1075")


def sub(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


LAST = "to facilitate the extraditions."
OTBA = ("This case is part of Operation Take Back America, a nationwide initiative that marshals the full "
        "resources of the Justice Department.")
ALLEGATION = "An indictment is merely an allegation, and all defendants are presumed innocent."

# (name, edit of the page text, new title or None, material, start of the reason)
CASES: list[tuple[str, Callable[[str], str], str | None, bool, str]] = [
    ("identical", lambda t: t, None, False, "identical"),
    ("whitespace", lambda t: t.replace(". ", ".  ").replace("\n\n", "\n\n\n") + "\n", None, False,
     "whitespace only"),
    ("line breaks inside a paragraph", sub("On Sept. 30, the United States extradited",
                                           "On Sept. 30, the United States\nextradited"), None, False,
     "whitespace only"),
    ("date stamp", sub("Updated November 14, 2025", "Updated November 17, 2025"), None, False, "date stamp only"),
    ("date stamp added", sub("Topics", "Last updated: 11/17/2025 10:42 AM EST\n\nTopics"), None, False,
     "date stamp only"),
    ("share widget", sub("LinkedIn\n\n", "LinkedIn\n\nShare on WhatsApp\n\n"), None, False, "share widget only"),
    ("typographic quotes", lambda t: t.replace("“", '"').replace("”", '"').replace("’", "'"), None, False,
     "punctuation, quotes or case only"),
    ("related content block", lambda t: t.split("Related Content")[0] + "Related Content\n\nPress Release\n\n"
     "Two Men Sentenced for Smuggling Migrants\n\nOctober 1, 2025", None, False, "related content block only"),
    ("boilerplate added", sub(LAST, LAST + "\n\n" + OTBA), None, False, "boilerplate changed only"),
    ("boilerplate reordered", lambda t: t.replace(LAST, LAST + "\n\n" + OTBA + "\n\n" + ALLEGATION), None, False,
     "boilerplate changed only"),
    ("date stamp and share widget", lambda t: t.replace("Updated November 14, 2025", "Updated November 18, 2025")
     .replace("Email\n\n", ""), None, False, "date stamp and share widget"),
    ("title case and punctuation", lambda t: t, TITLE.upper().replace(",", ""), False,
     "punctuation, quotes or case only"),
    ("paragraph added", sub("The Justice Department’s Office",
                            "Chile thanked the United States for its cooperation.\n\nThe Justice Department’s Office"),
     None, True, "1 paragraph added: 'Chile thanked"),
    ("sentence appended", sub(LAST, LAST + " A sixth fugitive remains in U.S. custody."), None, True,
     "sentence appended: 'A sixth fugitive"),
    ("sentence added in the middle", sub("On Jan. 20, Executive Order", "All three were arrested in Texas. "
                                         "On Jan. 20, Executive Order"), None, True, "sentence added: 'All three"),
    ("sentence changed", sub("shot an individual in connection with a dispute over narcotics",
                             "shot two people during a robbery"), None, True, "sentence changed: 'Chile further"),
    ("number changed", sub("Miguel Oyola Jimenez, 38", "Miguel Oyola Jimenez, 39"), None, True,
     "sentence changed: 'Miguel Oyola Jimenez, 39"),
    ("name changed", sub("Gregoris Jose Cortez Fernandez", "Gregorio Jose Cortez Fernandez"), None, True,
     "sentence changed: 'Chile alleges that Gregorio"),
    ("sentence removed", sub("Also on Sept. 30, the United States extradited two additional defendants to Chile, "
                             "both accused of violent crimes. ", ""), None, True, "1 sentence removed: 'Also on"),
    ("title changed", lambda t: t, TITLE.replace("Three", "Four"), True, "title changed: "),
    ("paragraphs reordered", lambda t: _swap_paragraphs(t), None, False, "paragraphs reordered"),
]


def _swap_paragraphs(text: str) -> str:
    first = "The three extradited fugitives alleged to be associated with TdA are:"
    second = text[text.index("Also on Sept. 30"):text.index("The Justice Department’s Office")].strip()
    return text.replace(second + "\n\n", "").replace(first, second + "\n\n" + first)


def _new(edit: Callable[[str], str], title: str | None) -> tuple[str, str]:
    return (title or TITLE), edit(page())


@pytest.mark.parametrize(("name", "edit", "title", "material", "reason"), CASES, ids=[c[0] for c in CASES])
def test_compare(name: str, edit: Callable[[str], str], title: str | None, material: bool, reason: str) -> None:
    new_title, new_text = _new(edit, title)
    verdict = compare(TITLE, page(), new_title, new_text)
    assert verdict.material is material, verdict
    assert verdict.reason.startswith(reason), verdict.reason
    assert "\n" not in verdict.reason  # one line: it is shown in an alert's heading
    # Undoing the edit is judged alike: a change is material, or not, whichever way it goes.
    undone = compare(new_title, new_text, TITLE, page())
    assert undone.material is material, undone


def test_number_and_name_changes_are_named() -> None:
    assert "(number 38 -> 39)" in compare(TITLE, page(), TITLE, page().replace("Jimenez, 38", "Jimenez, 39")).reason
    amount = compare("Firm Pays $1,000", "It paid $1,000 in fines.", "Firm Pays $1,000", "It paid $1.000 in fines.")
    assert amount.material and "(number 1,000 -> 1.000)" in amount.reason
    renamed = compare(TITLE, page(), TITLE, page().replace("Gregoris Jose", "Gregorio Jose"))
    assert "(name Gregoris -> Gregorio)" in renamed.reason


@pytest.mark.parametrize(("name", "edit", "title", "material", "reason"), CASES, ids=[c[0] for c in CASES])
def test_content_hash_folds_exactly_the_trivial_changes(
        name: str, edit: Callable[[str], str], title: str | None, material: bool, reason: str) -> None:
    new_title, new_text = _new(edit, title)
    same = content_hash(TITLE, page()) == content_hash(new_title, new_text)
    assert same is not material


def test_content_hash_is_hex_sha256() -> None:
    h = content_hash(TITLE, page())
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert content_hash("", "") != h


def test_readable_diff() -> None:
    new_text = page().replace("Jimenez, 38", "Jimenez, 39").replace(LAST, LAST + " A sixth fugitive remains in custody.")
    diff = readable_diff(page(), new_text, width=80)
    lines = diff.splitlines()
    assert lines[0].startswith("@@ paragraph ")
    assert any(ln.startswith("- Miguel Oyola Jimenez, 38,") for ln in lines)
    assert any(ln.startswith("+ Miguel Oyola Jimenez, 39,") for ln in lines)
    assert "+ A sixth fugitive remains in custody." in lines
    assert any(ln.startswith("  ") for ln in lines)  # context
    assert all(len(ln) <= 80 for ln in lines)
    assert "Related Content" not in diff  # only the changed parts and their neighbours


@pytest.mark.parametrize(
    ("old", "new", "empty"),
    [
        ("One sentence. Two sentences.", "One sentence. Two sentences.", True),
        ("One sentence.  Two\nsentences.", "One sentence. Two sentences.", True),
        ("One sentence. Two sentences.", "One sentence. Three sentences.", False),
        ("", "A new text.", False),
    ],
)
def test_readable_diff_is_empty_only_when_the_sentences_are_the_same(old: str, new: str, empty: bool) -> None:
    assert (readable_diff(old, new) == "") is empty


def test_revision_of_an_api_body() -> None:
    """A 2009 API body: a sentence appended at the end is material, a date line is not."""
    body = next(json.loads(line)["text"] for line in (FIXTURES / "docs.jsonl").read_text().splitlines()
                if json.loads(line)["id"] == "api2020-09-063")
    title = "New York Man Pleads Guilty to Federal Hate Crime Conspiracy"
    assert not compare(title, body, title, "January 27, 2009\n\n" + body).material
    appended = body.rstrip() + " Sentencing is set for May 1, 2009."
    verdict = compare(title, body, title, appended)
    assert verdict.material and verdict.reason.startswith("sentence appended")
