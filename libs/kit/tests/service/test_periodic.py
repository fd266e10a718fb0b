"""The kit's periodic job: passes at the interval, at once while there is more to do, and a failing pass
never ends the loop."""

from __future__ import annotations

import asyncio
import itertools

from tablium_kit.periodic import Periodic


async def test_passes_repeat_at_the_interval_and_stop_cleanly() -> None:
    seen: list[float] = []

    async def run_pass() -> None:
        seen.append(asyncio.get_running_loop().time())

    job = Periodic("ticks", run_pass, interval_s=0.05)
    job.start()
    await asyncio.sleep(0.28)
    await job.stop()
    assert len(seen) >= 2  # a loaded machine may run fewer; never closer than the interval:
    assert all(later - earlier >= 0.045 for earlier, later in itertools.pairwise(seen))
    count = len(seen)
    await asyncio.sleep(0.1)
    assert len(seen) == count
    assert not job.running


async def test_a_failing_pass_is_retried_and_the_loop_goes_on() -> None:
    calls = 0
    errors_seen: list[str | None] = []

    async def flaky() -> None:
        nonlocal calls
        errors_seen.append(job.last_error)  # what a readiness check saw before this pass
        calls += 1
        if calls <= 2:
            raise ConnectionError("database away")

    job = Periodic("flaky", flaky, interval_s=0.01)
    job.start()
    for _ in range(200):
        if calls >= 4:
            break
        await asyncio.sleep(0.01)
    await job.stop()
    assert calls >= 4
    assert job.failures == 2
    assert errors_seen[:4] == [None, "ConnectionError: database away", "ConnectionError: database away", None]
    assert job.last_error is None


async def test_a_pass_with_more_to_do_runs_the_next_at_once() -> None:
    backlog = [500, 500, 120]  # a full batch means more may be due

    async def drain() -> bool:
        return bool(backlog) and backlog.pop(0) == 500

    job = Periodic("drain", drain, interval_s=60)
    job.start()
    for _ in range(100):
        if not backlog:
            break
        await asyncio.sleep(0.001)
    await job.stop()
    assert backlog == []
    assert job.passes == 3
