"""The watchdog's check over a stand-in for the Faust app (the parts it reads)
and Kafka's offsets: it waits for a settled assignment, judges a partition by
what reached its agent since (else by the group's committed offset), and reports
what stalled."""

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
class Offsets:
    """The group's committed and end offsets on Kafka, and what was asked."""

    committed: dict[tuple[str, int], int]
    ends: dict[tuple[str, int], int]
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(
        self, partitions: list[tuple[str, int]]
    ) -> dict[tuple[str, int], tuple[int, int]]:
        self.asked += partitions
        return {p: (self.committed[p], self.ends[p]) for p in partitions}


@dataclass
class Assignor:
    actives: set[TP]

    def assigned_actives(self) -> set[TP]:
        return self.actives


@dataclass
class Recovery:
    left: int = 0  # changelog records the active partitions still have to read

    def active_remaining_total(self) -> int:
        return self.left


@dataclass
class Tables:
    recovery: Recovery = field(default_factory=Recovery)


@dataclass
class App:
    assignor: Assignor
    consumer_generation_id: int = 1
    rebalancing: bool = False
    in_recovery: bool = False
    should_stop: bool = False
    tables: Tables = field(default_factory=Tables)


def setup() -> tuple[App, Clock, Offsets, Progress, Watchdog]:
    clock = Clock()
    progress = Progress(clock=clock, stall_s=20.0)
    app = App(Assignor({TP(T, 0), TP(T, 1), TP("elsewhere", 0)}))
    offsets = Offsets({(T, 0): 10, (T, 1): 2}, {(T, 0): 10, (T, 1): 5})
    app_: Any = app
    return app, clock, offsets, progress, Watchdog(app_, [T], progress, offsets)


async def test_a_partition_never_fetched_is_reported_once_the_assignment_settled() -> None:
    _, clock, offsets, progress, watchdog = setup()
    assert await watchdog.check() == []  # first sight of the generation: the window starts
    with progress.handling(T, 0, 9):
        pass
    clock.now += 19
    assert await watchdog.check() == []
    clock.now += 1 + IDLE_S
    assert await watchdog.check() == [(T, 1)]
    assert set(offsets.asked) == {(T, 0), (T, 1)}  # "elsewhere" is not watched
    offsets.committed[(T, 0)] = 3  # a record skipped: the commit is held back
    assert sorted(await watchdog.check()) == [(T, 0), (T, 1)]


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
    app, clock, offsets, _, watchdog = setup()
    await watchdog.check()
    clock.now += 60
    app.in_recovery = True
    assert await watchdog.check() == []
    app.in_recovery, app.should_stop = False, True
    clock.now += 60
    assert await watchdog.check() == []
    assert offsets.asked == []


async def test_a_partition_behind_a_busy_agent_is_logged_once_not_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, clock, _, progress, watchdog = setup()
    await watchdog.check()
    clock.now += 30
    with progress.handling(T, 0, 9):  # a record in hand (a send that blocks)
        clock.now += 5
        assert await watchdog.check() == []
        assert await watchdog.check() == []
    warned = [r.getMessage() for r in caplog.records if "the agent is busy" in r.getMessage()]
    assert len(warned) == 1 and "1 record(s) in hand for 5 s" in warned[0], warned


@dataclass
class Repairs:
    """The watchdog's repair: what it was asked to read again, and whether it fails."""

    asked: list[dict[tuple[str, int], int]] = field(default_factory=list)
    fails: bool = False

    async def __call__(self, partitions: Any) -> None:
        self.asked.append(dict(partitions))
        if self.fails:
            raise RuntimeError("the consumer is gone")


def with_repair() -> tuple[Clock, Offsets, Progress, Watchdog, Repairs]:
    app, clock, offsets, progress, _ = setup()
    repairs = Repairs()
    app_: Any = app
    return clock, offsets, progress, Watchdog(app_, [T], progress, offsets, repairs), repairs


async def test_a_stalled_partition_is_read_again_from_its_committed_offset_first() -> None:
    clock, _, _, watchdog, repairs = with_repair()
    await watchdog.check()
    clock.now += 20 + IDLE_S
    assert await watchdog.check() == []  # repaired, not stopped
    assert repairs.asked == [{(T, 1): 2}]
    clock.now += 19
    assert await watchdog.check() == []  # the repair has stall_s to work
    assert len(repairs.asked) == 1
    clock.now += 1
    assert await watchdog.check() == [(T, 1)]  # nothing came: the worker stops


async def test_a_repaired_partition_that_stalls_again_later_is_repaired_again() -> None:
    clock, _, progress, watchdog, repairs = with_repair()
    await watchdog.check()
    clock.now += 20 + IDLE_S
    await watchdog.check()
    clock.now += 5
    with progress.handling(T, 1, 2):  # the repair worked: its record came
        pass
    clock.now += 20 + IDLE_S
    assert await watchdog.check() == []
    assert repairs.asked == [{(T, 1): 2}, {(T, 1): 2}]


async def test_a_repair_that_fails_stops_the_worker() -> None:
    clock, _, _, watchdog, repairs = with_repair()
    repairs.fails = True
    await watchdog.check()
    clock.now += 20 + IDLE_S
    assert await watchdog.check() == [(T, 1)]


def test_a_recovery_that_reads_nothing_for_stall_s_stops_the_worker() -> None:
    app, clock, _, progress, watchdog = setup()
    assert watchdog.stuck_recovery() is None  # no recovery under way
    app.in_recovery, app.tables.recovery.left = True, 500
    assert watchdog.stuck_recovery() is None  # first sight: the window starts
    clock.now += progress.stall_s - 1
    assert watchdog.stuck_recovery() is None
    clock.now += 1
    reason = watchdog.stuck_recovery()
    assert reason is not None and "500 changelog records left" in reason


def test_a_long_recovery_that_keeps_reading_is_left_alone() -> None:
    app, clock, _, progress, watchdog = setup()
    app.in_recovery, app.tables.recovery.left = True, 1_000_000
    for _ in range(10):
        assert watchdog.stuck_recovery() is None
        clock.now += progress.stall_s - 1
        app.tables.recovery.left -= 10_000
    app.in_recovery = False  # it ended; a later one starts its own window
    assert watchdog.stuck_recovery() is None
    app.in_recovery = True
    assert watchdog.stuck_recovery() is None
    clock.now += progress.stall_s
    assert watchdog.stuck_recovery() is not None
