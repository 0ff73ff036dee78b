"""``borderwatch serve`` in real headless Chromium (Debian's ``chromium``, driven by Playwright with
``executable_path``; no browser download) against a real ``serve`` child process on a free port.

Screenshots of the main pages go to tests/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import need_service
from helpers import bw
from web_support import REVISED, Fixture, populate, serving

from alerts.config import WatcherConfig

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
WATCHER = {"name": "desk", "notify": ["json://127.0.0.1:9/hook"], "topics": ["tda"], "max_age": "3650d"}
# The login's password, from the environment as the config requires (`${BW_TEST_ALICE}`).
ENV = {"BW_TEST_ALICE": "a long test password"}
SEARCHES = [{"name": "tda-extradition", "query": '"Tren de Aragua" extradited OR extradita',
             "label": "TdA extraditions"}, {"name": "fentanyl-es", "query": "fentanilo lang:es"}]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Fixture]:
    folder = tmp_path_factory.mktemp("webui")
    url = f"sqlite:///{folder / 'bw.db'}"
    fx = populate(url, watcher=WatcherConfig.model_validate(WATCHER))
    config = folder / "c.yaml"
    config.write_text(yaml.safe_dump({
        "database": url, "watchers": [WATCHER], "searches": SEARCHES,
        "sources": [{"name": "doj", "kind": "feed", "url": "https://www.justice.gov/news/rss"}],
        "serve": {"users": [{"name": "alice", "password": "${BW_TEST_ALICE}"}]},
    }, sort_keys=False), encoding="utf-8")
    return config, fx


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        need_service(f"Debian's chromium is not at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_search_facet_story_and_mark_read(site: tuple[Path, Fixture], browser: Any) -> None:
    config, fx = site
    with serving(config, env=ENV) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base)
        # From the keyboard: the skip link first, then the search box; Enter searches.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.locator("#q").focus()
        page.keyboard.type("Aragua")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"q=Aragua"))
        assert re.search(r"\d+ items", page.locator("#count").inner_text())
        assert page.locator("svg.timeline rect").count() > 0
        assert page.locator(".hit mark").count() > 0
        shot(page, "search")

        # Follow a facet: Spanish only.
        page.locator('a[data-facet="lang:es"]').click()
        page.wait_for_url(re.compile(r"lang%3Aes"))
        metas = page.locator(".hit .meta").all_inner_texts()
        assert metas and all(" · es" in m for m in metas)
        shot(page, "facet-es")

        # Open a story: every copy, the first marked.
        page.goto(f"{base}stories/{fx.stories['tda-chile']}")
        assert page.locator("table.copies tbody tr").count() == 8
        first = page.locator("tr.first")
        assert first.count() == 1 and "doj" in first.inner_text()
        assert page.locator("section.copydiff").count() >= 1
        shot(page, "story")

        # The item page: evidence highlighted, the revision's diff; mark it read (htmx swaps the form).
        page.goto(f"{base}items/{fx.ids[REVISED]}")
        assert page.locator(".body mark.evidence").count() > 0
        assert page.locator("pre.diff .ins").count() > 0
        page.get_by_role("button", name="Mark read").click()
        page.get_by_role("button", name="Mark unread").wait_for()
        assert "Read" in page.locator(".triage .state").inner_text()
        page.reload()
        assert page.get_by_role("button", name="Mark unread").count() == 1  # stored, not just shown
        shot(page, "item")

        page.goto(f"{base}?q=Aragua")
        hit = page.locator(f"#hit-{fx.ids[REVISED]}")
        if hit.count():
            assert "read" in (hit.get_attribute("class") or "").split()

        for name, path in (("sources", "sources"), ("alerts", "alerts"), ("saved-search", "searches/fentanyl-es")):
            page.goto(base + path)
            assert page.locator("main").count() == 1
            shot(page, name)
        assert "pending" in page.goto(base + "alerts").text()
        page.close()


def tab_to(page: Any, text: str = "", *, element_id: str = "", presses: int = 80) -> None:
    """Press Tab until the focused element has this text (or id): what a keyboard user does."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        focused = page.evaluate("[document.activeElement.id, (document.activeElement.innerText || '').trim()]")
        if (element_id and focused[0] == element_id) or (text and focused[1] == text):
            return
    raise AssertionError(f"{text or element_id!r} cannot be reached with Tab")


