"""The read side's search interface (CLI ``items --search``, ``borderwatch serve``): see ``pipelines.search``.

The engine lives in ``pipelines`` because watchers that follow a query (``alerts``) use it too, and
dependencies point crawler → alerts → pipelines.
"""

from __future__ import annotations

from pipelines.search import (
    COUNT_LIMIT,
    FACET_WINDOW,
    RANK_WINDOW,
    Filter,
    Hit,
    Query,
    QueryError,
    SearchPage,
    Term,
    Timeline,
    count_at_most,
    count_matches,
    facets,
    highlight,
    matches,
    matching_ids,
    overview,
    parse,
    search,
    snippet,
    timeline,
)

__all__ = [
    "COUNT_LIMIT", "FACET_WINDOW", "RANK_WINDOW",
    "Filter", "Hit", "Query", "QueryError", "SearchPage", "Term", "Timeline",
    "count_at_most", "count_matches", "facets",
    "highlight", "matches", "matching_ids", "overview", "parse", "search", "snippet", "timeline",
]
