"""The watchdog's check over a stand-in for the Faust app (the parts it reads):
it waits for a settled assignment, asks Kafka for committed offsets only of
partitions no record of which reached an agent since, and reports what stalled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types import TP

from streams.progress import Progress
from streams.watchdog import IDLE_S, Watchdog

T = "payments.requested"


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Consumer:
    ends: dict[TP, int]

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in tps}


@dataclass
class Committed:
    """The group's committed offsets on Kafka, and which partitions were asked."""

    offsets: dict[tuple[str, int], int]
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        self.asked += partitions
        return {p: self.offsets[p] for p in partitions}


@dataclass
class Assignor:
    actives: set[TP]

    def assigned_actives(self) -> set[TP]:
        return self.actives


@dataclass
class App:
    consumer: Consumer
    assignor: Assignor
    consumer_generation_id: int = 1
    rebalancing: bool = False
    in_recovery: bool = False
    should_stop: bool = False


def setup() -> tuple[App, Clock, Committed, Progress, Watchdog]:
    clock = Clock()
    progress = Progress(clock=clock, stall_s=20.0)
    ends = {TP(T, 0): 10, TP(T, 1): 5, TP("elsewhere", 0): 99}
    app = App(Consumer(ends), Assignor(set(ends)))
    committed = Committed({(T, 0): 10, (T, 1): 2})
    app_: Any = app
    return app, clock, committed, progress, Watchdog(app_, [T], progress, committed)


async def test_a_partition_never_fetched_is_reported_once_the_assignment_settled() -> None:
    _, clock, committed, progress, watchdog = setup()
    assert await watchdog.check() == []  # first sight of the generation: the window starts
    with progress.handling(T, 0, 9):
        pass
    clock.now += 19
    assert await watchdog.check() == []
    clock.now += 1 + IDLE_S
    assert await watchdog.check() == [(T, 1)]
    assert committed.asked == [(T, 1)]  # partition 0's next offset came from the agent


async def test_a_rebalance_restarts_the_window() -> None:
    app, clock, _, _, watchdog = setup()
    await watchdog.check()
    clock.now += 15
    app.rebalancing = True
    assert await watchdog.check() == []
    app.rebalancing, app.consumer_generation_id = False, 2
    clock.now += 10
    assert await watchdog.check() == []  # a new generation: the window starts again
    clock.now += 19
    assert await watchdog.check() == []
    clock.now += 1
    assert await watchdog.check() == [(T, 1)]


async def test_nothing_is_checked_while_the_worker_stops_or_recovers() -> None:
    app, clock, committed, _, watchdog = setup()
    await watchdog.check()
    clock.now += 60
    app.in_recovery = True
    assert await watchdog.check() == []
    app.in_recovery, app.should_stop = False, True
    clock.now += 60
    assert await watchdog.check() == []
    assert committed.asked == []


async def test_a_partition_behind_a_busy_agent_is_logged_once_not_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, clock, committed, progress, watchdog = setup()
    await watchdog.check()
    clock.now += 30
    with progress.handling(T, 0, 9):  # a record in hand (a send that blocks)
        clock.now += 5
        assert await watchdog.check() == []
        assert await watchdog.check() == []
    warned = [r.getMessage() for r in caplog.records if "the agent is busy" in r.getMessage()]
    assert len(warned) == 1 and "1 record(s) in hand for 5 s" in warned[0], warned
    assert set(committed.asked) == {(T, 1)}  # never partition 0: its agent saw it
