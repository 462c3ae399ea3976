"""The stalled-partition rule (streams/progress.py), on a clock the test moves:
records after the group's committed offset, none of which reached an idle agent
for ``stall_s``."""

from __future__ import annotations

from streams.progress import Progress

T = "payments.requested"
IDLE_S = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def progress() -> tuple[Progress, Clock]:
    clock = Clock()
    return Progress(clock=clock, stall_s=60.0), clock


def see(p: Progress, partition: int, offset: int) -> None:
    with p.handling(T, partition, offset):
        pass


def test_a_partition_waiting_while_its_agent_idles_is_stalled() -> None:
    p, clock = progress()
    see(p, 0, 9)
    see(p, 1, 4)
    clock.now += 61
    ends = {(T, 0): 10, (T, 1): 8}
    committed = {(T, 0): 10, (T, 1): 5}  # partition 1 has offsets 5..7 waiting
    assert p.stalled(ends, committed, since=0.0, idle_s=IDLE_S) == [(T, 1)]


def test_nothing_after_the_committed_offset_is_not_stalled() -> None:
    p, clock = progress()
    see(p, 0, 9)
    clock.now += 600
    assert p.stalled({(T, 0): 10}, {(T, 0): 10}, since=0.0, idle_s=IDLE_S) == []


def test_a_commit_held_back_by_a_skipped_record_is_a_stall() -> None:
    """Later records reached the agent, but the commit waits for one it never got."""
    p, clock = progress()
    see(p, 0, 9)
    clock.now += 61
    assert p.stalled({(T, 0): 10}, {(T, 0): 6}, since=0.0, idle_s=IDLE_S) == [(T, 0)]


def test_a_busy_agent_is_not_stalled() -> None:
    """Records still arriving (back-pressure) or one in hand rule a stall out."""
    p, clock = progress()
    see(p, 1, 4)
    clock.now += 61
    see(p, 0, 9)  # another partition's record just reached the agent
    lag = ({(T, 1): 8}, {(T, 1): 5})
    assert p.stalled(*lag, since=0.0, idle_s=IDLE_S) == []
    clock.now += IDLE_S
    with p.handling(T, 0, 10):
        assert p.stalled(*lag, since=0.0, idle_s=IDLE_S) == []
        assert p.lagging(*lag, since=0.0) == {(T, 1): 3}
    clock.now += IDLE_S
    assert p.stalled(*lag, since=0.0, idle_s=IDLE_S) == [(T, 1)]


def test_the_window_starts_at_the_last_rebalance() -> None:
    p, clock = progress()
    see(p, 1, 4)
    clock.now += 100
    since = clock.now  # a rebalance just ended
    clock.now += 59
    assert p.stalled({(T, 1): 8}, {(T, 1): 5}, since=since, idle_s=IDLE_S) == []
    clock.now += 1
    assert p.stalled({(T, 1): 8}, {(T, 1): 5}, since=since, idle_s=IDLE_S) == [(T, 1)]


def test_an_unknown_committed_offset_is_no_stall() -> None:
    p, clock = progress()
    clock.now += 61
    assert p.stalled({(T, 2): 3}, {}, since=0.0, idle_s=IDLE_S) == []
    assert p.stalled({(T, 2): 3}, {(T, 2): 0}, since=0.0, idle_s=IDLE_S) == [(T, 2)]
