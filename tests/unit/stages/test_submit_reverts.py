"""Submission when the chain refuses or does not mine: reverts that say
nothing about the payments wait, a payee the token refuses fails alone, and a
transaction cancelled after ``chain_cancel_after_s`` fails its payments only
with proof."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from schemas.onchain import BatchReceipt, PaymentRecord
from schemas.payments import BatchSubmitted, PaymentFailed
from services.chain.reverts import ContractReverted
from services.errors import TransactionCancelled
from streams.stages.settlement.submit import SettlementDeferred, settle
from streams.stages.submitted import handle_submitted
from tests.support.fakes import FAKE_FEE_RECIPIENT, FakeChain
from tests.unit.stages.conftest import World, due_batch, sent_of, summary


@pytest.mark.parametrize("condition", ["paused", "treasury short"])
async def test_a_revert_that_says_nothing_about_the_payments_is_never_a_failure(
    world: World, condition: str
) -> None:
    """Paused, or short of funds: the batch stays held until it clears."""
    batch = due_batch(world, 2)
    chain = FakeChain(paused=condition == "paused", treasury=1_500)
    ports = replace(world.ports, chain=chain)
    with pytest.raises(SettlementDeferred, match="sweeper sends it again"):
        await settle(batch, ports, world.settings, world.clock)
    assert world.balances["alice"].summary() == summary(10**9 - 2_000, 2_000)
    chain.paused, chain.treasury = False, 10**9  # unpaused, topped up
    emits = await settle(batch, ports, world.settings, world.clock)
    outcomes = {s.outcome for s in sent_of(emits)}
    assert outcomes == {"SUBMITTED"} and len(chain.settled) == 2


async def test_a_payee_the_token_refuses_fails_alone(world: World) -> None:
    """One payee the token will not credit reverts the whole batch on chain; only
    its payments are refused, the rest are paid in the same settle."""
    batch = due_batch(world, 3)  # a full batch (batch_max_payments)
    bad = batch.members[1].payee_address
    chain = FakeChain(refusing={bad.lower()})
    emits = await settle(batch, replace(world.ports, chain=chain), world.settings, world.clock)
    outcomes = {s.payment_id: s for s in sent_of(emits)}
    refused = [m.payment_id for m in batch.members if m.payee_address == bad]
    assert [i for i, r in outcomes.items() if r.outcome == "REJECTED"] == refused
    assert bad.lower() in (outcomes[refused[0]].reason or "")
    assert len(chain.settled) == 2
    for emit in emits:
        handle_submitted(emit.payload(), world.submitted)
    assert world.balances["alice"].summary() == summary(10**9 - 2_000, 2_000)


class RevertsOnce(FakeChain):
    """The first attempt reverts with ``revert``, the next is paid."""

    revert: ContractReverted | None = None

    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        if self.revert is not None:
            revert, self.revert = self.revert, None
            raise revert
        return await super().settle_batch(batch_id, payments)


@pytest.mark.parametrize(
    "revert",
    [
        # a version approved long ago is mined after its approvals expired
        ContractReverted("ApprovalExpired", (0,), b""),
        # the contract's own fault (an underflow in a gas estimate): no verdict
        ContractReverted("Panic", (0x11,), b""),
    ],
    ids=["approval expired", "panic"],
)
async def test_a_revert_about_the_attempt_is_sent_again_not_a_failure(
    world: World, revert: ContractReverted
) -> None:
    batch = due_batch(world, 2)
    chain = RevertsOnce()
    chain.revert = revert
    ports = replace(world.ports, chain=chain)
    with pytest.raises(SettlementDeferred):
        await settle(batch, ports, world.settings, world.clock)
    emits = await settle(batch, ports, world.settings, world.clock)
    assert {BatchSubmitted.model_validate_json(e.payload()).outcome for e in emits} == {"SUBMITTED"}


class Cancelling(FakeChain):
    """The chain never mines the batch: its cancel is mined instead."""

    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        raise TransactionCancelled(f"batch {batch_id}: cancelled")


async def test_a_cancelled_transaction_fails_its_payments_only_with_proof(world: World) -> None:
    """Cancelled while another transaction of the operator waits in the pool:
    deferred (it might carry them). With nothing pending: what the chain shows
    paid is SUBMITTED, the rest fails with SETTLEMENT_TIMEOUT and its hold ends."""
    batch = due_batch(world, 2)
    chain = Cancelling(unmined=1)
    ports = replace(world.ports, chain=chain)
    with pytest.raises(SettlementDeferred):
        await settle(batch, ports, world.settings, world.clock)
    chain.unmined = 0
    emits = await settle(batch, ports, world.settings, world.clock)
    outcomes = [BatchSubmitted.model_validate_json(e.payload()) for e in emits]
    assert {(o.outcome, o.code) for o in outcomes} == {("REJECTED", "SETTLEMENT_TIMEOUT")}
    failed = [f for e in emits for f in handle_submitted(e.payload(), world.submitted).emits]
    codes = [PaymentFailed.model_validate_json(f.payload()).code for f in failed]
    assert codes == ["SETTLEMENT_TIMEOUT"] * 2
    assert world.balances["alice"].summary() == summary(available=10**9)


class SpentByOthers(FakeChain):
    """The batch's estimate ran at the pending state, where batches in flight
    had spent the treasury: the token refused a payee it accepts."""

    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        raise ContractReverted("TransferFailed", (payments[0].payee.lower(), 1), b"")


async def test_a_transfer_refused_to_a_payee_the_token_accepts_is_no_failure(
    world: World,
) -> None:
    batch = due_batch(world, 2)
    with pytest.raises(SettlementDeferred, match="once the treasury can pay it"):
        await settle(
            batch, replace(world.ports, chain=SpentByOthers()), world.settings, world.clock
        )


async def test_the_fee_recipient_refused_fails_no_payment(world: World) -> None:
    batch = due_batch(world, 2)
    batch.members = [m.model_copy(update={"fee": 10}) for m in batch.members]
    chain = FakeChain(refusing={FAKE_FEE_RECIPIENT})
    with pytest.raises(SettlementDeferred, match="fee recipient"):
        await settle(batch, replace(world.ports, chain=chain), world.settings, world.clock)
    assert chain.settled == set()


async def test_nothing_is_sent_while_settlement_is_halted(world: World) -> None:
    batch = due_batch(world, 2)
    await world.claims.halt("a reorg deeper than finality")
    with pytest.raises(SettlementDeferred, match="halted"):
        await settle(batch, world.ports, world.settings, world.clock)
    assert world.chain.settled == set() and await world.claims.next_counter() == 1
    world.claims.halt_reason = None  # resumed
    emits = await settle(batch, world.ports, world.settings, world.clock)
    assert {BatchSubmitted.model_validate_json(e.payload()).outcome for e in emits} == {"SUBMITTED"}
