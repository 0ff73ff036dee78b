"""Story grouping: copies of one story share a story id, different stories never do.

Documents come from tests/fixtures/stories/docs.jsonl: real DOJ texts (the 25-1075 TdA extradition
page, the 26-149 Anti-Tren indictment, 2009 API bodies, 2026 feed openings) and rewrites and hard
negatives written for the dev set (see the README there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from pipelines.stories import (
    StoryDoc,
    StoryIndex,
    StoryMatch,
    fingerprint,
    story_features,
    story_paragraphs,
    story_title,
)

FIXTURES = Path(__file__).parent / "fixtures" / "stories"
ROOT = Path(__file__).resolve().parents[1]


@cache
def _docs() -> dict[str, StoryDoc]:
    docs = {}
    for n, line in enumerate((FIXTURES / "docs.jsonl").read_text().splitlines()):
        d = json.loads(line)
        published = datetime.fromisoformat(d["published"]).replace(tzinfo=UTC)
        docs[d["id"]] = StoryDoc(n + 1, d["title"], d["text"], published, d["url"], d["release_number"])
    return docs


def doc(key: str) -> StoryDoc:
    return _docs()[key]


def text_only(d: StoryDoc) -> StoryDoc:
    """Without release number and URL, so that only the text can match."""
    return replace(d, release_number=None, url=f"urn:test:{d.item_id}")


def match_pair(first: StoryDoc, second: StoryDoc) -> StoryMatch | None:
    index = StoryIndex()
    index.add(first, story_id=7)
    return index.match(second)


# (indexed first, matched second, start of the expected reason)
SAME_STORY = [
    ("doj-25-1075", "tda-chile-usao-copy", "near-duplicate text"),  # USAO copy, own header and footer
    ("doj-25-1075", "kc-25-1075", "same title and date"),  # aggregator's markdown of the same page
    ("doj-25-1075", "tda-chile-reprint", "near-duplicate text"),  # reprint inside a site's chrome
    ("doj-25-1075", "tda-chile-news", "rewrite"),  # new lede, reordered paragraphs, one quote kept
    ("doj-25-1075", "tda-chile-es", "same facts"),  # Spanish report
    ("doj-25-1075", "tda-chile-fr", "same facts"),  # French report
    ("tda-chile-news", "tda-chile-es", "same facts"),  # two rewrites of one release
    ("doj-26-149", "anti-tren-usao-copy", "same title and date"),
    ("doj-26-149", "api-26-149-excerpt", "same title and date"),  # the API's first ~900 characters
    ("doj-26-149", "anti-tren-news", "rewrite"),
    ("doj-26-149", "anti-tren-es", "same facts"),
    ("denver-tda-indictment", "denver-tda-news", "rewrite"),
    ("denver-tda-indictment", "denver-tda-es", "same facts"),
    ("az-fentanyl-reyes", "az-fentanyl-reyes-news", "rewrite"),
    ("laredo-straw", "laredo-straw-es", "same facts"),
    ("mou-interpol-en", "mou-interpol-fr", "same facts"),
    ("trilateral-fentanyl-en", "trilateral-fentanyl-es", "same facts"),
    ("sspc-culiacan", "sspc-culiacan-en", "same facts"),
    ("feed-6", "feed-198", "same title and date"),  # OPA and USAO Middle Georgia, real feed items
    ("feed-70", "feed-446", "similar title and opening"),  # "Florida Man" / "Miami-Dade Man"
    ("feed-156", "feed-182", "similar title and opening"),  # USAO copy posted the next day
    # Short reprints (reprints.py): a lead, one paragraph of the release, credit lines, the outlet's
    # name around the title. The first four were missed before the outlet's name and credits were set
    # aside and short copies were judged on containment.
    ("doj-26-149", "r-anti-tren-borderline", "same title and date"),  # "{title} — Borderline Report"
    ("api2020-09-032", "r-passport-cross-capitol", "same title and date"),  # "{title} - Capitol Wire"
    ("az-fentanyl-reyes", "r-reyes-dispatch", "contained text"),
    ("laredo-straw", "r-laredo-ledger", "near-duplicate text"),
    ("doj-25-1075", "r-tda-chile-courier", "contained text"),  # "Valley Courier | {title}", byline
    ("api2020-09-041", "r-ahmed-cousins-lakeshore", "rewrite"),  # the outlet's own headline
    ("api2020-09-021", "r-belfast-gulf", "contained text"),  # held-out part
    ("api2020-09-067", "r-church-indictment-pioneer", "contained text"),  # held-out part
    # Missed on the first run of the second held-out batch: the reprint is about the "NFL" punter its
    # title and lead name, the release's body says "National Football League" (a name in the release's
    # title now counts as present).
    ("api2020-09-072", "r-prokop-desert", "same title and date"),
    ("api2020-09-023", "r-lloyds-city", "rewrite"),  # the outlet's headline; "Reporting by; Editing by"
]

# (indexed first, matched second, why they are two stories)
DIFFERENT_STORIES = [
    ("doj-26-149", "sdny-tda-robbery", "two TdA indictments, one office, one borough, same boilerplate"),
    ("doj-26-149", "denver-tda-indictment", "two TdA indictments two days apart"),
    ("anti-tren-es", "sdny-tda-robbery-es", "the same two TdA indictments reported in Spanish"),
    ("doj-26-149", "sdny-tda-robbery-es", "an English indictment and another reported in Spanish"),
    ("doj-26-149", "anti-tren-plea-es", "the indictment, then one defendant's plea two days later"),
    ("doj-26-149", "tda-roundup", "a round-up naming the people of three stories"),
    ("doj-25-1075", "tda-chile-second", "another TdA extradition to Chile six days later"),
    ("az-fentanyl-reyes", "az-fentanyl-ortiz", "two fentanyl sentencings, one office, shared boilerplate"),
    ("az-fentanyl-reyes-news", "az-fentanyl-ortiz", "a rewrite of one sentencing and the other"),
    ("laredo-straw", "laredo-smuggling-plea", "two firearms-trafficking cases, one office, two days"),
    ("mou-interpol-en", "trilateral-fentanyl-en", "two agreements three days apart"),
    ("sspc-culiacan", "sspc-sonora", "two seizure communiques of one ministry"),
    ("api2020-09-032", "api2020-09-066", "second and third plea in one case, shared paragraphs"),
    ("api2020-09-015", "api2020-09-042", "two pleas in one Medicare fraud case"),
    ("api2020-09-052", "api2020-09-067", "the arrests, then the indictment 11 days later"),
    ("feed-913", "feed-988", "one office's reentry template, two defendants"),
    ("feed-432", "feed-785", "'Sentenced to 9 Years' vs 'to 12 Years', same template"),
    ("feed-244", "feed-331", "National Night Out in two districts"),
    ("feed-233", "feed-565", "two weekly round-ups of one office"),
    ("feed-548", "feed-668", "two Trinitarios pleas, same title, four days apart"),
    # Short reprints against what they must not join (reprints.py; the last four are the held-out part).
    ("api2020-09-066", "r-passport-cross-capitol", "the next defendant's plea in the same case"),
    ("api2020-09-042", "r-medicare-pascual-ledger", "another plea in the same clinic case"),
    ("api2020-09-067", "r-church-arrests-pioneer", "the indictment of the men arrested 11 days earlier"),
    ("laredo-straw", "r-saldana-bank-fraud", "same outlet and credits, same name, another case"),
    ("r-laredo-ledger", "r-saldana-bank-fraud", "two reprints of one outlet with the same credit lines"),
    ("r-anti-tren-borderline", "r-sdny-robbery-borderline", "one outlet, two TdA indictments, one office"),
    ("az-fentanyl-ortiz", "r-reyes-dispatch", "the other sentencing of the same office"),
    ("api2020-09-052", "r-church-indictment-pioneer", "the arrests, then the indictment: one outlet"),
    ("r-church-arrests-pioneer", "r-church-indictment-pioneer", "the same outlet's two stories of one case"),
    ("api2020-09-071", "r-nicholson-timber", "same name, same stage, same outlet, same day, another case"),
    ("r-medicare-pascual-ledger", "r-medicare-marrero-ledger", "one outlet, two pleas in one case"),
    ("api2020-09-072", "r-prokop-insurance", "a man of the same name and town, indicted the same day"),
    ("r-prokop-desert", "r-prokop-insurance", "the same, both carried by one outlet with one caption"),
    ("r-goldblatt-record", "r-milton-record", "one outlet, two sentencings four days apart"),
    ("api2020-09-055", "r-boulanger-capitol", "two honest-services pleas nine days apart"),
]


@pytest.mark.parametrize(("first", "second", "reason"), SAME_STORY)
def test_copies_share_a_story(first: str, second: str, reason: str) -> None:
    found = match_pair(text_only(doc(first)), text_only(doc(second)))
    if reason == "same title and date" and not first.startswith("feed-"):  # full texts match without it
        retitled = replace(text_only(doc(second)), title="Untitled")
        assert match_pair(text_only(doc(first)), retitled) is not None
    assert found is not None, f"{second} should join the story of {first}"
    assert found.story_id == 7
    assert found.item_id == doc(first).item_id
    assert found.reason.startswith(reason), found.reason
    assert 0.0 < found.similarity <= 1.0


@pytest.mark.parametrize(("first", "second", "why"), DIFFERENT_STORIES)
def test_different_stories_stay_apart(first: str, second: str, why: str) -> None:
    assert match_pair(text_only(doc(first)), text_only(doc(second))) is None, why
    assert match_pair(text_only(doc(second)), text_only(doc(first))) is None, why


@cache
def _dev_set_results() -> dict[str, tuple[list[tuple[str, str]], int, int]]:
    """Per part of the set: the false merges, the same-story pairs found, the same-story pairs."""
    rows = [json.loads(line) for line in (FIXTURES / "pairs.jsonl").read_text().splitlines()]
    results: dict[str, tuple[list[tuple[str, str]], int, int]] = {}
    for row in rows:
        false_merges, found, same = results.setdefault(row["part"], ([], 0, 0))
        a, b = sorted((doc(row["a"]), doc(row["b"])), key=lambda d: (d.published, d.item_id))
        matched = match_pair(a, b) is not None
        if row["same"]:
            results[row["part"]] = (false_merges, found + matched, same + 1)
        elif matched:
            false_merges.append((row["a"], row["b"]))
    return results


# (part, recall floor): dev 0.88 when written (the misses are feed openings, see the README); tuned 0.84
# (the misses: a reprint against rewrites and translations of its release, which it joins through the
# release); held-out 1.0 (8 of 8); held-out-2 5 of 6 on its first run, 6 of 6 since (see the README).
@pytest.mark.parametrize(("part", "recall"), [("dev", 0.8), ("tuned", 0.8), ("held-out", 0.75),
                                              ("held-out-2", 0.8)])
def test_dev_set_has_no_false_merge_and_most_copies_match(part: str, recall: float) -> None:
    false_merges, found, same = _dev_set_results()[part]
    assert false_merges == []
    assert same and found / same >= recall


KEY = doj_key = "doj-26-149"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"release_number": "26-149", "text": "An unrelated text.", "title": "Another title"}, "release number 26-149"),
        ({"release_number": " 26-0149 ", "text": "Some other words."}, "release number 26-149"),
        ({"text": "A re-rendered page.", "title": "Changed", "release_number": ""}, "same canonical url"),
    ],
)
def test_strong_keys_decide(changes: dict[str, str], reason: str) -> None:
    original = doc(KEY)
    copy = replace(original, item_id=999, published=original.published + timedelta(days=40), **changes)
    found = match_pair(original, copy)
    assert found is not None and found.reason == reason and found.similarity == 1.0


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # Same DOJ number from two offices is not a key: OPA's 26-149 is not usao-sdny's 26-149.
        (StoryDoc(1, "Alpha", "x", None, "https://www.justice.gov/opa/pr/a", "26-149"),
         StoryDoc(2, "Beta", "y", None, "https://www.justice.gov/usao-sdny/pr/b", "26-149"), None),
        # One office, two numbers: two releases, whatever the text says.
        (StoryDoc(1, "Same title", "Same text " * 50, None, "https://www.justice.gov/opa/pr/a", "26-149"),
         StoryDoc(2, "Same title", "Same text " * 50, None, "https://www.justice.gov/opa/pr/b", "26-150"), None),
        # Values the 2020 API gives for releases without a number are not numbers.
        (StoryDoc(1, "Alpha", "x", None, "https://www.justice.gov/opa/pr/a", "2"),
         StoryDoc(2, "Beta", "y", None, "https://www.justice.gov/opa/pr/b", "2"), None),
        # Empty URLs are not a key.
        (StoryDoc(1, "Alpha", "x", None, ""), StoryDoc(2, "Beta", "y", None, ""), None),
    ],
)
def test_weak_keys_do_not_decide(first: StoryDoc, second: StoryDoc, expected: None) -> None:
    assert match_pair(first, second) is expected


DAY = datetime(2026, 8, 4, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("title_a", "title_b", "day_b", "matches"),
    [
        ("Knoxville Man Indicted on 22 Counts For Making Threats To Kill Public Officials",
         "KNOXVILLE MAN INDICTED ON 22 COUNTS FOR MAKING THREATS TO KILL PUBLIC OFFICIALS", DAY, True),
        ("Knoxville Man Indicted on 22 Counts For Making Threats To Kill Public Officials",
         "Knoxville Man Indicted on 22 Counts For Making Threats To Kill Public Officials",
         DAY + timedelta(days=3), False),
        # A short title without a number is a kind of item, not a story.
        ("Illegal Alien Pleads Guilty To Unlawful Reentry", "Illegal Alien Pleads Guilty To Unlawful Reentry",
         DAY, False),
        ("Assistant United States Attorney (Criminal)", "Assistant United States Attorney (Criminal)", DAY, False),
        ("United States Attorney's Office Joining Law Enforcement, Community Leaders and Residents for "
         "National Night Out Events", "United States Attorney's Office Joining Law Enforcement, Community "
         "Leaders and Residents for National Night Out Events", DAY, False),
    ],
)
def test_same_title_and_date(title_a: str, title_b: str, day_b: datetime, matches: bool) -> None:
    a = StoryDoc(1, title_a, "", DAY, "https://www.justice.gov/usao-edtn/pr/a")
    b = StoryDoc(2, title_b, "", day_b, "https://www.justice.gov/opa/pr/b")
    found = match_pair(a, b)
    assert (found is not None) == matches
    if found:
        assert found.reason == "same title and date"


def test_copies_are_published_within_two_weeks() -> None:
    original = text_only(doc("doj-25-1075"))
    late = replace(text_only(doc("tda-chile-usao-copy")), published=original.published + timedelta(days=20))
    assert match_pair(original, late) is None
    soon = replace(late, published=original.published + timedelta(days=10))
    assert match_pair(original, soon) is not None


def test_naive_and_aware_dates_mix() -> None:
    original = text_only(doc("doj-25-1075"))
    naive = replace(text_only(doc("tda-chile-usao-copy")), published=datetime(2025, 11, 17, 9, 30))
    assert match_pair(original, naive) is not None
    undated = replace(naive, published=None)
    assert match_pair(original, undated) is not None  # near-duplicate text needs no date


def test_a_revision_replaces_the_old_entry() -> None:
    index = StoryIndex()
    first = text_only(doc("az-fentanyl-reyes"))
    index.add(first, story_id=1)
    laredo = doc("laredo-straw")
    revised = replace(first, text=laredo.text, title=laredo.title, published=laredo.published)
    index.add(revised, story_id=1)  # same item id again: remove then insert, no duplicate-key error
    assert len(index) == 1
    assert index.match(replace(text_only(doc("az-fentanyl-reyes-news")), item_id=50)) is None
    found = index.match(replace(text_only(doc("laredo-straw-es")), item_id=51))
    assert found is not None and found.item_id == first.item_id
    index.remove(first.item_id)
    assert len(index) == 0 and first.item_id not in index


def test_an_item_is_not_its_own_match() -> None:
    index = StoryIndex()
    d = text_only(doc("doj-26-149"))
    index.add(d, story_id=3)
    assert index.match(d) is None


def test_best_match_is_the_closest_item() -> None:
    index = StoryIndex()
    index.add(text_only(doc("tda-chile-news")), story_id=1)
    index.add(text_only(doc("doj-25-1075")), story_id=1)
    index.add(text_only(doc("doj-26-149")), story_id=2)
    found = index.match(text_only(doc("tda-chile-usao-copy")))
    assert found is not None and found.item_id == doc("doj-25-1075").item_id and found.story_id == 1


def test_stored_signatures_are_used_and_bad_ones_recomputed() -> None:
    original, copy = text_only(doc("doj-25-1075")), text_only(doc("tda-chile-usao-copy"))
    index = StoryIndex()
    index.add(original, story_id=4, signature=fingerprint(original.title, original.text))
    assert index.match(copy, signature=fingerprint(copy.title, copy.text)) is not None
    # A signature of an older format, or garbage, is recomputed from the text.
    assert index.match(copy, signature=b"BW\x00garbage") is not None


def test_fingerprint_is_compact_and_deterministic_across_processes() -> None:
    d = doc("doj-26-149")
    sig = fingerprint(d.title, d.text)
    assert isinstance(sig, bytes) and len(sig) <= 600
    code = (
        "import json, sys; from pipelines.stories import fingerprint; "
        "d = json.loads(sys.stdin.read()); sys.stdout.write(fingerprint(d['title'], d['text']).hex())"
    )
    for seed in ("1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code], input=json.dumps({"title": d.title, "text": d.text}),
            capture_output=True, text=True, check=True, cwd=ROOT, env={"PYTHONHASHSEED": seed, "PATH": ""},
        )
        assert bytes.fromhex(out.stdout) == sig


def test_threshold_must_be_a_fraction() -> None:
    with pytest.raises(ValueError):
        StoryIndex(threshold=0)
    with pytest.raises(ValueError):
        StoryIndex(threshold=1.5)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        # The shapes of the news pages in ../shared/corpus/news_pages.
        ("Nepal says 'no proof' flydubai plane suffered bird strike | Reuters",
         "Nepal says 'no proof' flydubai plane suffered bird strike"),
        ("Russia hits Kyiv with ballistic missile, damages buildings and schools - National | Globalnews.ca",
         "Russia hits Kyiv with ballistic missile, damages buildings and schools"),
        ("Death toll in Valencia fire rises to 10 as remains of last missing person found | Spain | The Guardian",
         "Death toll in Valencia fire rises to 10 as remains of last missing person found"),
        ("Fedorov Dismissal Protests Grow * The Gateway Pundit * by Jane Roe", "Fedorov Dismissal Protests Grow"),
        ("Phoenix Man Sentenced to 12 Years — Casa Grande Dispatch", "Phoenix Man Sentenced to 12 Years"),
        ("Phoenix Man Sentenced to 12 Years – Casa Grande Dispatch", "Phoenix Man Sentenced to 12 Years"),
        ("Valley Courier | United States Extradites Three Alleged Members of Tren de Aragua to Chile",
         "United States Extradites Three Alleged Members of Tren de Aragua to Chile"),
        # Not an outlet: an event, a long clause, lower-case words, a title too short to lose a part.
        ("Clinic Owner Pleads Guilty - Sentencing Set", "Clinic Owner Pleads Guilty - Sentencing Set"),
        ("Three Men Charged - Two Remain at Large After the Raid", "Three Men Charged - Two Remain at Large After the Raid"),
        ("Gang leader charged - police say more arrests coming", "Gang leader charged - police say more arrests coming"),
        ("Arrests Made | Reuters", "Arrests Made | Reuters"),
        # Real DOJ titles: a defendant named before a dash, a dash inside parentheses.
        ("Joaquin Guzman Lopez — Son of ‘El Chapo’ and a Leader of Sinaloa Cartel — Pleads Guilty to Federal Drug "
         "Charges in Chicago", "Joaquin Guzman Lopez - Son of 'El Chapo' and a Leader of Sinaloa Cartel - Pleads "
         "Guilty to Federal Drug Charges in Chicago"),
        ("Attorney Advisor (Senior Counsel - Death Penalty)", "Attorney Advisor (Senior Counsel - Death Penalty)"),
        ("Twenty-Seven Members of Tren de Aragua Charged", "Twenty-Seven Members of Tren de Aragua Charged"),
    ],
)
def test_outlet_name_around_a_title_is_set_aside(title: str, expected: str) -> None:
    assert story_title(title) == expected


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("Photo: U.S. Attorney's Office for the Southern District of New York", None),
        ("FILE - Agents outside the courthouse in Phoenix. (AP Photo/Ross D. Franklin, File)", None),
        ("With files from The Canadian Press", None),
        ("Additional reporting by Ana Ruiz; Editing by Tom Hale", None),
        ("Source: U.S. Department of Justice", None),
        ("By Staff | November 15, 2025", None),
        ("By Jane Roe, The Associated Press", None),
        ("READ MORE: Another story entirely", None),
        ("MEXICO CITY (AP) — Mexico's economy grew.", "MEXICO CITY - Mexico's economy grew."),
        ("KATHMANDU, April 25 (Reuters) - Nepal disputed the account.", "KATHMANDU, April 25 - Nepal disputed the account."),
        ("(AP) — Three men were arrested.", "Three men were arrested."),
        # Sentences of the story that look like credits.
        ("By contrast, the court found him guilty.", "By contrast, the court found him guilty."),
        ("By Jan. 5, the gang had moved to Texas", "By Jan. 5, the gang had moved to Texas"),
        ("Tren de Aragua (TdA) - a Venezuelan gang - was designated.", "Tren de Aragua (TdA) - a Venezuelan gang - was designated."),
    ],
)
def test_credit_lines_are_not_part_of_the_story(line: str, kept: str | None) -> None:
    assert story_paragraphs(line) == ([[kept]] if kept else [])


def test_an_outlets_framing_is_no_evidence() -> None:
    """The outlet's name, byline, agency credit and picture credits leave the signature and the
    features exactly as the bare copy's: they can neither join nor split a story."""
    bare_title = "Three Men Indicted for Racially-Motivated Church Arson in Springfield, Mass."
    bare = ("NEW YORK - A federal grand jury indicted three Springfield men.\n\n"
            "The indictment alleges that Benjamin Haskell, 22, Michael Jacques, 24, and Thomas Gleason, 21, "
            "all of Springfield, conspired to burn the church.")
    framed = ("By Staff | January 28, 2009\n\n" + bare.replace("NEW YORK - ", "NEW YORK (AP) — ")
              + "\n\nPhoto: Springfield Fire Department\n\nWith files from The Associated Press")
    for title in (bare_title + " — Pioneer Valley News", "Pioneer Valley News | " + bare_title):
        assert fingerprint(title, framed) == fingerprint(bare_title, bare)
        assert story_features(title, framed) == story_features(bare_title, bare)


def test_a_short_copy_matches_without_its_title() -> None:
    """A reprint under the outlet's own headline is judged on its text: the release's paragraph."""
    for release, reprint in [("az-fentanyl-reyes", "r-reyes-dispatch"), ("api2020-09-032", "r-passport-cross-capitol"),
                             ("api2020-09-015", "r-medicare-pascual-ledger")]:
        untitled = replace(text_only(doc(reprint)), title="Local news")
        found = match_pair(text_only(doc(release)), untitled)
        assert found is not None and found.reason.startswith(("contained text", "short copy")), reprint
