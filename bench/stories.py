"""Story grouping benchmark: precision and recall of "same story" on the pairs dev set, and speed.

    python bench/stories.py            # dev set (as stored, then text only), clustering, 10,000-doc timing
    python bench/stories.py --quick    # skip the timing run
    python bench/stories.py --quick --part tuned   # per part: only this one (dev, tuned, held-out)

The dev set is tests/fixtures/stories/{docs,pairs}.jsonl (see the README there). Precision comes first:
every false merge is listed.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import html
import itertools
import json
import random
import re
import resource
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.stories import (  # noqa: E402
    StoryDoc,
    StoryIndex,
    _analyse,
    fingerprint,
    normalize_title,
    story_title,
)
from pipelines.text import split_sentences  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "stories"
PARTS = ["dev", "tuned", "held-out", "held-out-2"]  # the original set; short reprints tuned on; held out


def load_docs() -> tuple[dict[str, StoryDoc], dict[str, str]]:
    docs: dict[str, StoryDoc] = {}
    story: dict[str, str] = {}
    for n, line in enumerate((FIXTURES / "docs.jsonl").read_text().splitlines()):
        d = json.loads(line)
        published = datetime.fromisoformat(d["published"]).replace(tzinfo=UTC) if d["published"] else None
        docs[d["id"]] = StoryDoc(n + 1, d["title"], d["text"], published, d["url"], d["release_number"])
        story[d["id"]] = d["story"]
    return docs, story


def load_pairs() -> list[dict[str, object]]:
    return [json.loads(line) for line in (FIXTURES / "pairs.jsonl").read_text().splitlines()]


def text_only(doc: StoryDoc) -> StoryDoc:
    """The document without its strong keys, so that only the text decides."""
    return replace(doc, release_number=None, url=f"urn:bench:{doc.item_id}")


def judge_pair(a: StoryDoc, b: StoryDoc) -> tuple[bool, str]:
    """Index the earlier document, match the later one."""
    first, second = sorted((a, b), key=lambda d: (d.published or datetime.min.replace(tzinfo=UTC), d.item_id))
    index = StoryIndex()
    index.add(first, story_id=1)
    found = index.match(second)
    return (found is not None, found.reason if found else "")


def evaluate_pairs(docs: dict[str, StoryDoc], pairs: list[dict[str, object]], strip_keys: bool,
                   part: str | None = None) -> None:
    """``part``: only the pairs of one part of the set (dev, tuned, held-out; see the README there)."""
    if part is not None:
        pairs = [row for row in pairs if row.get("part", "dev") == part]
    tp = fp = fn = tn = 0
    false_merges: list[str] = []
    misses: Counter[str] = Counter()
    missed: list[str] = []
    for row in pairs:
        a, b = docs[str(row["a"])], docs[str(row["b"])]
        if strip_keys:
            a, b = text_only(a), text_only(b)
        predicted, reason = judge_pair(a, b)
        if row["same"]:
            if predicted:
                tp += 1
            else:
                fn += 1
                kind = _kind(str(row["a"]), str(row["b"]))
                misses[kind] += 1
                missed.append(f"    {row['a']} ~ {row['b']}")
        elif predicted:
            fp += 1
            false_merges.append(f"    {row['a']} ~ {row['b']}: {reason}  [{row['note']}]")
        else:
            tn += 1
    label = "text only (release numbers and URLs removed)" if strip_keys else "as stored (keys and text)"
    if part is not None:
        label += f", {part} part"
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(f"\n== pairs, {label}")
    print(f"  same-story pairs {tp + fn}, different-story pairs {fp + tn}")
    print(f"  precision {precision:.3f}  recall {recall:.3f}  (tp {tp}, fp {fp}, fn {fn}, tn {tn})")
    print(f"  false merges: {fp}")
    for line in false_merges:
        print(line)
    if misses:
        print("  missed same-story pairs by kind: " + ", ".join(f"{k} {n}" for k, n in misses.most_common()))
        for line in missed:
            print(line)


def _kind(a: str, b: str) -> str:
    ids = a + " " + b
    if a.startswith("r-") or b.startswith("r-"):
        return "short reprint"
    for key in ("-es", "-fr", "-en"):
        if key in ids:
            return "other language"
    if "news" in ids:
        return "news rewrite"
    if "feed-" in ids:
        return "feed opening vs opening"
    return "copy"


def evaluate_clustering(docs: dict[str, StoryDoc], story: dict[str, str], strip_keys: bool = False) -> None:
    """Feed every document in date order through match-then-add, as the storage layer does."""
    if strip_keys:
        docs = {k: text_only(d) for k, d in docs.items()}
    order = sorted(docs, key=lambda k: (docs[k].published or datetime.min.replace(tzinfo=UTC), docs[k].item_id))
    index = StoryIndex()
    assigned: dict[str, int] = {}
    next_story = 1
    for key in order:
        found = index.match(docs[key])
        if found is None:
            assigned[key] = next_story
            next_story += 1
        else:
            assigned[key] = found.story_id
        index.add(docs[key], assigned[key])
    tp = fp = fn = 0
    wrong: list[str] = []
    for a, b in itertools.combinations(order, 2):
        gold, got = story[a] == story[b], assigned[a] == assigned[b]
        tp += gold and got
        fn += gold and not got
        if got and not gold:
            fp += 1
            wrong.append(f"    {a} ~ {b}")
    label = ", text only" if strip_keys else ""
    print(f"\n== clustering all {len(docs)} documents in date order (match, then add{label})")
    print(f"  stories found {len(set(assigned.values()))}, gold {len(set(story.values()))}")
    print(f"  pairwise precision {tp / (tp + fp) if tp + fp else 1.0:.3f}  recall {tp / (tp + fn):.3f}"
          f"  (false merges {fp})")
    for line in wrong:
        print(line)


def synthetic(n: int, seed: int = 7) -> list[tuple[StoryDoc, int]]:
    """``n`` documents built from real DOJ sentences; about a quarter are copies of an earlier one."""
    rng = random.Random(seed)
    pool: list[str] = []
    for line in (FIXTURES / "docs.jsonl").read_text().splitlines():
        for paragraph in json.loads(line)["text"].split("\n\n"):
            pool.extend(s for s in split_sentences(paragraph) if len(s) > 60)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[tuple[StoryDoc, int]] = []
    for i in range(n):
        published = start + timedelta(hours=i * 0.5)
        if out and rng.random() < 0.25:
            src, story = out[rng.randrange(max(0, len(out) - 200), len(out))]
            text = "U.S. Attorney's Office\n\nFOR IMMEDIATE RELEASE\n\n" + src.text + "\n\nUpdated " + str(published.date())
            out.append((StoryDoc(i + 1, src.title, text, published, f"https://copy.example/{i}"), story))
            continue
        sentences = rng.sample(pool, rng.randint(8, 30))
        # A unique name and number so that two documents drawing the same sentences stay two stories.
        tag = f"Defendant{i:05d} Casefile{i * 7919 % 100000:05d}, {20 + i % 60}, "
        paragraphs = ["\n\n".join(" ".join(sentences[j:j + 3]) for j in range(0, len(sentences), 3))]
        title = re.sub(r"\s+", " ", sentences[0][:80]) + f" (case {i})"  # titles of distinct items differ
        out.append((StoryDoc(i + 1, title, tag + paragraphs[0], published, f"https://gen.example/{i}"), i + 1))
    return out


def timing(n: int = 10_000) -> None:
    """Two runs over ``n`` documents: the storage layer's flow for new items (fingerprint, match, add),
    and a start-up load of stored items with their stored signatures. CPU time is reported beside
    wall time because the benchmark may share the machine."""
    docs = synthetic(n)
    copies = sum(1 for d, g in docs if d.item_id != g)
    print(f"\n== timing: {n} synthetic documents (real DOJ sentences, {copies} copies, "
          f"{sum(len(d.text) for d, _ in docs) // n} characters on average)")
    gc.collect()
    rss_before = _rss_mb()
    index = StoryIndex()
    gold_of: dict[int, int] = {}
    merged = wrong = 0
    sigs: list[bytes] = []
    fp_cpu = fp_wall = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for doc, gold in docs:
        c, w = time.process_time(), time.perf_counter()
        sig = fingerprint(doc.title, doc.text)
        fp_cpu += time.process_time() - c
        fp_wall += time.perf_counter() - w
        sigs.append(sig)
        found = index.match(doc, sig)
        if found:
            merged += 1
            if gold_of[found.item_id] != gold:
                wrong += 1
                print(f"    wrong: {doc.item_id} -> {found.item_id} ({found.reason})")
        gold_of[doc.item_id] = gold
        index.add(doc, found.story_id if found else doc.item_id, sig)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    gc.collect()
    size = _rss_mb() - rss_before
    print(f"  new items: fingerprint {fp_cpu:.1f} s CPU ({fp_wall:.1f} s wall), match+add {cpu - fp_cpu:.1f} s CPU "
          f"({wall - fp_wall:.1f} s wall); {(cpu / n) * 1000:.2f} ms CPU per item in all")
    print(f"  matched {merged} (copies {copies}), wrong story {wrong}; index of {len(index)} items "
          f"about {size:.0f} MB; signature {len(sigs[0])} bytes")
    del index
    gc.collect()
    load = StoryIndex()
    _analyse.cache_clear()  # as after a restart: stored signatures, texts analysed again
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for (doc, _), sig in zip(docs, sigs, strict=True):
        load.add(doc, doc.item_id, sig)
    print(f"  start-up load of {n} stored items with their signatures: {time.process_time() - cpu0:.1f} s CPU "
          f"({time.perf_counter() - wall0:.1f} s wall)")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 1e6


def outlet_titles() -> None:
    """The real news pages' ``<title>`` (``../shared/corpus/news_pages``, 258 pages of ~130 outlets) against
    each article's own headline: how often ``story_title`` removes the outlet's name, and how often it
    removes a word of the headline."""
    sys.path.insert(0, str(FIXTURES))
    from build_pairs import CORPUS

    pages = shortened = equal_before = equal_after = lost = 0
    for expected_file in sorted((CORPUS / "news_pages").glob("*/*.json")):
        pages_of = sorted(expected_file.parent.glob(f"{expected_file.stem}_*.html.gz"))
        for page, record in zip(pages_of, json.loads(expected_file.read_text()).values(), strict=False):
            markup = gzip.decompress(page.read_bytes()).decode("utf-8", errors="replace")
            m = re.search(r"<title[^>]*>(.*?)</title>", markup, re.S)
            if not m or not record.get("title"):
                continue
            pages += 1
            raw, headline = html.unescape(m.group(1)), normalize_title(record["title"])
            before, after = normalize_title(raw).split(), normalize_title(story_title(raw)).split()
            equal_before += " ".join(before) == headline
            equal_after += " ".join(after) == headline
            if len(after) < len(before):
                shortened += 1
                lost += any(len(w) > 3 and w in headline.split() for w in before if w not in after)
    print(f"\n== outlet names around real titles: {pages} news pages")
    print(f"  <title> equal to the headline: {equal_before} as served, {equal_after} with the outlet's name set "
          f"aside; {shortened} shortened, {lost} losing a word of the headline")


def whole_feed() -> None:
    """Every item of the 2026 feed (1,020, title and opening) in date order: every merge is listed,
    marked whether the dev set labels it the same story."""
    sys.path.insert(0, str(FIXTURES))
    from build_pairs import CORPUS, FEED_SAME, feed_text

    feed = [json.loads(line) for line in (CORPUS / "doj_feed_items_2026.jsonl").read_text().splitlines()]
    docs = [StoryDoc(i, " ".join(f["title"].split()), feed_text(f),
                     datetime.fromisoformat(f["date"]).replace(tzinfo=UTC), f["url"] or f"urn:feed:{i}")
            for i, f in enumerate(feed)]
    cluster = {i: i for pair in FEED_SAME for i in pair}  # the labelled stories, as sets of items
    for a, b in FEED_SAME:
        old, new = cluster[b], cluster[a]
        cluster = {k: (new if v == old else v) for k, v in cluster.items()}
    index = StoryIndex()
    merges: list[str] = []
    unlabelled = 0
    for doc in sorted(docs, key=lambda d: (d.published or datetime.min.replace(tzinfo=UTC), d.item_id)):
        found = index.match(doc)
        if found:
            known = cluster.get(doc.item_id, -1) == cluster.get(found.item_id, -2)
            unlabelled += not known
            merges.append(f"    {'labelled same' if known else 'NOT LABELLED '} {doc.item_id} ~ {found.item_id}: "
                          f"{found.reason} | {doc.title[:60]}")
        index.add(doc, found.story_id if found else doc.item_id)
    print(f"\n== whole 2026 feed: {len(docs)} items, {len(merges)} merges, {unlabelled} not labelled same")
    for line in merges:
        if "NOT" in line:
            print(line)


def aggregator_summaries() -> None:
    """Real paraphrases: kingcounty.solutions' own summaries of 64 DOJ releases (read from the corpus at
    run time, not copied into the fixtures), matched without a title against the DOJ text."""
    sys.path.insert(0, str(FIXTURES))
    from build_pairs import CORPUS, markdown_to_text

    rows = [json.loads(line) for line in (CORPUS / "justice_gov" / "rss_items_2025-11.jsonl").read_text().splitlines()]
    releases, summaries = [], []
    for n, r in enumerate(rows):
        day = datetime.fromisoformat(r["date"]).astimezone(UTC)
        releases.append(StoryDoc(n + 1, r["title"], markdown_to_text(r["original_markdown_body"]), day,
                                 r["source_url"]))
        summaries.append(StoryDoc(1000 + n, "", r["kc_summary"], day, f"urn:kc-summary:{n}"))
    index = StoryIndex()
    for doc in releases:
        index.add(doc, doc.item_id)
    found = wrong = 0
    for n, summary in enumerate(summaries):
        m = index.match(summary)
        if m is not None:
            found += m.story_id == n + 1
            wrong += m.story_id != n + 1
    print(f"\n== aggregator summaries (real paraphrases, no title): {len(summaries)} summaries against "
          f"{len(releases)} releases")
    print(f"  matched to their release {found} (recall {found / len(summaries):.2f}), to another release {wrong}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the 10,000-document timing run")
    parser.add_argument("--part", choices=PARTS, help="report only this part of the set besides the totals")
    args = parser.parse_args()
    docs, story = load_docs()
    pairs = load_pairs()
    evaluate_pairs(docs, pairs, strip_keys=False)
    evaluate_pairs(docs, pairs, strip_keys=True)
    for part in PARTS if args.part is None else [args.part]:
        evaluate_pairs(docs, pairs, strip_keys=True, part=part)
    evaluate_clustering(docs, story)
    evaluate_clustering(docs, story, strip_keys=True)
    whole_feed()
    aggregator_summaries()
    outlet_titles()
    if not args.quick:
        timing()


if __name__ == "__main__":
    main()
