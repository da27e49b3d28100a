"""Workers that finish, fail or die at random (seeded): no job is ever held by two connections
at once, every job is done exactly once, and none is lost.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter

import pytest

from shoal.core.model import JobState
from shoal.core.service import QueuePolicy, ServiceSettings
from shoal.protocols.tcp.server import TcpSettings
from tests.integration._tcp import Harness, running

JOBS = 300


class World:
    """What the workers saw, shared: who holds what, and how often each job was done."""

    def __init__(self) -> None:
        self.holding: dict[str, int] = {}
        self.done: Counter[str] = Counter()
        self.drops = 0
        self.errors = 0


async def _worker(harness: Harness, slot: int, rng: random.Random, world: World) -> None:
    while len(world.done) < JOBS:
        client = await harness.login(group="group1")
        assert await client.call("SUBSCRIBE work") == "OK"
        while len(world.done) < JOBS:
            try:
                line = await client.line(timeout=0.2)
            except TimeoutError:
                continue
            job_id = json.loads(line)["Job"]["ID"]
            assert job_id not in world.holding, "a job held by two connections at once"
            world.holding[job_id] = slot
            roll = rng.random()
            if roll < 0.1:  # the worker dies with its job: another one must get it
                del world.holding[job_id]
                world.drops += 1
                await client.close()
                break
            outcome = "errored" if roll < 0.3 else "done"
            del world.holding[job_id]
            assert await client.call(f"UPDATE_JOB {job_id} {outcome}") == "OK"
            if outcome == "done":
                world.done[job_id] += 1
            else:
                world.errors += 1
        else:
            await client.close()


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_outcomes_and_deaths_never_lose_or_double_a_job(seed: int) -> None:
    settings = ServiceSettings(default_policy=QueuePolicy(max_attempts=1000))
    tcp = TcpSettings(delay_policy="IGNORE", job_timeout=3600)
    async with running(tcp, service_settings=settings) as harness:
        publisher = await harness.login(group="group1")
        await publisher.send("".join(f"PUBLISH work t {n}\n" for n in range(JOBS)))
        ids = {(await publisher.line())[3:] for _ in range(JOBS)}
        world = World()
        rng = random.Random(seed)
        workers = [_worker(harness, slot, random.Random(rng.random()), world) for slot in range(3)]
        await asyncio.wait_for(asyncio.gather(*workers), 60)
        assert set(world.done) == ids and set(world.done.values()) == {1}
        assert world.drops > 0 and world.errors > 0
        stats = await harness.service.stats("group1", "work")
        assert stats.by_state[JobState.SUCCEEDED] == JOBS == stats.total
