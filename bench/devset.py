"""The news dev set (English, Spanish, French): precision / recall / F1 per topic and per language, on the
tuned part and on the held-aside part, and the DOJ dev set beside it.

    python bench/devset.py [--news PATH] [--topics PATH] [--json] [--show-held]

tests/fixtures/classify/news.jsonl holds news items written in the shape of real reporting (see the README
next to it). Each item belongs to the tuned part or the held-aside part by a seeded hash of its id
(``part_of``), fixed before any rule was changed for it: the rules are tuned on the tuned part only, and the
held-aside part's misses are not listed unless ``--show-held`` is given (for the final report, not while
tuning). tests/fixtures/classify/news_fresh.jsonl ... news_fresh5.jsonl (parts "fresh" ... "fresh5") are later
batches, each written and committed before its first run (see the README
next to them). Exit status is 0; tests/test_classify_news.py enforces the aims.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as `python bench/devset.py` without installing the package
    sys.path.insert(0, str(ROOT))

from bench.classify import DEVSET, TopicScore, evaluate, load_devset  # noqa: E402
from pipelines.classify import Classifier  # noqa: E402

NEWS = ROOT / "tests" / "fixtures" / "classify" / "news.jsonl"
FRESH = ROOT / "tests" / "fixtures" / "classify" / "news_fresh.jsonl"
FRESH2 = ROOT / "tests" / "fixtures" / "classify" / "news_fresh2.jsonl"
FRESH3 = ROOT / "tests" / "fixtures" / "classify" / "news_fresh3.jsonl"
FRESH4 = ROOT / "tests" / "fixtures" / "classify" / "news_fresh4.jsonl"
FRESH5 = ROOT / "tests" / "fixtures" / "classify" / "news_fresh5.jsonl"
BATCHES = {
    "fresh": FRESH,
    "fresh2": FRESH2,
    "fresh3": FRESH3,
    "fresh4": FRESH4,
    "fresh5": FRESH5,
}  # later batches, each its own part
SPLIT_SEED = "borderwatch-news-v1"
HELD_SHARE = 3  # in tenths: about 30 % of the items are held aside
LANGUAGES = ("en", "es", "fr")
PARTS = ("tuned", "held", *BATCHES)


def part_of(item_id: str) -> str:
    """ "held" or "tuned": the first 32 bits of SHA-256(seed:id), modulo 10, below HELD_SHARE is held."""
    digest = hashlib.sha256(f"{SPLIT_SEED}:{item_id}".encode()).hexdigest()
    return "held" if int(digest[:8], 16) % 10 < HELD_SHARE else "tuned"


def load_news(path: Path = NEWS) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def with_parts(news: Sequence[dict[str, Any]], batches: dict[str, Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows with their part: "tuned" / "held" by ``part_of``, a later batch's name for its rows."""
    return [{**r, "part": part_of(r["id"])} for r in news] + [
        {**r, "part": name} for name, rows in batches.items() for r in rows
    ]


def _micro(scores: Iterable[TopicScore]) -> TopicScore:
    total = TopicScore("all")
    for s in scores:
        total.tp, total.fp, total.fn = total.tp + s.tp, total.fp + s.fp, total.fn + s.fn
    return total


def slices(classifier: Classifier, rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, TopicScore]]:
    """(part, language) -> topic -> score, with "all" for either key."""
    out: dict[tuple[str, str], dict[str, TopicScore]] = {}
    for part in (*PARTS, "all"):
        for lang in (*LANGUAGES, "all"):
            chosen = [r for r in rows if part in ("all", r["part"]) and lang in ("all", r["language"])]
            out[(part, lang)] = evaluate(classifier, chosen)
    return out


