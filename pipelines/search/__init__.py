"""Full-text search over the stored items: the grammar, the engine on both databases, snippets."""

from __future__ import annotations

from pipelines.search.engine import (
    COUNT_LIMIT,
    FACET_WINDOW,
    RANK_WINDOW,
    Hit,
    SearchPage,
    Timeline,
    count_at_most,
    count_matches,
    facets,
    matches,
    matching_ids,
    narrow,
    overview,
    search,
    timeline,
)
from pipelines.search.grammar import Filter, Query, QueryError, Term, fold, parse, tokens
from pipelines.search.snippet import highlight, snippet

__all__ = [
    "COUNT_LIMIT", "FACET_WINDOW", "RANK_WINDOW",
    "Filter", "Hit", "Query", "QueryError", "SearchPage", "Term", "Timeline",
    "count_at_most", "count_matches", "facets", "fold",
    "highlight", "matches", "matching_ids", "narrow", "overview", "parse", "search", "snippet", "timeline", "tokens",
]
