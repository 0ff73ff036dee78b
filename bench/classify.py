"""Benchmark the topic classifier: per-topic precision / recall / F1 on the labelled dev set, the
confusion (false positives and negatives with ids), and throughput on 5 KB texts on one core.

    python bench/classify.py [--devset PATH] [--topics PATH] [--seconds N] [--json]

The dev set is tests/fixtures/classify/devset.jsonl (see the README next to it). Exit status is 0; this
prints figures, the test suite enforces the aims.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as `python bench/classify.py` without installing the package
    sys.path.insert(0, str(ROOT))

from pipelines.classify import Classifier  # noqa: E402

DEVSET = ROOT / "tests" / "fixtures" / "classify" / "devset.jsonl"
TEXT_BYTES = 5_000


@dataclass
class TopicScore:
    topic: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load_devset(path: Path = DEVSET) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate(classifier: Classifier, rows: Iterable[dict[str, Any]]) -> dict[str, TopicScore]:
    """Score every row; returns one TopicScore per topic of the classifier."""
    scores = {t: TopicScore(t) for t in classifier.topic_ids}
    for row in rows:
        predicted = {r.topic for r in classifier.matched(row["title"], row["text"], row.get("meta"))}
        gold = set(row["labels"])
        for topic, s in scores.items():
            if topic in predicted and topic in gold:
                s.tp += 1
            elif topic in predicted:
                s.fp += 1
                s.false_positives.append(row["id"])
            elif topic in gold:
                s.fn += 1
                s.false_negatives.append(row["id"])
    return scores


def five_kb_texts(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(title, 5,000-character body) pairs, one per dev row: the row's text followed by the texts of the
    next rows until the body is 5,000 characters long. A demanding mix: each body holds a dozen or more
    stories, so far more topic words than one release of that length."""
    texts = [row["text"] or row["title"] for row in rows]
    out = []
    for i, row in enumerate(rows):
        parts: list[str] = []
        size, j = 0, i
        while size < TEXT_BYTES:
            parts.append(texts[j % len(texts)])
            size += len(parts[-1]) + 2
            j += 1
        out.append((row["title"], "\n\n".join(parts)[:TEXT_BYTES]))
    return out


def long_releases(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """The dev rows whose text is a whole release of at least 4,000 characters, cut to 5,000."""
    return [(row["title"], row["text"][:TEXT_BYTES]) for row in rows if len(row["text"]) >= 4_000]


def throughput(classifier: Classifier, items: Sequence[tuple[str, str]], seconds: float = 2.0) -> float:
    """Items per second on one core: the best of repeated rounds over ``items`` (CPU time, not wall time,
    and the best round, so other load on the machine counts as little as possible), for about
    ``seconds`` of CPU time in all."""
    best = 0.0
    spent = 0.0
    while spent < seconds or best == 0.0:
        start = time.process_time()
        for title, text in items:
            classifier.classify(title, text)
        elapsed = time.process_time() - start
        spent += elapsed
        if elapsed > 0:
            best = max(best, len(items) / elapsed)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devset", type=Path, default=DEVSET)
    parser.add_argument("--topics", type=Path, default=None, help="topics file (default: the shipped one)")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of the speed run")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)

    classifier = Classifier.from_file(args.topics)
    rows = load_devset(args.devset)
    scores = evaluate(classifier, rows)
    items = five_kb_texts(rows)
    speed = throughput(classifier, items, args.seconds)
    releases = long_releases(rows)
    release_speed = throughput(classifier, releases, args.seconds) if releases else 0.0

    if args.json:
        print(
            json.dumps(
                {
                    "devset": {"rows": len(rows), "labels": {t: s.tp + s.fn for t, s in scores.items()}},
                    "topics": {
                        t: {
                            "precision": round(s.precision, 4),
                            "recall": round(s.recall, 4),
                            "f1": round(s.f1, 4),
                            "tp": s.tp,
                            "fp": s.fp,
                            "fn": s.fn,
                            "false_positives": s.false_positives,
                            "false_negatives": s.false_negatives,
                        }
                        for t, s in scores.items()
                    },
                    "items_per_second_5kb": round(speed),
                    "items_per_second_long_releases": round(release_speed),
                },
                indent=2,
            )
        )
        return 0

    print(f"dev set: {args.devset} — {len(rows)} rows")
    print(f"{'topic':<10} {'gold':>5} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>8} {'F1':>6}")
    for t, s in scores.items():
        print(
            f"{t:<10} {s.tp + s.fn:>5} {s.tp:>4} {s.fp:>4} {s.fn:>4} {s.precision:>10.3f} {s.recall:>8.3f} {s.f1:>6.3f}"
        )
    print("\nconfusion")
    for t, s in scores.items():
        print(f"  {t}: false positives {s.false_positives or '-'}")
        print(f"  {t}: false negatives {s.false_negatives or '-'}")
    print(
        f"\nspeed, one core: {speed:,.0f} items/s on {len(items)} {TEXT_BYTES:,}-character texts made of "
        f"consecutive dev texts; {release_speed:,.0f} items/s on the {len(releases)} whole releases of "
        f"4,000+ characters (cut to {TEXT_BYTES:,})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