def hardest(classifier: Classifier, rows: Sequence[dict[str, Any]], n: int = 10) -> list[dict[str, Any]]:
    """The n items whose deciding score sits closest to the threshold on the wrong side or just on the
    right one: a miss or a false positive first, then the narrowest margins."""
    thresholds = {t: 2.0 for t in classifier.topic_ids}
    ranked: list[tuple[float, dict[str, Any]]] = []
    for row in rows:
        results = {r.topic: r for r in classifier.classify(row["title"], row["text"], row.get("meta"))}
        for topic in classifier.topic_ids:
            r = results.get(topic)
            score = r.score if r else 0.0
            gold = topic in row["labels"]
            matched = bool(r and r.matched)
            margin = (score - thresholds[topic]) if gold else (thresholds[topic] - score)
            if not gold and score == 0:
                continue
            wrong = matched != gold
            ranked.append(
                (
                    (-100.0 if wrong else 0.0) + abs(margin),
                    {
                        "id": row["id"],
                        "part": row["part"],
                        "topic": topic,
                        "gold": gold,
                        "matched": matched,
                        "score": round(score, 3),
                        "evidence": [f"{e.where}: {e.phrase!r} {e.weight:+.2f}" for e in (r.evidence if r else ())],
                    },
                )
            )
    ranked.sort(key=lambda x: (x[0], x[1]["id"], x[1]["topic"]))
    return [item for _, item in ranked[:n]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--news", type=Path, default=NEWS)

    parser.add_argument("--topics", type=Path, default=None, help="topics file (default: the shipped one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--show-held", action="store_true", help="also list the held-aside part's misses")
    args = parser.parse_args(argv)

    classifier = Classifier.from_file(args.topics)
    news = with_parts(load_news(args.news), {n: load_news(p) for n, p in BATCHES.items() if p.is_file()})
    table = slices(classifier, news)
    doj = evaluate(classifier, load_devset(DEVSET))

    def figures(s: TopicScore) -> dict[str, Any]:
        return {
            "gold": s.tp + s.fn,
            "tp": s.tp,
            "fp": s.fp,
            "fn": s.fn,
            "precision": round(s.precision, 3),
            "recall": round(s.recall, 3),
            "f1": round(s.f1, 3),
        }

    if args.json:
        out: dict[str, Any] = {
            "news": {
                f"{part}/{lang}": {
                    "items": sum(1 for r in news if part in ("all", r["part"]) and lang in ("all", r["language"])),
                    **{t: figures(s) for t, s in scores.items()},
                    "micro": figures(_micro(scores.values())),
                }
                for (part, lang), scores in table.items()
            },
            "doj_devset": {t: figures(s) for t, s in doj.items()},
            "misses_tuned": {
                t: {"false_positives": s.false_positives, "false_negatives": s.false_negatives}
                for t, s in table[("tuned", "all")].items()
            },
        }
        if args.show_held:
            for part in ("held", *BATCHES):
                out[f"misses_{part}"] = {
                    t: {"false_positives": s.false_positives, "false_negatives": s.false_negatives}
                    for t, s in table[(part, "all")].items()
                }
            out["hardest"] = hardest(classifier, news)
        print(json.dumps(out, indent=2))
        return 0

    print(f"news dev set: {args.news} — {len(news)} items")
    header = (
        f"{'part':<6} {'lang':<4} {'topic':<10} {'gold':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'P':>6} {'R':>6} {'F1':>6}"
    )
    print(header)
    for (part, lang), scores in table.items():
        for topic, s in [*scores.items(), ("micro", _micro(scores.values()))]:
            print(
                f"{part:<6} {lang:<4} {topic:<10} {s.tp + s.fn:>4} {s.tp:>4} {s.fp:>4} {s.fn:>4} "
                f"{s.precision:>6.3f} {s.recall:>6.3f} {s.f1:>6.3f}"
            )
    print("\nmisses, tuned part")
    for t, s in table[("tuned", "all")].items():
        print(f"  {t}: false positives {s.false_positives or '-'}; false negatives {s.false_negatives or '-'}")
    if args.show_held:
        for part in ("held", *BATCHES):
            print(f"\nmisses, {part} part")
            for t, s in table[(part, "all")].items():
                print(f"  {t}: false positives {s.false_positives or '-'}; false negatives {s.false_negatives or '-'}")
        print("\nthe ten hardest items (wrong first, then the narrowest margins)")
        for h in hardest(classifier, news):
            verdict = "ok" if h["gold"] == h["matched"] else "WRONG"
            print(f"  {h['id']} [{h['part']}] {h['topic']} gold={h['gold']} score={h['score']} {verdict}")
            for e in h["evidence"][:4]:
                print(f"      {e}")
    print(f"\nDOJ dev set ({DEVSET.name}):")
    for t, s in doj.items():
        print(f"  {t:<10} P {s.precision:.3f}  R {s.recall:.3f}  F1 {s.f1:.3f}  (gold {s.tp + s.fn})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
