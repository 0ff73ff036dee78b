"""The extraction pool on a bad day: a worker killed mid-page (the OOM killer), a page that kills its
worker every time, a pathological page that runs past its deadline. Real worker processes, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from pipelines.worker import ExtractionFailed, WorkerPool

ARTICLE = ("<html><body><article><h1>Cartel Leader Extradited</h1>"
           + "".join(f"<p>Paragraph {i}: the defendant was extradited to face fentanyl trafficking charges.</p>"
                     for i in range(8)) + "</article></body></html>")


def pathological_page(paragraphs: int) -> str:
    """Flat paragraphs by the ten thousand: trafilatura's time grows faster than the page (40,000 ≈ 3 s)."""
    return "<html><body>" + "".join(f"<p>Paragraph {i} of a page that never ends.</p>"
                                    for i in range(paragraphs)) + "</body></html>"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def kill_busy_worker(pool: WorkerPool, times: int, victims: list[int]) -> None:
    """SIGKILL the worker running the slow page, ``times`` times (as the OOM killer would)."""
    for _ in range(times):
        deadline = time.monotonic() + 60
        while True:
            pids = [p for p in pool.pids() if p not in victims]
            if pids:
                break
            assert time.monotonic() < deadline, "no worker started"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # let it get into the page
        os.kill(pids[0], signal.SIGKILL)
        victims.append(pids[0])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_killed_worker_is_replaced_and_its_page_retried() -> None:
    pool = WorkerPool(1, page_timeout=120)
    victims: list[int] = []

    async def main() -> tuple[Any, ...]:
        slow = pool.process(pathological_page(20_000), "http://127.0.0.1/slow", None, source="s")
        return tuple(await asyncio.gather(slow, kill_busy_worker(pool, 1, victims)))

    try:
        result, _ = run(main())
        assert "Paragraph 19999" in result.doc.text  # the page was extracted, in a new worker
        after = run(pool.process(ARTICLE, "http://127.0.0.1/a", None, source="s"))
        assert "extradited" in after.doc.text
        assert victims[0] not in pool.pids()
    finally:
        pool.shutdown()


def test_a_page_that_kills_its_worker_twice_is_failed_with_the_reason_and_the_rest_go_on() -> None:
    pool = WorkerPool(2, page_timeout=120)
    victims: list[int] = []

    async def main() -> list[Any]:
        slow = pool.process(pathological_page(40_000), "http://127.0.0.1/killer", None, source="s")
        others = [pool.process(ARTICLE, f"http://127.0.0.1/a{i}", None, source="s") for i in range(6)]
        # one worker is busy with the slow page; the innocent pages go through the other
        return list(await asyncio.gather(slow, *others, kill_busy_worker(pool, 2, victims),
                                         return_exceptions=True))

    try:
        outcome = run(main())
        assert isinstance(outcome[0], ExtractionFailed), outcome[0]
        assert "the worker died on this page 2 times (killed by SIGKILL)" in str(outcome[0])
        assert all("extradited" in r.doc.text for r in outcome[1:7]), outcome[1:7]
    finally:
        pool.shutdown()


def test_a_page_over_its_deadline_is_failed_as_too_complex_and_its_worker_replaced() -> None:
    pool = WorkerPool(1, page_timeout=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(ExtractionFailed, match=r"too complex: extraction ran over 1s \(crawl.extract_timeout\)"):
            run(pool.process(pathological_page(60_000), "http://127.0.0.1/slow", None, source="s"))
        assert time.monotonic() - started < 60  # not the page's own minutes
        assert pool.pids() == []  # the stuck worker was killed
        result = run(pool.process(ARTICLE, "http://127.0.0.1/a", None, source="s"))
        assert "extradited" in result.doc.text
    finally:
        pool.shutdown()


def test_shutdown_leaves_no_worker_process() -> None:
    pool = WorkerPool(2)
    run(pool.process(ARTICLE, "http://127.0.0.1/a", None, source="s"))
    pids = pool.pids()
    assert pids
    pool.shutdown()
    assert not any(alive(p) for p in pids)
