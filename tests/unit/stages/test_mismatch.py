"""A payment the chain paid otherwise than requested keeps its hold in MISMATCH
until an operator accepts the chain's payout (SETTLED, the hold captured) or
rejects it (FAILED with SETTLEMENT_MISMATCH, the hold released); the first
decision wins and a replay publishes the same records again."""

from __future__ import annotations

from typing import Any

from eth_account import Account

from schemas.chain import ReconciliationAlert, SettlementFinal
from schemas.partitioning import partition_for
from schemas.payments import PaymentFailed, PaymentFinalized, PaymentSettled
from schemas.review import ReviewDecision
from schemas.topics import (
    PAYMENTS_FAILED,
    PAYMENTS_FINALIZED,
    PAYMENTS_SETTLED,
    RECONCILIATION_ALERTS,
)
from streams.outcomes import Outcome
from streams.stages.fraud import handle_request
from streams.stages.reconcile import handle_chain_event
from streams.stages.review import handle_decision
from streams.state import Balance, Status
from tests.unit.stages.conftest import World, confirmed, key_of, raw, request, summary

OTHER_PAYEE = Account.create().address
ALICE = partition_for("alice", 8)


def paid_otherwise(world: World, amount: int = 1_000) -> tuple[dict[str, Any], Outcome]:
    """A scored payment of ``amount``; the chain pays 1,500 to another payee under
    its sequence (what a second operator key, or a bug, could do)."""
    world.balances["alice"] = Balance(available=10_000)
    body = request(amount=amount)
    assert handle_request(raw(body), "alice", world.fraud).note == "approved"
    return body, handle_chain_event(paid(body), "alice", world.reconcile)


def paid(body: dict[str, Any]) -> bytes:
    """The chain's record of the payment: 1,500 (fee 15) to OTHER_PAYEE."""
    return confirmed(body["payment_id"], OTHER_PAYEE, 1_500, fee=15)


def decide(world: World, body: dict[str, Any], verdict: str) -> Outcome:
    decision = ReviewDecision(
        payment_id=body["payment_id"],
        payer_account="alice",
        verdict=verdict,
        decided_by="ops",
        note="ticket 42",
        decided_at=world.clock(),
    )
    return handle_decision(decision.model_dump_json().encode(), ALICE, world.review)


def test_a_payment_paid_otherwise_is_held_in_mismatch_with_the_chains_payout(
    world: World,
) -> None:
    body, outcome = paid_otherwise(world)
    (emit,) = outcome.emits
    assert emit.topic == RECONCILIATION_ALERTS and isinstance(emit.value, ReconciliationAlert)
    alert = emit.value
    assert (alert.kind, alert.held, str(alert.payment_id)) == ("MISMATCH", True, body["payment_id"])
    assert alert.chain is not None
    assert (alert.chain.payee_address, alert.chain.amount, alert.chain.fee) == (
        OTHER_PAYEE,
        1_500,
        15,
    )
    state = world.payments[key_of(body)]
    assert (state.status, state.sequence, state.tx_hash) == (Status.MISMATCH, 7, "0xaa")
    assert world.balances["alice"].summary() == summary(available=9_000, held=1_000)
    replay = handle_chain_event(paid(body), "alice", world.reconcile)  # after a crash
    assert [e.payload() for e in replay.emits] == [emit.payload()]


def test_accepting_settles_it_as_requested_with_the_chains_payout_attached(
    world: World,
) -> None:
    body, _ = paid_otherwise(world)
    (emit,) = decide(world, body, "ACCEPT").emits
    assert emit.topic == PAYMENTS_SETTLED and emit.partition == ALICE
    settled = emit.value
    assert isinstance(settled, PaymentSettled) and settled.resolution is not None
    assert (settled.amount, settled.payee_address) == (1_000, body["payee_address"])
    assert (settled.resolution.verdict, settled.resolution.decided_by) == ("ACCEPT", "ops")
    assert (settled.resolution.chain.amount, settled.sequence) == (1_500, 7)
    assert world.payments[key_of(body)].status == Status.SETTLED
    assert world.balances["alice"].summary() == summary(available=9_000, settled=1_000)


def test_rejecting_fails_it_and_releases_the_hold(world: World) -> None:
    body, _ = paid_otherwise(world)
    (emit,) = decide(world, body, "REJECT").emits
    assert emit.topic == PAYMENTS_FAILED and isinstance(emit.value, PaymentFailed)
    failed = emit.value
    assert failed.code == "SETTLEMENT_MISMATCH" and "ticket 42" in failed.reason
    assert failed.resolution is not None and failed.resolution.chain.payee_address == OTHER_PAYEE
    assert world.payments[key_of(body)].status == Status.FAILED
    assert world.balances["alice"].summary() == summary(available=10_000)


def test_the_first_decision_wins_and_a_replay_publishes_it_again(world: World) -> None:
    body, _ = paid_otherwise(world)
    first = decide(world, body, "REJECT")
    again = decide(world, body, "ACCEPT")
    assert [e.payload() for e in again.emits] == [e.payload() for e in first.emits]
    assert world.balances["alice"].summary() == summary(available=10_000)
    chain_replay = handle_chain_event(paid(body), "alice", world.reconcile)  # nothing new
    assert world.payments[key_of(body)].status == Status.FAILED
    state = world.payments[key_of(body)]
    assert {e.topic: e.payload().decode() for e in chain_replay.emits} == {
        RECONCILIATION_ALERTS: state.outputs[RECONCILIATION_ALERTS],
        PAYMENTS_FAILED: state.outputs[PAYMENTS_FAILED],
    }
    assert world.balances["alice"].summary() == summary(available=10_000)


def test_review_and_mismatch_decisions_apply_only_to_their_own_holds(world: World) -> None:
    body, _ = paid_otherwise(world)
    assert decide(world, body, "APPROVE").dead_letter is not None
    assert world.payments[key_of(body)].status == Status.MISMATCH
    plain = request()
    handle_request(raw(plain), "alice", world.fraud)
    assert decide(world, plain, "ACCEPT").dead_letter is not None
    assert world.payments[key_of(plain)].status == Status.SCORED


def test_a_payout_final_before_it_was_accepted_is_final_once_accepted(world: World) -> None:
    """The listener told the chain's payout final while it was held: ACCEPT
    publishes payments.settled and payments.finalized together."""
    body, _ = paid_otherwise(world)
    final = SettlementFinal(
        block_number=3,
        block_hash="0xbb",
        tx_hash="0xaa",
        log_index=1,
        sequence=7,
        final_block_number=5,
        payment_id=body["payment_id"],
        payer_account="alice",
    )
    noted = handle_chain_event(final.model_dump_json().encode(), "seq", world.reconcile)
    assert noted.emits == () and world.payments[key_of(body)].status == Status.MISMATCH
    settled, finalized = decide(world, body, "ACCEPT").emits
    assert (settled.topic, finalized.topic) == (PAYMENTS_SETTLED, PAYMENTS_FINALIZED)
    record = PaymentFinalized.model_validate_json(finalized.payload())
    assert (record.block_hash, record.final_block_number, record.amount) == ("0xbb", 5, 1_000)
