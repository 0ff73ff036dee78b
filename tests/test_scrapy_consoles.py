"""A pass opens no remote console: no listening socket of its own (Scrapy's telnet console, its remote-control
HTTP server) and no token file in the user's state folder, even when the pass is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import write_config
from localsite import Site, justice_page, rss, serve

from crawler.passes.run import scrapy_settings

LISTEN = "0A"  # the TCP state LISTEN in /proc/net/tcp


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                continue
    return out


def _listening_inodes() -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == LISTEN:
                inodes.add(fields[9])
    return inodes


def _listening_sockets_of(pid: int) -> set[str]:
    """The listening TCP sockets (inodes) that ``pid`` or one of its children holds."""
    held: set[str] = set()
    for p in _descendants(pid):
        try:
            fds = list(Path(f"/proc/{p}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                held.add(target[len("socket:["):-1])
    return held & _listening_inodes()


def test_settings_turn_every_remote_console_off() -> None:
    from crawler.config import Config

    settings = scrapy_settings(Config.model_validate({"sources": []}))
    assert settings.getbool("TELNETCONSOLE_ENABLED") is False
    assert settings.getbool("REMOTE_CONTROL_ENABLED") is False


def test_a_pass_listens_on_nothing_and_leaves_no_token_file(tmp_path: Path, sqlite_url: str) -> None:
    site = Site()
    with serve(site):
        site.add("/pr/slow", justice_page("A slow release", ["Text of a release that takes its time."]), hang=4)
        site.add("/feed", rss([{"title": "slow", "link": site.url("/pr/slow"),
                                "pubDate": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())}]),
                 content_type="application/rss+xml")
        config = write_config(tmp_path / "c.yaml", {
            "database": sqlite_url,
            "crawl": {"download_delay": 0},
            "sources": [{"name": "slow", "kind": "feed", "url": site.url("/feed")}],
        })
        state = tmp_path / "state"
        env = {**os.environ, "XDG_STATE_HOME": str(state), "HOME": str(tmp_path / "home")}
        env.pop("BORDERWATCH_CONFIG", None)
        proc = subprocess.Popen([sys.executable, "-m", "crawler", "--config", str(config), "crawl", "--no-alerts"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            end = time.monotonic() + 60
            while site.served("/feed") == 0 and time.monotonic() < end and proc.poll() is None:
                time.sleep(0.05)
            assert site.served("/feed") == 1, "the pass never read its feed"
            # The engine runs (the feed was read, the article page hangs): any console would be up by now.
            seen: set[str] = set()
            until = time.monotonic() + 2.0
            while time.monotonic() < until and proc.poll() is None:
                seen |= _listening_sockets_of(proc.pid)
                time.sleep(0.1)
            assert proc.poll() is None, "the pass ended before it could be observed"
            assert seen == set()
            # Killed mid-pass, as a daemon's hard timeout would: nothing left behind.
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
    leftovers = [p for p in state.rglob("*") if p.is_file()] if state.exists() else []
    assert leftovers == []
