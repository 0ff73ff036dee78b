"""The extraction pool on a bad day: a worker killed mid-page (the OOM killer), a page that kills its
worker every time, a pathological page that runs past its deadline. Real worker processes, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from pipelines.worker import ExtractionFailed, TooComplex, WorkerPool

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


def cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


async def kill_busy_worker(pool: WorkerPool, times: int, victims: list[int]) -> None:
    """SIGKILL the worker running the slow page (the one burning CPU), ``times`` times (as the OOM killer
    would)."""
    for _ in range(times):
        deadline = time.monotonic() + 60
        while True:
            pids = [p for p in pool.pids() if p not in victims]
            if pids:
                break
            assert time.monotonic() < deadline, "no worker started"
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # past its start-up, into the page
        pids = [p for p in pool.pids() if p not in victims]
        before = {p: cpu_ticks(p) for p in pids}
        await asyncio.sleep(1.0)
        busy = max(pids, key=lambda p: cpu_ticks(p) - before[p])
        os.kill(busy, signal.SIGKILL)
        victims.append(busy)


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
    pool = WorkerPool(1, page_timeout=120)

    async def only_worker() -> int:
        deadline = time.monotonic() + 60
        while not pool.pids():
            assert time.monotonic() < deadline, "no worker started"
            await asyncio.sleep(0.05)
        return pool.pids()[0]

    async def main() -> tuple[BaseException | None, list[Any]]:
        slow = asyncio.ensure_future(
            pool.process(pathological_page(80_000), "http://127.0.0.1/killer", None, source="s"))
        first = await only_worker()
        await asyncio.sleep(1.0)
        os.kill(first, signal.SIGKILL)  # the slow page is the only one: it goes back to the queue
        deadline = time.monotonic() + 60
        while (second := await only_worker()) == first:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        # Innocent pages queue behind the slow page (one of them in the worker's pipe) ...
        others = [asyncio.ensure_future(pool.process(ARTICLE, f"http://127.0.0.1/a{i}", None, source="s"))
                  for i in range(6)]
        await asyncio.sleep(1.0)
        assert not slow.done()
        os.kill(second, signal.SIGKILL)  # ... when the slow page kills its worker again
        await asyncio.wait([slow, *others])
        return slow.exception(), [f.result() for f in others]

    try:
        error, results = run(main())
        assert isinstance(error, ExtractionFailed), error
        assert str(error) == "extraction failed: the worker died on this page 2 times (killed by SIGKILL)"
        assert all("extradited" in r.doc.text for r in results)
    finally:
        pool.shutdown()


def test_a_page_over_its_deadline_is_failed_as_too_complex_and_its_worker_replaced() -> None:
    pool = WorkerPool(1, page_timeout=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(TooComplex, match=r"too complex: extraction ran over 1s \(crawl.extract_timeout\)"):
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


def test_a_page_past_the_parsers_limits_is_too_complex_and_its_worker_lives_on() -> None:
    deep = "<html><body>" + "<div>" * 300 + ARTICLE + "</div>" * 300 + "</body></html>"
    pool = WorkerPool(1)
    try:
        with pytest.raises(TooComplex, match=r"^too complex: past the HTML parser's limits \(Excessive depth"):
            run(pool.process(deep, "http://127.0.0.1/deep", None, source="s"))
        (pid,) = pool.pids()
        result = run(pool.process(ARTICLE, "http://127.0.0.1/a", None, source="s"))
        assert "extradited" in result.doc.text and pool.pids() == [pid]
    finally:
        pool.shutdown()
