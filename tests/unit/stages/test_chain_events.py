"""The reconciler reads one ``chain.events`` record per partition and poll:
its events decided in order, each balance written once."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from schemas.chain import CHAIN_EVENT, ChainEvents, KeyedChainEvent
from schemas.payments import PaymentSettled
from schemas.topics import PAYMENTS_SETTLED
from streams.stages.reconcile import handle_chain_events
from streams.stages.settlement.submit import settle
from streams.stages.submitted import handle_submitted
from streams.state import Status
from tests.unit.stages.conftest import (
    CountedWrites,
    World,
    confirmation,
    due_batch,
    sent_of,
    summary,
)


async def _confirmations(world: World, count: int) -> list[bytes]:
    """``count`` payments of alice submitted in one batch, and the chain's
    confirmation of each."""
    batch = due_batch(world, count)
    emits = await settle(batch, world.ports, world.settings, world.clock)
    for emit in emits:
        handle_submitted(emit.payload(), world.submitted)
    return [confirmation(world, s, 10, "0xbb") for s in sent_of(emits)]


def _record(events: list[bytes]) -> bytes:
    keyed = tuple(KeyedChainEvent(key="ref:1", event=CHAIN_EVENT.validate_json(e)) for e in events)
    return ChainEvents(events=keyed).model_dump_json().encode()


async def test_each_event_of_a_record_is_decided_and_the_payer_written_once(world: World) -> None:
    raw = _record(await _confirmations(world, 3))
    balances = CountedWrites(world.balances)
    deps = replace(world.reconcile, balances=balances)
    outcome = handle_chain_events(raw, "blocks:10-10", deps)
    assert [e.topic for e in outcome.emits] == [PAYMENTS_SETTLED] * 3
    settled = {PaymentSettled.model_validate_json(e.payload()).payment_id for e in outcome.emits}
    assert settled == {s.payment_id for s in world.payments.values()}
    assert balances.writes == ["alice"]
    assert balances["alice"].summary() == summary(10**9 - 3_000, 0, 3_000)
    again = handle_chain_events(raw, "blocks:10-10", deps)  # redelivered
    assert again.note == "duplicate x3" and balances["alice"].settled == 3_000


async def test_a_record_of_one_event_of_the_earlier_shape_is_decided_under_its_key(
    world: World,
) -> None:
    (event,) = await _confirmations(world, 1)
    outcome = handle_chain_events(event, "ref:1", world.reconcile)
    assert [e.topic for e in outcome.emits] == [PAYMENTS_SETTLED]
    assert {s.status for s in world.payments.values()} == {Status.SETTLED}


def test_a_record_with_no_events_is_a_dead_letter(world: World) -> None:
    outcome = handle_chain_events(b'{"events": []}', "blocks:1-1", world.reconcile)
    assert outcome.dead_letter is not None and outcome.emits == ()


class Failing:
    """A clock that fails from its ``after``-th reading: a bug in mid-record."""

    def __init__(self, now: datetime, after: int) -> None:
        self.now, self.left = now, after

    def __call__(self) -> datetime:
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("a bug")
        return self.now


async def test_what_was_decided_before_an_error_in_mid_record_is_written_whole(
    world: World,
) -> None:
    raw = _record(await _confirmations(world, 2))
    deps = replace(world.reconcile, clock=Failing(world.clock(), after=1))
    with pytest.raises(RuntimeError):
        handle_chain_events(raw, "blocks:10-10", deps)
    statuses = sorted(s.status for s in world.payments.values())
    assert statuses == [Status.SETTLED, Status.SUBMITTED]
    assert world.balances["alice"].summary() == summary(10**9 - 2_000, 1_000, 1_000)
