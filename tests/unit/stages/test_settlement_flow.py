"""Settlement, submission and reconciliation stages over the in-memory chain."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from schemas.base import outcome_event_id
from schemas.chain import DepositConfirmed, DepositCredited, SettlementConfirmed
from schemas.codes import FailureCode
from schemas.onchain import BatchReceipt, PaymentRecord
from schemas.payments import BatchSubmitted, PaymentFailed, PaymentSettled
from schemas.sequence import partition_of
from schemas.topics import PAYMENTS_FAILED, PAYMENTS_SETTLED, RECONCILIATION_ALERTS
from services.chain.reverts import ContractReverted
from services.errors import ChainUnavailable, InvariantViolation
from streams.scheduler import Submissions
from streams.stages.fraud import handle_request
from streams.stages.reconcile import handle_chain_event
from streams.stages.settlement.batching import (
    OpenBatch,
    handle_scored,
    member_batches,
    merge_batches,
    pending_batches,
    take_due_batches,
)
from streams.stages.settlement.submit import SettlementDeferred, claim_request, settle
from streams.stages.submitted import handle_submitted
from streams.state import Balance, PaymentState, Status
from tests.support.fakes import FakeChain
from tests.unit.stages.conftest import (
    Sent,
    World,
    approve,
    confirmation,
    due_batch,
    raw,
    request,
    sent_of,
    summary,
)


def _confirmed(world: World, sent: Sent, block: int = 10) -> bytes:
    return confirmation(world, sent, block, "0xbb")


class Refusing(FakeChain):
    """A contract that refuses every batch for good (its approvals do not verify)."""

    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        raise ContractReverted("NotEnoughApprovals", (0, 2), b"")


async def test_batches_close_when_full_and_their_claimed_sequences_are_consecutive(
    world: World,
) -> None:
    for offset, payload in enumerate(approve(world, 4)):
        assert handle_scored(payload, 3, offset, world.settlement).note == "batched"
    assert {(s.partition, s.sequence) for s in world.payments.values()} == {(3, None)}
    full, open_ = take_due_batches(world.settlement, 0), world.settlement.batches.open[3]
    assert [len(b.members) for b in full] == [3] and len(open_.members) == 1
    world.clock.advance(world.settings.batch_wait_ms)
    assert [len(b.members) for b in take_due_batches(world.settlement, 0)] == [1]
    emits = await settle(full[0], world.ports, world.settings, world.clock)
    sequences = [s.sequence or 0 for s in sent_of(emits)]
    first = min(sequences)
    assert sorted(sequences) == [first, first + 1, first + 2]
    assert {partition_of(s) for s in sequences} == {3} == {e.partition for e in emits}


def test_due_batches_keep_filling_while_the_chain_is_busy(world: World) -> None:
    limit = world.settings.settle_inflight_max
    sending = limit  # that many transactions are still on their way
    payloads = approve(world, 3)
    handle_scored(payloads[0], 5, 0, world.settlement)
    world.clock.advance(world.settings.batch_wait_ms)
    assert take_due_batches(world.settlement, sending) == []
    handle_scored(payloads[1], 5, 1, world.settlement)  # joins the same batch
    handle_scored(payloads[2], 6, 0, world.settlement)  # another partition's batch
    world.clock.advance(world.settings.batch_wait_ms)
    sending = limit - 1
    (merged,) = take_due_batches(world.settlement, sending)  # one transaction for both partitions
    assert sorted(m.partition or 0 for m in merged.members) == [5, 5, 6]
    assert member_batches(merged) == {5 << 40, 6 << 40}


def test_merging_never_splits_a_batch_nor_exceeds_the_maximum() -> None:
    def batch(first: int, size: int) -> OpenBatch:
        members = [
            PaymentState(
                payment_id=uuid.uuid4(),
                payer_account="a",
                payee_address="",
                amount=1,
                currency="PTUSD",
                status=Status.SCORED,
                requested_at=datetime.now(UTC),
                sequence=first + i,
                batch_id=first,
            )
            for i in range(size)
        ]
        return OpenBatch(first, datetime.now(UTC), members)

    merged = merge_batches([batch(1 << 40, 3), batch(2 << 40, 2), batch(3 << 40, 4)], 5)
    assert [(b.batch_id, len(b.members)) for b in merged] == [(1 << 40, 5), (3 << 40, 4)]


def test_a_replayed_scored_record_joins_no_second_batch(world: World) -> None:
    (payload,) = approve(world, 1)
    handle_scored(payload, 0, 17, world.settlement)
    again = handle_scored(payload, 0, 17, world.settlement)
    assert again.note == "already batched"
    assert [s.batch_id for s in world.payments.values()] == [17]
    assert [len(b.members) for b in world.settlement.batches.open.values()] == [1]


async def test_a_resent_batch_keeps_its_claimed_sequences(world: World) -> None:
    """Whatever is replayed or re-sent, a payment is sent under one sequence."""
    for offset, payload in enumerate(approve(world, 2)):
        handle_scored(payload, 1, offset, world.settlement)
    world.clock.advance(world.settings.batch_wait_ms)
    (batch,) = take_due_batches(world.settlement, 0)
    first = await settle(batch, world.ports, world.settings, world.clock)
    again = await settle(batch, world.ports, world.settings, world.clock)
    sequences = [[s.sequence for s in sent_of(emits)] for emits in (first, again)]
    assert sequences[0] == sequences[1]
    assert len(world.chain.settled) == 2  # the second transaction paid nothing


async def test_one_id_from_two_payers_is_paid_once_the_other_gets_a_conflict(
    world: World,
) -> None:
    pid = str(uuid.uuid4())
    payloads = []
    for payer in ("alice", "bob"):
        world.balances[payer] = Balance(available=10_000)
        body = request(payer, payment_id=pid)
        (emit,) = handle_request(raw(body), payer, world.fraud).emits
        payloads.append(emit.payload())
    handle_scored(payloads[0], 2, 0, world.settlement)
    handle_scored(payloads[1], 7, 0, world.settlement)
    world.clock.advance(world.settings.batch_wait_ms)
    (batch,) = take_due_batches(world.settlement, 0)
    emits = await settle(batch, world.ports, world.settings, world.clock)
    records = {s.payer_account: s for s in sent_of(emits)}
    assert (records["alice"].outcome, records["bob"].outcome) == ("SUBMITTED", "REJECTED")
    assert records["bob"].code == "PAYMENT_ID_CONFLICT" and records["bob"].sequence is None
    assert len(world.chain.settled) == 1
    bob = next(e for e in emits if e.partition == records["bob"].partition)
    (failed,) = handle_submitted(bob.payload(), world.submitted).emits
    answer = PaymentFailed.model_validate_json(failed.payload())
    assert answer.event_id != outcome_event_id("failed", uuid.UUID(pid))
    assert world.balances["bob"].summary() == summary(available=10_000)
    assert world.balances["alice"].summary() == summary(available=9_000, held=1_000)


async def test_end_to_end_through_the_stages_captures_the_hold(world: World) -> None:
    for offset, payload in enumerate(approve(world, 3)):
        handle_scored(payload, 1, offset, world.settlement)
    (batch,) = take_due_batches(world.settlement, 0)
    emits = await settle(batch, world.ports, world.settings, world.clock)
    assert {BatchSubmitted.model_validate_json(e.payload()).outcome for e in emits} == {"SUBMITTED"}
    for emit in emits:
        handle_submitted(emit.payload(), world.submitted)
    for sent in sent_of(emits):
        outcome = handle_chain_event(_confirmed(world, sent), "ref", world.reconcile)
        assert [e.topic for e in outcome.emits] == [PAYMENTS_SETTLED]
        PaymentSettled.model_validate_json(outcome.emits[0].payload())
    assert world.balances["alice"].summary() == summary(10**9 - 3_000, 0, 3_000)
    assert {s.status for s in world.payments.values()} == {Status.SETTLED}
    again = handle_chain_event(_confirmed(world, sent_of(emits)[0]), "ref", world.reconcile)
    assert again.note == "duplicate" and world.balances["alice"].settled == 3_000


async def test_a_refused_batch_fails_its_payments_and_releases_the_holds(world: World) -> None:
    batch = due_batch(world, 2)
    world.ports = replace(world.ports, chain=Refusing())
    emits = await settle(batch, world.ports, world.settings, world.clock)
    failed = [f for e in emits for f in handle_submitted(e.payload(), world.submitted).emits]
    assert [f.topic for f in failed] == [PAYMENTS_FAILED] * 2
    for f in failed:
        assert PaymentFailed.model_validate_json(f.payload()).code == "SETTLEMENT_REJECTED"
    assert world.balances["alice"].summary() == summary(available=10**9)
    assert {s.status for s in world.payments.values()} == {Status.FAILED}
    replay = handle_submitted(emits[0].payload(), world.submitted)
    assert replay.note == "terminal x2"
    assert world.balances["alice"].summary() == summary(available=10**9)


async def test_out_of_retries_nothing_is_decided_and_the_holds_stay(world: World) -> None:
    class Flaky(FakeChain):
        async def settle_batch(
            self, batch_id: int, payments: Sequence[PaymentRecord]
        ) -> BatchReceipt:
            raise ChainUnavailable("node down")

    world.settings = world.settings.model_copy(
        update={"settle_retries_max": 1, "settle_backoff_ms": 1}
    )
    batch = due_batch(world, 2)
    with pytest.raises(SettlementDeferred):
        await settle(batch, replace(world.ports, chain=Flaky()), world.settings, world.clock)
    assert world.balances["alice"].summary() == summary(10**9 - 2_000, 2_000)


async def test_a_refusal_fails_only_with_proof(world: World) -> None:
    """Refused while a transaction of the operator waits in the pool: deferred.
    Refused with nothing pending: what an earlier attempt paid is SUBMITTED, the
    rest fails."""

    batch = due_batch(world, 2)
    chain = Refusing(unmined=1)
    ports = replace(world.ports, chain=chain)
    with pytest.raises(SettlementDeferred):
        await settle(batch, ports, world.settings, world.clock)
    chain.unmined = 0
    claims = await world.claims.claim([claim_request(m) for m in batch.members])
    chain.settled.add(claims[batch.members[0].payment_id].sequence)  # an earlier attempt paid it
    emits = await settle(batch, ports, world.settings, world.clock)
    outcomes = sent_of(emits)
    assert sorted((o.outcome, o.code or "") for o in outcomes) == [
        ("REJECTED", "SETTLEMENT_REJECTED"),
        ("SUBMITTED", ""),
    ]


async def test_a_refusal_never_fails_a_payment_already_submitted(world: World) -> None:
    """Another transaction's refusal (a re-send) is no proof against the one
    that carried the payment: the SUBMITTED payment keeps its hold."""
    (payload,) = approve(world, 1)
    handle_scored(payload, 0, 0, world.settlement)
    world.clock.advance(world.settings.batch_wait_ms)
    (batch,) = take_due_batches(world.settlement, 0)
    (sent,) = await settle(batch, world.ports, world.settings, world.clock)
    handle_submitted(sent.payload(), world.submitted)
    record = BatchSubmitted.model_validate_json(sent.payload())
    refused = record.model_copy(
        update={"outcome": "REJECTED", "code": FailureCode.SETTLEMENT_REJECTED, "tx_hash": None}
    )
    outcome = handle_submitted(refused.model_dump_json().encode(), world.submitted)
    assert outcome.emits == () and outcome.note.startswith("already submitted")
    assert {s.status for s in world.payments.values()} == {Status.SUBMITTED}
    assert world.balances["alice"].summary() == summary(10**9 - 1_000, 1_000)


def test_unsent_batches_are_found_again_with_their_members(world: World) -> None:
    for offset, payload in enumerate(approve(world, 4)):
        handle_scored(payload, 2, offset, world.settlement)
    world.clock.advance(60_000)
    handled = Submissions(keep_s=600)
    found = pending_batches(world.payments.values(), world.clock(), handled)
    assert sorted(len(b.members) for b in found) == [1, 3]
    first, second = found
    handled.take(first.batch_id, now_s=1000.0)
    handled.take(second.batch_id, now_s=1000.0)
    assert pending_batches(world.payments.values(), world.clock(), handled) == []
    handled.failed(first.batch_id)  # given up: the sweeper sends it again
    again = pending_batches(world.payments.values(), world.clock(), handled)
    assert [b.batch_id for b in again] == [first.batch_id]
    handled.done(second.batch_id, now_s=1000.0)  # sent: marked keep_s longer
    handled.take(first.batch_id, now_s=1000.0 + 601)  # long ago: forgotten, may be re-sent
    assert [
        b.batch_id for b in pending_batches(world.payments.values(), world.clock(), handled)
    ] == [second.batch_id]


def test_reconciler_alerts_on_unknown_or_mismatching_settlements(world: World) -> None:
    unknown = SettlementConfirmed(
        block_number=1,
        block_hash="0x1",
        tx_hash="0x2",
        log_index=0,
        sequence=99,
        payer_ref=1,
        payee_address="0x" + "00" * 20,
        amount=5,
        batch_id=1,
    )
    (alert,) = handle_chain_event(unknown.model_dump_json().encode(), "k", world.reconcile).emits
    assert alert.topic == RECONCILIATION_ALERTS
    assert json.loads(alert.payload())["kind"] == "UNKNOWN_SEQUENCE"


def test_deposits_are_credited_once(world: World) -> None:
    deposit = (
        DepositConfirmed(
            block_number=1,
            block_hash="0x1",
            tx_hash="0x2",
            log_index=3,
            account="bob",
            depositor="0x" + "00" * 20,
            amount=700,
            deposit_id="0x2:0",
        )
        .model_dump_json()
        .encode()
    )
    first = handle_chain_event(deposit, "bob", world.reconcile)
    again = handle_chain_event(deposit, "bob", world.reconcile)
    assert world.balances["bob"].summary() == summary(available=700)
    assert (first.note, again.note) == ("deposit credited", "duplicate deposit")
    credits = [DepositCredited.model_validate_json(o.emits[0].payload()) for o in (first, again)]
    assert {(c.event_id, c.credit) for c in credits} == {(credits[0].event_id, 1)}


def test_illegal_transitions_break_an_invariant(world: World) -> None:
    (payload,) = approve(world, 1)
    state = next(iter(world.payments.values()))
    with pytest.raises(InvariantViolation):
        state.moved(Status.SETTLED)
    with pytest.raises(InvariantViolation):
        Balance(available=1).hold("p", 2)
    assert payload


async def test_a_replayed_settlement_captures_once_even_if_the_capture_was_lost(
    world: World,
) -> None:
    (payload,) = approve(world, 1)
    handle_scored(payload, 4, 0, world.settlement)
    world.clock.advance(world.settings.batch_wait_ms)
    (batch,) = take_due_batches(world.settlement, 0)
    (emit,) = await settle(batch, world.ports, world.settings, world.clock)
    handle_submitted(emit.payload(), world.submitted)
    before = world.balances["alice"]
    confirmed = _confirmed(world, sent_of([emit])[0])
    handle_chain_event(confirmed, "ref", world.reconcile)
    world.balances["alice"] = before  # the capture was lost in a crash, the status was not
    handle_chain_event(confirmed, "ref", world.reconcile)
    handle_chain_event(confirmed, "ref", world.reconcile)
    assert world.balances["alice"].summary() == summary(10**9 - 1_000, 0, 1_000)
