"""The command line with bad and big input: complete exports, honest tables, one-line errors, readers
that never wait for a crawl's write lock, and one validation of the config for every command."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import bw, bw_here, write_config

from crawler.cli.main import entry
from pipelines.classify import Classifier
from pipelines.db import Database
from pipelines.items import Article
from pipelines.store import Store
from pipelines.tally import Tally

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TDA = ("Eight members of the Tren de Aragua gang were charged today in Nashville with sex trafficking, "
       "fentanyl distribution and firearms offences.")
FEED = {"name": "doj", "kind": "feed", "url": "http://127.0.0.1:9/feed"}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The console entry point in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        entry(list(args))
    out = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else 0 if code is None else 1), out.out, out.err


def fill(url: str, n: int, *, title: str = "Release {i}", sources: tuple[str, ...] = ("doj", "other")) -> None:
    db = Database(url)
    try:
        store = Store(db, Classifier.from_file(None))
        counts = Tally()
        store.save([
            Article(url=f"https://example.org/r/{i}", source=sources[i % len(sources)], title=title.format(i=i),
                    text=f"{TDA} Case {i}.", published=T0 + timedelta(days=i))
            for i in range(n)
        ], counts)
        assert counts["new"] == n
    finally:
        db.dispose()


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    """A config on SQLite, then on PostgreSQL."""
    return write_config(tmp_path / "c.yaml", {"database": database_url, "sources": [FEED]})


# -- exports are complete; a cut table says so ------------------------------------------------------------


def test_exports_are_complete_and_a_cut_table_says_so(capsys: pytest.CaptureFixture[str], config: Path,
                                                       database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import crawler.read.query

    monkeypatch.setattr(crawler.read.query, "BATCH", 40)  # several batches of the stream
    fill(database_url, 173)
    code, out, err = cli(capsys, "--config", str(config), "items", "--format", "csv")
    assert code == 0 and err == ""
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 173 and len({r["id"] for r in rows}) == 173
    code, out, err = cli(capsys, "--config", str(config), "items", "--format", "json")
    assert code == 0 and len(out.splitlines()) == 173 and err == ""
    code, out, err = cli(capsys, "--config", str(config), "items")
    assert code == 0 and len(out.splitlines()) == 1 + 50
    assert err.strip() == "50 of 173 shown; --limit N or --all"
    code, out, err = cli(capsys, "--config", str(config), "items", "--all")
    assert code == 0 and len(out.splitlines()) == 1 + 173 and err == ""
    code, out, err = cli(capsys, "--config", str(config), "items", "--format", "json", "--limit", "10")
    assert code == 0 and len(out.splitlines()) == 10 and err.strip() == "10 of 173 shown; --limit N or --all"
    code, out, err = cli(capsys, "--config", str(config), "items", "--limit", "173")
    assert code == 0 and len(out.splitlines()) == 1 + 173 and err == ""  # all shown: nothing to say
    code, _, err = cli(capsys, "--config", str(config), "items", "--limit", "5", "--all")
    assert code == 2 and "--limit and --all" in err


def test_stories_fit_the_terminal_and_export_their_copies_as_json(
        capsys: pytest.CaptureFixture[str], config: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import crawler.read.query

    long_title = "Eight Tren de Aragua members charged {i} " + "with a very long list of offences " * 6
    fill(database_url, 12, title=long_title, sources=("doj", "a-rather-long-outlet-name", "another-long-outlet"))
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli(capsys, "--config", str(config), "items", "--stories")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[-1] == "TITLE"  # titles last
    assert all(len(line) <= 80 for line in lines), lines
    assert any(line.rstrip().endswith("…") for line in lines[1:])
    monkeypatch.setattr(crawler.read.query, "BATCH", 5)  # several batches of stories
    code, out, _ = cli(capsys, "--config", str(config), "items", "--stories", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and sum(int(r["copies"]) for r in rows) == 12
    for r in rows:
        copies = json.loads(r["items"])  # JSON, not a Python repr
        assert len(copies) == int(r["copies"]) and all(isinstance(c["id"], int) and c["url"] for c in copies)
        assert set(r["sources"].split(";")) <= {"doj", "a-rather-long-outlet-name", "another-long-outlet"}


def test_unknown_source_and_empty_range_are_usage_errors(capsys: pytest.CaptureFixture[str], config: Path,
                                                           database_url: str) -> None:
    fill(database_url, 4, sources=("doj", "stored-only"))
    code, _, err = cli(capsys, "--config", str(config), "items", "--source", "nosuch")
    assert code == 2 and "--source" in err and "'nosuch'" in err and "doj, stored-only" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = cli(capsys, "--config", str(config), "items", "--source", "stored-only", "--format", "json")
    assert code == 0 and len(out.splitlines()) == 2  # a source no longer configured still has its items
    for stories in ([], ["--stories"]):
        code, _, err = cli(capsys, "--config", str(config), "items", *stories, "--since", "2026-02-01",
                           "--until", "2026-01-01")
        assert code == 2 and "--since 2026-02-01 is not before --until 2026-01-01" in err


def test_search_reads_words_as_the_index_cuts_them(capsys: pytest.CaptureFixture[str], config: Path,
                                                    database_url: str) -> None:
    db = Database(database_url)
    try:
        counts = Tally()
        Store(db, Classifier.from_file(None)).save([
            Article(url="https://example.org/a", source="doj", title="Seizures rose 50% in a year", text=TDA),
            Article(url="https://example.org/b", source="doj", title="Seizures rose 500 tons in a year", text=TDA),
            Article(url="https://example.org/c", source="doj", title="Case file_7 unsealed", text=TDA),
            Article(url="https://example.org/d", source="doj", title="Case fileX7 unsealed", text=TDA),
        ], counts)
    finally:
        db.dispose()

    def titles(search: str) -> list[str]:
        code, out, err = cli(capsys, "--config", str(config), "items", "--search", search, "--format", "json")
        assert code == 0, err
        return [json.loads(line)["title"] for line in out.splitlines()]

    # Punctuation separates words (as in the index): "50%" is the word 50, "file_7" the phrase "file 7".
    assert titles("50%") == ["Seizures rose 50% in a year"]
    assert titles("file_7") == ["Case file_7 unsealed"]
    assert titles("fileX7") == ["Case fileX7 unsealed"]
    assert titles('"rose 500"') == ["Seizures rose 500 tons in a year"]
    # A query with no words at all ("%", a backslash) sets no condition on the text: every item, newest first.
    assert len(titles("%")) == 4 and len(titles("\\")) == 4
    code, _, err = cli(capsys, "--config", str(config), "items", "--search", "since:soon")
    assert code == 2 and err.strip().endswith("--search: since:soon: not a date, date-time or duration: 'soon' "
                                              "(e.g. 2026-11-01, 7d)")
    code, _, err = cli(capsys, "--config", str(config), "items", "--search", "topic:nope x")
    assert code == 2 and "--search: topic:nope: unknown topic" in err
    code, _, err = cli(capsys, "--config", str(config), "items", "--search", "source:nowhere")
    assert code == 2 and "--search: source:nowhere: no source of that name" in err
    assert titles("source:doj seizures -tons") == ["Seizures rose 50% in a year"]
    # A page (--limit) is ranked as the web UI ranks it, with the command's own filters added to the query.
    for extra, expected in ((["--source", "doj"], 2), (["--until", "2000-01-01"], 0), (["--topic", "tda"], 2)):
        code, out, err = cli(capsys, "--config", str(config), "items", "--search", "seizures", "--limit", "5",
                             "--format", "json", *extra)
        assert code == 0, err
        assert len(out.splitlines()) == expected, extra


# -- readers never take the write lock ----------------------------------------------------------------------


def test_readers_run_while_a_writer_holds_the_write_lock(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         sqlite_url: str) -> None:
    config = write_config(tmp_path / "c.yaml", {"database": sqlite_url, "sources": [FEED]})
    fill(sqlite_url, 3)
    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None, timeout=1)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a crawl's long write transaction
        writer.execute("UPDATE items SET title = title || ' (edited)'")
        for args in (["items"], ["items", "--format", "json"], ["items", "--stories"], ["show", "1"],
                     ["status"], ["alerts", "list"]):
            started = time.monotonic()
            code, out, err = cli(capsys, "--config", str(config), *args)
            took = time.monotonic() - started
            assert code == 0, (args, err)
            assert took < 10, (args, took)  # SQLite's busy timeout is 30 s: a reader waiting for the lock fails
            assert "(edited)" not in out  # it reads the last committed state
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=0.1).execute("BEGIN IMMEDIATE")
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_database_behind_is_migrated_on_open_and_a_current_one_is_not(database_url: str) -> None:
    """The read-only revision check lets a new (or older) database through to the migration, once."""
    from sqlalchemy import event, inspect

    from pipelines.db import is_current
    from pipelines.models import Base

    db = Database(database_url)  # empty: behind every revision
    try:
        assert "items" in inspect(db.engine).get_table_names() and is_current(db.engine)
    finally:
        db.dispose()
    with db.engine.begin() as conn:  # back to before the first revision
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE alembic_version")
    assert not is_current(db.engine)
    db.dispose()
    db = Database(database_url)
    try:
        assert is_current(db.engine)
        writes: list[str] = []
        engine = db.engine
        event.listen(engine, "begin", lambda conn: writes.append("begin"))
        again = Database(database_url)  # current: opened without a write transaction
        again.dispose()
        assert writes == []
    finally:
        db.dispose()


# -- one line, the right exit code, never a traceback ------------------------------------------------------

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)

# (config content with {db} for a good database URL, command, exit code, what the line must say)
ONE_LINE: list[tuple[str, list[str], int, str]] = [
    ("database: {db}\n", ["items", "--limit", str(10**21)], 2, "--limit"),
    ("database: {db}\n", ["items", "--since", "99999999999d"], 2, "--since: duration too long"),
    ("database: {db}\n", ["items", "--until", "999999999d"], 2, "--until: duration too long"),
    ("database: {db}\n", ["show", "99999999999999999999"], 2, "ITEM_ID"),
    ("database: {db}\n", ["items", "--search", "x" * 60_000], 2, "--search: too long"),
    ("database: {db}\n", ["items", "--search", "y" * 1000], 0, ""),
    ("database: sqlite:////proc/nope/x.db\n", ["status"], 2, "database: the folder /proc/nope does not exist"),
    ("database: sqlite:////proc/nope/x.db\n", ["items"], 2, "database: the folder /proc/nope does not exist"),
    ("database: 'sqlite:///{tmp}/missing/sub/x.db'\n", ["status"], 2, "missing/sub does not exist"),
    ("database: notaurl\n", ["status"], 2, "database: not a database URL: 'notaurl'"),
    ("database: notaurl\n", ["items"], 2, "database: not a database URL"),
    ("database: 'mysql://u@127.0.0.1/bw'\n", ["status"], 2, "database: mysql://u@127.0.0.1/bw: the driver is not"),
    ("database: 'nosuchdb://x/y'\n", ["status"], 2, "database: nosuchdb://x/y: unknown database kind"),
    (BOMB, ["status"], 2, "not valid YAML: the document expands to more than"),
    ("a: &a [1, *a]\n", ["status"], 2, "an alias refers to the node that contains it"),
    ("database: {db}\nwatchers:\n - {{name: d, notify: ['json://127.0.0.1:9/x'], topics: [cartels]}}\n",
     ["status"], 2, "watchers[0].topics: unknown topic 'cartels'"),
    ("database: {db}\nwatchers:\n - {{name: d, notify: ['json://127.0.0.1:9/x'], topics: [cartels]}}\n",
     ["items"], 2, "watchers[0].topics: unknown topic 'cartels'"),
    ("database: {db}\nwatchers:\n - {{name: d, notify: ['json://127.0.0.1:9/x'], topics: [cartels]}}\n",
     ["alerts", "send"], 2, "watchers[0].topics: unknown topic 'cartels'"),
    ("database: {db}\nwatchers:\n - {{name: d, notify: ['json://127.0.0.1:9/x'], topics: [cartels]}}\n",
     ["alerts", "test", "d"], 2, "watchers[0].topics: unknown topic 'cartels'"),
    ("database: {db}\nwatchers:\n - {{name: d, notify: ['json://127.0.0.1:9/x'], topics: [cartels]}}\n",
     ["alerts", "list"], 2, "watchers[0].topics: unknown topic 'cartels'"),
    ("database: {db}\nwatchers:\n - {{name: d, notify: ['json://127.0.0.1:9/x'], topics: [cartels]}}\n",
     ["reclassify"], 2, "watchers[0].topics: unknown topic 'cartels'"),
    ("colour: blue\n", ["status"], 2, "colour: unknown key"),
]


@pytest.mark.parametrize(("content", "args", "code", "message"), ONE_LINE)
def test_bad_input_is_one_line_with_the_right_exit_code(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, sqlite_url: str, content: str, args: list[str],
        code: int, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(content.format(db=f"'{sqlite_url}'", tmp=tmp_path), encoding="utf-8")
    started = time.monotonic()
    got, _, err = cli(capsys, "--config", str(path), *args)
    assert time.monotonic() - started < 20
    assert got == code, err
    assert "Traceback" not in err
    if code:
        assert len(err.strip().splitlines()) == 1, err  # once: `status` used to print its error twice
        assert message in err
    assert not (tmp_path / "missing").exists()  # a mistyped folder is never created


def test_the_alias_bomb_is_refused_quickly_by_the_real_command(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB, encoding="utf-8")
    proc = bw(path, "status", timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "expands to more than" in proc.stderr


def test_an_export_cut_short_by_its_reader_ends_quietly(tmp_path: Path, sqlite_url: str) -> None:
    """``items --format json | head -1``: no BrokenPipeError traceback."""
    import subprocess
    import sys

    fill(sqlite_url, 150, title="Release {i} " + "with a long title " * 10)
    config = write_config(tmp_path / "c.yaml", {"database": sqlite_url, "sources": [FEED]})
    proc = subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(config), "items", "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["id"]
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 1
    assert err == ""


def test_only_the_default_data_folder_is_created(tmp_path: Path) -> None:
    """``./data/`` (the default database's folder) may be created; nothing else is."""
    config = write_config(tmp_path / "c.yaml", {"sources": [FEED]})
    proc = bw_here(config, "status", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data" / "borderwatch.db").is_file()
    config = write_config(tmp_path / "d.yaml", {"database": "sqlite:///dta/borderwatch.db", "sources": [FEED]})
    proc = bw_here(config, "status", cwd=tmp_path)
    assert proc.returncode == 2 and "database: the folder dta does not exist" in proc.stderr
    assert not (tmp_path / "dta").exists()


def test_an_unreachable_database_server_is_a_failure_naming_the_key(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", {
        "database": "postgresql+psycopg://postgres@127.0.0.1:9/nowhere?connect_timeout=2"})
    code, _, err = cli(capsys, "--config", str(path), "status")
    assert code == 1 and err.startswith(f"borderwatch: {path}: database: cannot open ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# -- a broken topics file stops a pass before anything is fetched -------------------------------------------


def test_a_broken_topics_file_stops_crawl_and_run_before_any_fetch(tmp_path: Path, sqlite_url: str) -> None:
    from localsite import Site, serve

    topics = tmp_path / "topics.yaml"
    topics.write_text("version: 1\ntopics: [\n", encoding="utf-8")
    site = Site()
    with serve(site):
        site.add("/feed", "<rss version='2.0'><channel><title>t</title></channel></rss>",
                 content_type="application/rss+xml")
        config = write_config(tmp_path / "c.yaml", {
            "database": sqlite_url, "topics": str(topics),
            "sources": [{"name": "local", "kind": "feed", "url": site.url("/feed")}]})
        for args in (["crawl"], ["crawl", "local", "--no-alerts"], ["run"]):
            proc = bw(config, *args, timeout=60)
            assert proc.returncode == 2, (args, proc.stderr)
            assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
            assert str(topics) in proc.stderr and "invalid YAML" in proc.stderr
        assert site.log == []  # nothing was fetched


def test_a_worker_without_its_topics_fails_pages_instead_of_storing_them_untagged(tmp_path: Path) -> None:
    from pipelines import worker

    broken = tmp_path / "topics.yaml"
    broken.write_text("version: 1\ntopics: [\n", encoding="utf-8")
    html = f"<html><body><article><h1>TdA</h1><p>{TDA}</p></article></body></html>"
    try:
        worker._init_worker(str(broken))
        with pytest.raises(worker.TopicsUnavailable, match="invalid YAML"):
            worker.process_page(html, "https://example.org/x", None, "TdA", [], [], "doj")
        worker._init_worker(None)
        result = worker.process_page(html, "https://example.org/x", None, "TdA", [], [], "doj")
        assert {t.topic for t in result.topics} >= {"tda"}
    finally:
        worker._init_worker(None)


def test_a_database_that_cannot_grow_during_a_crawl_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A full disk, simulated by a file-size limit on the crawl's process (no mount needed): the WAL
    can take a few pages, then every write fails. The crawl ends with one line of its own, no traceback."""
    import resource
    import subprocess
    import sys

    from localsite import Site, justice_page, rss, serve

    url = f"sqlite:///{tmp_path / 'bw.db'}"
    Database(url).dispose()
    limit = 37_000  # the 32 KiB WAL index and about one write transaction of WAL frames

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    site = Site()
    with serve(site):
        entries = []
        for i in range(30):
            site.add(f"/p/{i}", justice_page(f"Tren de Aragua case {i}", [f"Case {i}. " + TDA * 20]))
            entries.append({"title": f"Case {i}", "link": site.url(f"/p/{i}"),
                            "pubDate": "Mon, 23 Nov 2026 10:00:00 +0000"})
        site.add("/feed", rss(entries), content_type="application/rss+xml")
        config = write_config(tmp_path / "c.yaml", {
            "database": url, "crawl": {"download_delay": 0, "extract_workers": 1},
            "sources": [{"name": "local", "kind": "feed", "url": site.url("/feed"), "since": "30d"}]})
        proc = subprocess.run([sys.executable, "-m", "crawler", "--config", str(config), "crawl", "--no-alerts"],
                              capture_output=True, text=True, timeout=180, preexec_fn=small_files, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.splitlines()[-1] == "borderwatch: database: OperationalError: disk I/O error"