def test_keyboard_only_search_open_and_mark(site: tuple[Path, Fixture], browser: Any) -> None:
    config, _ = site
    with serving(config, env=ENV) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base)
        tab_to(page, element_id="q")  # after the skip link, the menu and the sidebar
        page.keyboard.type("Culiacan OR Culiacán")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"q=Culiacan"))
        first_title = page.locator(".hit h3 a").first.inner_text().strip()
        tab_to(page, first_title)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/items/\d+"))
        tab_to(page, "☆ Star")
        page.keyboard.press("Space")
        page.get_by_role("button", name="★ Starred").wait_for()
        page.goto(base + "starred")
        assert first_title in page.locator("main").inner_text()
        page.close()


def test_pages_work_without_javascript(site: tuple[Path, Fixture], browser: Any) -> None:
    config, fx = site
    with serving(config, env=ENV) as base:
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(base)
        page.fill("#q", "fentanyl")
        page.press("#q", "Enter")
        page.wait_for_url(re.compile(r"q=fentanyl"))
        page.locator(".hit h3 a").first.click()
        page.wait_for_url(re.compile(r"/items/\d+"))
        # A plain form post and a redirect back (another test may have starred this item already).
        before, after = ("☆ Star", "★ Starred") if page.get_by_role("button", name="☆ Star").count() else (
            "★ Starred", "☆ Star")
        page.get_by_role("button", name=before).click()
        page.get_by_role("button", name=after).wait_for()
        page.goto(base + "?q=fentanyl")
        page.locator(".hit .hitmark button").first.click()  # mark read from the results
        page.wait_for_url(re.compile(r"q=fentanyl"))
        assert page.locator(".hit.read").count() >= 1
        for path in ("sources", "alerts", "starred", f"stories/{fx.stories['anti-tren']}", "searches/fentanyl-es",
                     "?q=Aragua&view=stories"):
            response = page.goto(base + path)
            assert response is not None and response.status == 200, path
            assert page.locator("main h1, main form.search").count() >= 1, path
        context.close()


def test_login_when_bound_beyond_loopback(site: tuple[Path, Fixture], browser: Any) -> None:
    config, _ = site
    with serving(config, host="0.0.0.0", env=ENV) as base:
        local = base.replace("0.0.0.0", "127.0.0.1")
        page = browser.new_page(viewport={"width": 1280, "height": 700})
        page.goto(local + "sources")
        page.wait_for_url(re.compile(r"/login\?next="))
        shot(page, "login")
        page.fill("#username", "alice")
        page.fill("#password", "wrong password")
        page.get_by_role("button", name="Log in").click()
        assert "Wrong name or password" in page.locator("p.error").inner_text()
        page.fill("#username", "alice")
        page.fill("#password", ENV["BW_TEST_ALICE"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/sources$"))
        assert "alice" in page.locator("header .who").inner_text()
        feed_link = page.locator("aside.side a[title^='Atom feed of']").first.get_attribute("href") or ""
        assert "token=" in feed_link
        assert page.request.get(local + feed_link.lstrip("/")).status == 200
        page.close()


@pytest.mark.parametrize(("serve", "env", "message"), [
    ({}, {}, "--host 0.0.0.0 is not loopback: configure serve.users"),
    ({"users": [{"name": "alice", "password": "written in the file"}]}, {},
     "serve.users[0].password: must come from the environment as ${VAR}"),
    ({"users": [{"name": "alice", "password": "${BW_TEST_UNSET_PW}"}]}, {},
     "serve.users[0].password: environment variable BW_TEST_UNSET_PW is not set"),
])
def test_serve_refuses_to_start_beyond_loopback_without_users(tmp_path: Path, serve: dict[str, Any],
                                                              env: dict[str, str], message: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"database": f"sqlite:///{tmp_path / 'bw.db'}", "serve": serve}),
                      encoding="utf-8")
    proc = bw(config, "serve", "--host", "0.0.0.0", "--port", "9", timeout=60, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_serve_refuses_a_bad_saved_search(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"database": f"sqlite:///{tmp_path / 'bw.db'}",
                                      "searches": [{"name": "x", "query": "topic:nope fentanyl"}]}), encoding="utf-8")
    proc = bw(config, "serve", "--port", "9", timeout=60)
    assert proc.returncode == 2 and "searches[0].query:" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_serve_on_a_taken_port_fails_in_one_line(tmp_path: Path) -> None:
    import socket

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"database": f"sqlite:///{tmp_path / 'bw.db'}"}), encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = bw(config, "serve", "--port", str(port), timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"borderwatch: cannot listen on 127.0.0.1:{port}: Address already in use"]
