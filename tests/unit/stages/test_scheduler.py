"""The settlement scheduler without Faust: the flusher, the sweeper and one
batch's submission, over the in-memory chain."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from schemas.onchain import BatchReceipt, PaymentRecord
from schemas.payments import PaymentSubmitted
from schemas.topics import CHAIN_SUBMITTED
from services.ports import WorkerPorts
from streams.connection import Connection
from streams.outcomes import Emit
from streams.scheduler import Scheduler
from streams.stages.fraud import handle_request
from streams.stages.settlement.batching import handle_scored
from streams.state import Balance, PaymentState
from streams.tables import ModelTable
from tests.support.fakes import FakeChain, MemoryCursorStore
from tests.unit.stages.conftest import World, raw, request


@dataclass
class WatchedChain(FakeChain):
    """Records each settlement, and how many transactions the scheduler counted
    as on their way at that moment."""

    calls: list[str] = field(default_factory=list)
    scheduler: Scheduler | None = None

    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        sending = self.scheduler.sending if self.scheduler else None
        self.calls.append(f"settle {batch_id} sending={sending}")
        return await super().settle_batch(batch_id, payments)


class BrokenChain(WatchedChain):
    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        raise RuntimeError("a bug in the client")


class Harness:
    """A scheduler over the world's batching state, the chain and a recording producer."""

    def __init__(self, world: World, chain: WatchedChain) -> None:
        self.world = world
        self.chain = chain
        self.sent: list[Emit] = []
        self.connection = Connection(self._connect)
        self.scheduler = Scheduler(
            world.settlement, self.table(), self.connection, self._send, self._flush
        )
        chain.scheduler = self.scheduler

    def table(self) -> ModelTable[PaymentState]:
        """The payments table as Faust holds it (JSON values), for the sweeper's scan."""
        stored = {k: v.model_dump(mode="json") for k, v in self.world.payments.items()}
        return ModelTable(stored, PaymentState)

    async def _connect(self) -> WorkerPorts:
        return WorkerPorts(chain=self.chain, cursors=MemoryCursorStore())

    async def _flush(self) -> None:
        self.chain.calls.append("flush")

    async def _send(self, emit: Emit) -> None:
        self.chain.calls.append(f"send {emit.topic}")
        self.sent.append(emit)

    async def settled(self) -> None:
        """Wait for every spawned submission."""
        await asyncio.gather(*self.scheduler.tasks)


def _batch(world: World, count: int, partition: int) -> None:
    world.balances.setdefault("alice", Balance(available=10**9))
    for offset in range(count):
        (scored,) = handle_request(raw(request("alice")), "alice", world.fraud).emits
        handle_scored(scored.payload(), partition, offset, world.settlement)


async def test_a_due_batch_waits_for_the_ports_then_is_made_durable_before_it_is_settled(
    world: World,
) -> None:
    harness = Harness(world, WatchedChain())
    _batch(world, 2, partition=1)
    world.clock.advance(world.settings.batch_wait_ms)
    harness.scheduler.flush()
    await asyncio.sleep(0)
    assert harness.chain.calls == [] and harness.scheduler.sending == 1  # not connected yet
    await harness.connection.open()
    await harness.settled()
    batch_id = 1 << 40
    assert harness.chain.calls == [
        "flush",
        f"settle {batch_id} sending=1",
        f"send {CHAIN_SUBMITTED}",
        f"send {CHAIN_SUBMITTED}",
    ]
    outcomes = {PaymentSubmitted.model_validate_json(e.payload()).outcome for e in harness.sent}
    assert outcomes == {"SUBMITTED"}
    assert harness.scheduler.sending == 0 and harness.scheduler.tasks == set()
    assert batch_id in harness.scheduler.handled  # the sweeper leaves it alone


async def test_a_failed_submission_is_left_to_the_sweeper(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(world, BrokenChain())
    _batch(world, 1, partition=2)
    world.clock.advance(world.settings.batch_wait_ms)
    await harness.connection.open()
    harness.scheduler.flush()
    with caplog.at_level(logging.ERROR, logger="paystream.streams"):
        await harness.settled()
    assert harness.chain.calls == ["flush"] and harness.sent == []
    assert 2 << 40 not in harness.scheduler.handled
    assert harness.scheduler.sending == 0
    assert f"batch {2 << 40}: submission failed; the sweeper will retry" in caplog.text


async def test_due_batches_wait_while_the_chain_is_busy(world: World) -> None:
    harness = Harness(world, WatchedChain())
    await harness.connection.open()
    _batch(world, 1, partition=3)
    world.clock.advance(world.settings.batch_wait_ms)
    harness.scheduler.sending = world.settings.settle_inflight_max
    harness.scheduler.flush()
    assert harness.scheduler.tasks == set()
    harness.scheduler.sending = 0
    harness.scheduler.flush()
    await harness.settled()
    assert harness.chain.calls[1] == f"settle {3 << 40} sending=1"


async def test_the_sweeper_resends_only_old_batches_nobody_here_is_sending(world: World) -> None:
    harness = Harness(world, WatchedChain())
    await harness.connection.open()
    _batch(world, 4, partition=0)  # a full batch of 3 (taken below) and an open one of 1
    (taken,) = world.settlement.batches.closed
    harness.scheduler.handled.take(taken.batch_id, time.monotonic())
    harness.scheduler.payments = harness.table()
    harness.scheduler.sweep()
    assert harness.scheduler.tasks == set()  # too recent: may still be on its way
    world.clock.advance(int(world.settings.batch_timeout_s * 1000) + 1)
    harness.scheduler.sweep()
    await harness.settled()
    assert [c for c in harness.chain.calls if c.startswith("settle")] == ["settle 3 sending=1"]
    assert len(harness.sent) == 1
