"""Submission above the approval threshold: the approval signer decides. Not
answering or its daily cap used up, the batch waits; a payee it does not allow
fails alone; over its per-batch cap the batch is split, and a lone payment over
it fails (SIGNER_REFUSED)."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

import pytest

from schemas.codes import FailureCode
from services.signer.policy import SignerPolicy
from streams.outcomes import Emit
from streams.stages.settlement.submit import SettlementDeferred, settle
from streams.stages.submitted import handle_submitted
from tests.support.fakes import FakeChain
from tests.unit.stages.conftest import Sent, World, due_batch, sent_of, summary


def _policy(batch: int = 10**6, daily: int = 10**9, payees: set[str] | None = None) -> SignerPolicy:
    return SignerPolicy(max_batch_amount=batch, max_daily_amount=daily, allowed_payees=payees)


def _chain(policy: SignerPolicy | None) -> FakeChain:
    return FakeChain(approval_threshold=0, signer=policy)  # every batch needs approval


def _outcomes(emits: list[Emit]) -> dict[UUID, Sent]:
    return {s.payment_id: s for s in sent_of(emits)}


async def test_without_the_signer_the_batch_waits_held(world: World) -> None:
    batch = due_batch(world, 2)
    chain = _chain(None)
    ports = replace(world.ports, chain=chain)
    settings = world.settings.model_copy(update={"settle_retries_max": 1})
    with pytest.raises(SettlementDeferred, match="sweeper sends it again"):
        await settle(batch, ports, settings, world.clock)
    assert chain.settled == set()
    assert world.balances["alice"].summary() == summary(10**9 - 2_000, 2_000)
    chain.signer = _policy()  # the signer is back
    emits = await settle(batch, ports, world.settings, world.clock)
    assert {r.outcome for r in _outcomes(emits).values()} == {"SUBMITTED"}
    assert len(chain.settled) == 2


async def test_the_signers_daily_cap_makes_the_batch_wait(world: World) -> None:
    batch = due_batch(world, 2)
    chain = _chain(_policy(daily=1_500))
    with pytest.raises(SettlementDeferred, match="DAILY_CAP_REACHED"):
        await settle(batch, replace(world.ports, chain=chain), world.settings, world.clock)
    assert chain.settled == set()


async def test_a_batch_over_the_signers_cap_is_split(world: World) -> None:
    batch = due_batch(world, 3)  # 1,000 each
    chain = _chain(_policy(batch=2_000))
    emits = await settle(batch, replace(world.ports, chain=chain), world.settings, world.clock)
    outcomes = _outcomes(emits)
    assert {r.outcome for r in outcomes.values()} == {"SUBMITTED"}
    assert len(chain.settled) == 3
    assert len({r.tx_hash for r in outcomes.values()}) == 2  # halves of 1 and 2


async def test_a_lone_payment_over_the_signers_cap_fails_and_its_hold_ends(world: World) -> None:
    batch = due_batch(world, 2)
    chain = _chain(_policy(batch=500))
    emits = await settle(batch, replace(world.ports, chain=chain), world.settings, world.clock)
    outcomes = _outcomes(emits)
    assert {r.code for r in outcomes.values()} == {FailureCode.SIGNER_REFUSED}
    assert all("per-batch cap" in (r.reason or "") for r in outcomes.values())
    for emit in emits:
        handle_submitted(emit.payload(), world.submitted)
    assert world.balances["alice"].summary() == summary(10**9, 0)
    assert chain.settled == set()


async def test_a_payee_the_signer_does_not_allow_fails_alone(world: World) -> None:
    batch = due_batch(world, 3)
    bad = batch.members[1].payee_address
    allowed = {m.payee_address.lower() for m in batch.members} - {bad.lower()}
    chain = _chain(_policy(payees=allowed))
    emits = await settle(batch, replace(world.ports, chain=chain), world.settings, world.clock)
    outcomes = _outcomes(emits)
    refused = {m.payment_id for m in batch.members if m.payee_address == bad}
    assert {i for i, r in outcomes.items() if r.code == FailureCode.SIGNER_REFUSED} == refused
    assert len(chain.settled) == 3 - len(refused)
