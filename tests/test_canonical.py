"""Canonical URLs fold the variants one article arrives under, and nothing else (table-driven)."""

from __future__ import annotations

import pytest

from pipelines.canonical import canonical_url

SAME = [
    ("https://www.justice.gov/opa/pr/x", "https://justice.gov/opa/pr/x"),
    ("http://www.justice.gov/opa/pr/x", "https://justice.gov/opa/pr/x"),
    ("https://www.justice.gov/opa/pr/x/", "https://justice.gov/opa/pr/x"),
    ("https://www.justice.gov/opa/pr/x#main", "https://justice.gov/opa/pr/x"),
    ("https://WWW.Justice.GOV/opa/pr/x?utm_source=feed&utm_medium=rss", "https://justice.gov/opa/pr/x"),
    ("https://example.org/a?fbclid=abc&id=3", "https://example.org/a?id=3"),
    ("https://example.org/a?b=2&a=1", "https://example.org/a?a=1&b=2"),
    ("https://example.org:443/a", "https://example.org/a"),
    ("https://example.org/a%20b", "https://example.org/a b".replace(" ", "%20")),
    ("https://example.org/caf%C3%A9", "https://example.org/café"),
]
DIFFERENT = [
    ("https://justice.gov/opa/pr/x", "https://justice.gov/opa/pr/y"),
    ("https://example.org/a?id=3", "https://example.org/a?id=4"),
    ("https://example.org/Case", "https://example.org/case"),
    ("https://example.org:8080/a", "https://example.org/a"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_variants_fold_to_one_key(a: str, b: str) -> None:
    assert canonical_url(a) == canonical_url(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_distinct_articles_stay_distinct(a: str, b: str) -> None:
    assert canonical_url(a) != canonical_url(b)


def test_canonical_is_idempotent() -> None:
    for a, _ in SAME + DIFFERENT:
        assert canonical_url(canonical_url(a)) == canonical_url(a)
