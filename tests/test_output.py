"""The one listing writer (crawler.cli.output): tables sized by their cells, cut with "…", fitted to a width;
JSON lines and CSV with the same cell rules."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from crawler.cli.output import Column, table, write_rows

ROWS = [
    {"id": 7, "source": "doj", "topics": ["tren_de_aragua", "fentanyl"], "title": "Eight members charged"},
    {"id": 1234, "source": "a-rather-long-outlet-name", "topics": [], "title": "Fentanyl pills seized " * 4},
]


def test_columns_are_as_wide_as_their_widest_cell_and_numbers_align_right() -> None:
    rows = [ROWS[0], {**ROWS[0], "id": 421, "source": "ice"}]
    lines = list(table([Column("id", right=True), Column("source"), Column("title")], rows))
    assert lines == [
        " ID  SOURCE  TITLE",
        "  7  doj     Eight members charged",
        "421  ice     Eight members charged",
    ]


def test_a_capped_column_is_cut_with_an_ellipsis() -> None:
    lines = list(table([Column("source", max=10), Column("id")], ROWS))
    assert lines == ["SOURCE      ID", "doj         7", "a-rather-…  1234"]


def test_the_last_column_fits_the_width_and_the_widest_others_give_way_first() -> None:
    columns = [Column("id"), Column("source", min=8), Column("topics", min=8), Column("title", min=20)]
    for width in (120, 80, 50):
        lines = list(table(columns, ROWS, fit=width))
        assert all(len(line) <= width for line in lines), (width, lines)
    narrow = list(table(columns, ROWS, fit=50))
    assert narrow[1:] == ["7     doj         tren_de_a…  Eight members charg…",
                          "1234  a-rather-…              Fentanyl pills seiz…"]
    # Too narrow for the minimums: every column at its own (ID has none), the title at 20.
    tight = list(table(columns, ROWS, fit=10))
    assert tight[2] == "1234  a-rathe…            Fentanyl pills seiz…"


def test_json_and_csv_stream_every_row_with_the_same_cells() -> None:
    rows = [{**r, "published": datetime(2026, 1, 2, 3, 4, tzinfo=UTC)} for r in ROWS]
    out = io.StringIO()
    assert write_rows(iter(rows), "json", [], out, empty="(none)") == 2
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["published"] == "2026-01-02T03:04:00+00:00" and first["topics"] == ["tren_de_aragua", "fentanyl"]
    out = io.StringIO()
    assert write_rows(iter(rows), "csv", [], out, empty="(none)") == 2
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert parsed[0]["topics"] == "tren_de_aragua;fentanyl" and parsed[0]["published"] == "2026-01-02T03:04:00+00:00"
    out = io.StringIO()
    assert write_rows(iter([]), "table", [Column("id")], out, empty="(none)") == 0
    assert out.getvalue() == "(none)\n"
