"""Running the real ``borderwatch`` command: in a child process where a pass may run (a Twisted reactor runs
once per process), else in this one through click's runner."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def bw(config: Path | None, *args: str, timeout: float = 180, env: dict[str, str] | None = None,
       cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "crawler"]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += list(args)
    full_env = {**os.environ, **(env or {})}
    full_env.pop("BORDERWATCH_CONFIG", None) if config is not None else None
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=cwd, check=False)


def items_json(config: Path, *args: str) -> list[dict[str, Any]]:
    proc = bw_here(config, "items", "--format", "json", "--limit", "1000", *args)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@dataclass(frozen=True)
class Ran:
    """What ``bw_here`` saw: the same three fields as the child process ``bw`` returns."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _no_pass() -> Iterator[None]:
    """A command run in this process must not start a pass or the daemon: Scrapy's reactor cannot be
    restarted, and the daemon runs until stopped. Should one try (a check that no longer refuses), it fails
    at once instead."""
    import scrapy.crawler

    import crawler.daemon.scheduler as scheduler

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("this command started a pass or the daemon; run it with bw() in a child process")

    patched: list[tuple[Any, str, Any]] = [(scrapy.crawler.CrawlerProcess, "__init__", refuse)]
    daemon = getattr(scheduler, "Daemon", None)
    if daemon is not None:
        patched.append((daemon, "run", refuse))
    saved = [(owner, name, owner.__dict__.get(name)) for owner, name, _ in patched]
    for owner, name, value in patched:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            if value is None:
                delattr(owner, name)  # it was inherited
            else:
                setattr(owner, name, value)


def bw_here(config: Path | None, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Ran:
    """``bw`` for the commands that run no pass, in this process through click's runner: the same console
    entry (``crawler.cli.main.main``), its one-line errors and exit codes, a fraction of a second faster."""
    from crawler.cli.main import main

    argv = ["--config", str(config)] if config is not None else []
    unset: dict[str, str | None] = {"BORDERWATCH_CONFIG": None} if config is not None else {}
    with contextlib.chdir(cwd or Path.cwd()), _no_pass():
        result = CliRunner().invoke(main, [*argv, *args], env={**unset, **(env or {})}, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)
