"""The block clock: when the next block is due, from the receipts' blocks and
the times they arrived; and which batches the flusher takes by it."""

from __future__ import annotations

import pytest

from streams.stages.settlement.batching import handle_scored, take_due_batches
from streams.stages.settlement.blocks import KEPT, BlockClock
from tests.unit.stages.conftest import World, approve


def test_the_next_block_is_due_one_interval_after_the_earliest_seen_receipt() -> None:
    clock = BlockClock(interval_s=1.0, lead_s=0.3)
    clock.mined(100, 50.08)  # polled 80 ms after the block
    clock.mined(101, 51.01)  # 10 ms after: the better guess of the phase
    clock.mined(101, 51.09)  # a later receipt of a block seen already
    assert clock.due_at(51.5) == pytest.approx(52.01)
    assert clock.due_at(52.02) == pytest.approx(53.01)
    assert clock.near(51.5) is False
    assert clock.near(51.72) is True  # within 300 ms of 52.01
    assert clock.near(52.05) is False


def test_a_block_mined_earlier_than_guessed_corrects_the_guess_at_once() -> None:
    clock = BlockClock(interval_s=1.0, lead_s=0.3)
    for block in range(10):
        clock.mined(block, 100.5 + block)  # the phase: .5
    clock.mined(10, 110.2)  # the chain's blocks now come at .2
    assert clock.due_at(110.25) == pytest.approx(111.2)


def test_without_a_fixed_interval_or_fresh_receipts_the_time_is_not_known() -> None:
    unfixed = BlockClock(interval_s=0.0, lead_s=0.3)
    unfixed.mined(5, 10.0)
    assert unfixed.near(10.9) is None and unfixed.seen == {}
    clock = BlockClock(interval_s=1.0, lead_s=0.3, stale_s=30.0)
    assert clock.near(10.0) is None  # no receipt yet
    clock.mined(5, 10.0)
    assert clock.near(10.8) is True
    assert clock.near(41.0) is None  # the last receipt is over 30 s old


def test_only_the_last_blocks_are_kept() -> None:
    clock = BlockClock(interval_s=1.0, lead_s=0.3)
    clock.mined(0, 0.0)  # the earliest phase, but the oldest block
    for block in range(1, KEPT + 1):
        clock.mined(block, block + 0.5)
    assert len(clock.seen) == KEPT and 0 not in clock.seen
    assert clock.due_at(KEPT + 0.6) == pytest.approx(KEPT + 1.5)


def test_batches_wait_for_the_next_block_then_go_together_unless_full(world: World) -> None:
    size = world.settings.batch_max_payments  # 3
    payloads = approve(world, size + 2)
    for offset, payload in enumerate(payloads[:size]):
        handle_scored(payload, 4, offset, world.settlement)  # fills partition 4's batch
    handle_scored(payloads[size], 4, size, world.settlement)  # closes it, opens the next
    handle_scored(payloads[size + 1], 6, 0, world.settlement)
    world.clock.advance(world.settings.batch_wait_ms)
    (full,) = take_due_batches(world.settlement, 0, block_near=False)  # a full one goes
    assert len(full.members) == size
    assert take_due_batches(world.settlement, 0, block_near=False) == []  # due, but waiting
    (merged,) = take_due_batches(world.settlement, 0, block_near=True)
    assert sorted(m.partition or 0 for m in merged.members) == [4, 6]


def test_near_the_block_a_batch_goes_before_batch_wait_ms(world: World) -> None:
    (payload,) = approve(world, 1)
    handle_scored(payload, 2, 0, world.settlement)
    assert take_due_batches(world.settlement, 0) == []  # not yet batch_wait_ms old
    (batch,) = take_due_batches(world.settlement, 0, block_near=True)
    assert len(batch.members) == 1


def test_a_batch_that_waited_a_whole_block_goes_without_waiting_for_the_next(
    world: World,
) -> None:
    (payload,) = approve(world, 1)
    handle_scored(payload, 2, 0, world.settlement)
    interval_ms = int(world.settings.block_time_s * 1000)
    world.clock.advance(interval_ms - 1)
    assert take_due_batches(world.settlement, 0, block_near=False) == []
    world.clock.advance(1)  # its flusher missed the moment before a block
    (batch,) = take_due_batches(world.settlement, 0, block_near=False)
    assert len(batch.members) == 1
