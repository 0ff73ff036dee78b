"""Canonical keys fold the variants one article arrives under, and nothing else; the addresses shown are
real ones, only untracked (table-driven)."""

from __future__ import annotations

import pytest

from pipelines.canonical import canonical_url, page_address, strip_tracking
from pipelines.extract import extract

SAME = [
    ("https://www.justice.gov/opa/pr/x", "https://justice.gov/opa/pr/x"),
    ("http://www.justice.gov/opa/pr/x", "https://justice.gov/opa/pr/x"),
    ("https://www.justice.gov/opa/pr/x/", "https://justice.gov/opa/pr/x"),
    ("https://www.justice.gov/opa/pr/x#main", "https://justice.gov/opa/pr/x"),
    ("https://WWW.Justice.GOV/opa/pr/x?utm_source=feed&utm_medium=rss", "https://justice.gov/opa/pr/x"),
    ("https://example.org/a?fbclid=abc&id=3", "https://example.org/a?id=3"),
    ("https://example.org/a?b=2&a=1", "https://example.org/a?a=1&b=2"),
    ("https://example.org:443/a", "https://example.org/a"),
    ("https://example.org/a b", "https://example.org/a%20b"),  # a raw space and its escape
    ("https://example.org/caf%C3%A9", "https://example.org/café"),
    ("https://example.org/caf%c3%a9", "https://example.org/caf%C3%A9"),  # escapes' hex case
    ("https://example.org/%7Euser", "https://example.org/~user"),  # an escaped unreserved character
    # the same page signed anew: signature, expiry and signing credentials are not which page it is
    ("https://cdn.example.org/n.pdf?Expires=1893456000&Signature=AAA&Key-Pair-Id=K1",
     "https://cdn.example.org/n.pdf?Expires=1893459600&Signature=BBB&Key-Pair-Id=K1"),
    ("https://b.s3.amazonaws.com/n?id=4&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F1&X-Amz-Date=1"
     "&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=abc", "https://b.s3.amazonaws.com/n?id=4"),
    ("https://a.blob.core.windows.net/c/n?sv=2022&se=2026-12-01&sr=b&sp=r&sig=xyz",
     "https://a.blob.core.windows.net/c/n?sv=2022&se=2026-12-02&sr=b&sp=r&sig=uvw"),
]
DIFFERENT = [
    ("https://justice.gov/opa/pr/x", "https://justice.gov/opa/pr/y"),
    ("https://example.org/a?id=3", "https://example.org/a?id=4"),
    ("https://example.org/Case", "https://example.org/case"),
    ("https://example.org:8080/a", "https://example.org/a"),
    # no signature: an ordinary parameter named like a signed one stays part of the key
    ("https://example.org/a?expires=2026", "https://example.org/a?expires=2027"),
    ("https://example.org/search?sp=1", "https://example.org/search?sp=2"),
    # signed, but another page
    ("https://cdn.example.org/a.pdf?Expires=1&Signature=S", "https://cdn.example.org/b.pdf?Expires=1&Signature=S"),
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


# The key itself, where its exact form matters: an IPv6 host keeps its brackets (issue 10).
KEYS = [
    ("http://[::1]:8080/a", "https://[::1]:8080/a"),
    ("http://[::1]/a/", "https://[::1]/a"),
    ("https://[2001:DB8::1]:443/x?utm_source=y", "https://[2001:db8::1]/x"),
    ("http://127.0.0.1:8080/a", "https://127.0.0.1:8080/a"),
    ("https://www.justice.gov/opa/pr/x", "https://justice.gov/opa/pr/x"),
    ("https://example.org/a b", "https://example.org/a%20b"),
    ("https://example.org/caf%c3%a9", "https://example.org/caf%C3%A9"),
    ("https://cdn.example.org/n.pdf?id=2&Expires=1893456000&Signature=AAA", "https://cdn.example.org/n.pdf?id=2"),
    ("https://example.org/a?expires=2026&page=2", "https://example.org/a?expires=2026&page=2"),
]


@pytest.mark.parametrize(("url", "key"), KEYS)
def test_key(url: str, key: str) -> None:
    assert canonical_url(url) == key
    assert canonical_url(key) == key


# What people see: tracking parameters removed, nothing else rewritten.
UNTRACKED = [
    ("http://127.0.0.1:8080/a/?utm_source=x&id=7&fbclid=z", "http://127.0.0.1:8080/a/?id=7"),
    ("https://www.justice.gov/opa/pr/x", "https://www.justice.gov/opa/pr/x"),
    ("https://example.org/a?b=2&a=1&UTM_Medium=rss", "https://example.org/a?b=2&a=1"),
    ("https://example.org/a?q=caf%C3%A9+x&gclid=1#part", "https://example.org/a?q=caf%C3%A9+x#part"),
    ("https://example.org/a?utm_source=x", "https://example.org/a"),
    ("http://[::1]:8080/a?utm_source=x", "http://[::1]:8080/a"),
    ("https://example.org/Case/", "https://example.org/Case/"),
]


@pytest.mark.parametrize(("url", "shown"), UNTRACKED)
def test_strip_tracking(url: str, shown: str) -> None:
    assert strip_tracking(url) == shown


# The address of a fetched page: (final URL, its rel=canonical href, the address shown).
ADDRESSES = [
    ("http://127.0.0.1:8080/a", None, "http://127.0.0.1:8080/a"),
    ("http://127.0.0.1:8080/a?utm_source=x", "", "http://127.0.0.1:8080/a"),
    ("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b?utm_medium=y", "http://127.0.0.1:8080/b"),
    ("http://127.0.0.1:8080/a", "/b", "http://127.0.0.1:8080/b"),
    ("http://127.0.0.1:8080/x/a", "b", "http://127.0.0.1:8080/x/b"),
    ("https://www.example.org/a", "https://example.org/b", "https://example.org/b"),  # www. aside
    ("https://example.org/a", "https://www.example.org/b", "https://www.example.org/b"),
    ("http://example.org/a", "https://example.org/b", "https://example.org/b"),  # the site's own https
    # another site, another port, a scheme that is not the web: the final URL
    ("https://example.org/a", "https://other.example/b", "https://example.org/a"),
    ("https://news.example.org/a", "https://example.org/b", "https://news.example.org/a"),
    ("http://127.0.0.1:8080/a", "http://127.0.0.1:9090/b", "http://127.0.0.1:8080/a"),
    ("http://127.0.0.1:8080/a", "https://127.0.0.1:8080/b", "http://127.0.0.1:8080/a"),
    ("https://example.org/a", "javascript:alert(1)", "https://example.org/a"),
    ("https://example.org/a", "http://[::1", "https://example.org/a"),
]


@pytest.mark.parametrize(("final", "declared", "shown"), ADDRESSES)
def test_page_address(final: str, declared: str | None, shown: str) -> None:
    assert page_address(final, declared) == shown


def test_extract_reads_the_canonical_link() -> None:
    page = ('<html><head><link rel="Alternate" href="/feed"><link rel="CANONICAL" href="/pr/x"></head>'
            "<body><article><p>Some text of an article about a fair.</p></article></body></html>")
    assert extract(page, "http://127.0.0.1/pr/x?utm_source=y").canonical == "/pr/x"
    assert extract("<html><body><p>No head.</p></body></html>", "http://127.0.0.1/a").canonical is None
