"""What the reconciler does when a reorg undoes what it booked: a removed
deposit is taken back (the account frozen for what it cannot cover), a deposit
re-included anywhere is credited once, and a removed soft settlement is told
to consumers and held again, or settled again where the chain re-included it."""

from __future__ import annotations

from typing import Any

from schemas.chain import (
    DepositConfirmed,
    DepositCredited,
    DepositReversed,
    EventOrphaned,
    ReconciliationAlert,
    SettlementFinal,
)
from schemas.payments import PaymentFinalized, PaymentReorged, PaymentSettled
from schemas.topics import (
    DEPOSITS_CREDITED,
    PAYMENTS_FINALIZED,
    PAYMENTS_REORGED,
    PAYMENTS_SETTLED,
    RECONCILIATION_ALERTS,
)
from streams.outcomes import Outcome
from streams.stages.fraud import handle_request
from streams.stages.reconcile import handle_chain_event
from streams.stages.settlement.batching import handle_scored, take_due_batches
from streams.stages.settlement.submit import settle
from streams.stages.submitted import handle_submitted
from streams.state import Balance, Status, payment_key
from tests.unit.stages.conftest import (
    Sent,
    World,
    approve,
    confirmation,
    raw,
    request,
    sent_of,
    summary,
)

DEPOSITOR = "0x" + "00" * 20


def _deposit(amount: int, block: int, log_index: int, tx: str = "0xd1") -> bytes:
    record = DepositConfirmed(
        block_number=block,
        block_hash=f"0xb{block}",
        tx_hash=tx,
        log_index=log_index,
        account="bob",
        depositor=DEPOSITOR,
        amount=amount,
        deposit_id=f"{tx}:0",
    )
    return record.model_dump_json().encode()


def _orphaned(amount: int, block: int, tx: str = "0xd1", **payment: Any) -> bytes:
    deposit = {} if payment else {"account": "bob", "deposit_id": f"{tx}:0"}
    record = EventOrphaned(
        block_number=block,
        block_hash=f"0xb{block}",
        tx_hash=tx,
        log_index=1,
        amount=amount,
        **deposit,
        **payment,
    )
    return record.model_dump_json().encode()


def _records(outcome: Outcome, topic: str) -> list[str]:
    return [e.payload().decode() for e in outcome.emits if e.topic == topic]


def test_a_deposit_re_included_at_another_block_and_log_is_credited_once(world: World) -> None:
    handle_chain_event(_deposit(700, block=5, log_index=3), "bob", world.reconcile)
    again = handle_chain_event(_deposit(700, block=6, log_index=0), "bob", world.reconcile)
    assert again.note == "duplicate deposit"
    assert world.balances["bob"].summary() == summary(available=700)


def test_a_removed_deposit_is_reversed_and_credited_again_if_it_comes_back(
    world: World,
) -> None:
    first = handle_chain_event(_deposit(700, block=5, log_index=3), "bob", world.reconcile)
    removed = handle_chain_event(_orphaned(700, block=5), "bob", world.reconcile)
    assert world.balances["bob"].summary() == summary(available=0)
    replayed = handle_chain_event(_orphaned(700, block=5), "bob", world.reconcile)
    assert world.balances["bob"].summary() == summary(available=0)
    (reversal,) = [
        DepositReversed.model_validate_json(r) for r in _records(removed, DEPOSITS_CREDITED)
    ]
    (again,) = [
        DepositReversed.model_validate_json(r) for r in _records(replayed, DEPOSITS_CREDITED)
    ]
    assert (again.event_id, again.credit, reversal.credit) == (reversal.event_id, 1, 1)
    back = handle_chain_event(_deposit(700, block=8, log_index=2), "bob", world.reconcile)
    assert world.balances["bob"].summary() == summary(available=700)
    credits = [
        DepositCredited.model_validate_json(r)
        for o in (first, back)
        for r in _records(o, DEPOSITS_CREDITED)
    ]
    assert [c.credit for c in credits] == [1, 2]
    assert credits[0].event_id != credits[1].event_id  # the ledger books both


def test_a_reversal_the_balance_cannot_cover_freezes_the_account(world: World) -> None:
    handle_chain_event(_deposit(700, block=5, log_index=3), "bob", world.reconcile)
    (emit,) = handle_request(raw(request("bob", 500)), "bob", world.fraud).emits
    assert world.balances["bob"].summary() == summary(available=200, held=500)
    removed = handle_chain_event(_orphaned(700, block=5), "bob", world.reconcile)
    bob = world.balances["bob"]
    assert (bob.available, bob.owed, bob.frozen, bob.on_ledger) == (0, 500, True, 0)
    (alert,) = _records(removed, RECONCILIATION_ALERTS)
    assert ReconciliationAlert.model_validate_json(alert).kind == "FROZEN"
    assert DepositReversed.model_validate_json(_records(removed, DEPOSITS_CREDITED)[0]).owed == 500
    refused = handle_request(raw(request("bob", 1)), "bob", world.fraud)
    assert '"ACCOUNT_FROZEN"' in refused.emits[0].payload().decode()
    handle_chain_event(_deposit(800, block=9, log_index=0, tx="0xd2"), "bob", world.reconcile)
    bob = world.balances["bob"]
    assert (bob.available, bob.owed, bob.frozen) == (300, 0, False)
    assert emit.payload()


async def _settled(world: World) -> tuple[str, Sent, bytes]:
    """Alice's payment settled in block 10 (0xbb10) by its transaction."""
    (payload,) = approve(world, 1)
    handle_scored(payload, 4, 0, world.settlement)
    world.clock.advance(world.settings.batch_wait_ms)
    (batch,) = take_due_batches(world.settlement, 0)
    (emit,) = await settle(batch, world.ports, world.settings, world.clock)
    handle_submitted(emit.payload(), world.submitted)
    (sent,) = sent_of([emit])
    confirmed = _confirmation(world, sent, block=10)
    handle_chain_event(confirmed, "ref", world.reconcile)
    return payment_key("alice", sent.payment_id), sent, confirmed


def _confirmation(world: World, sent: Sent, block: int) -> bytes:
    return confirmation(world, sent, block, f"0xbb{block}")


async def test_a_removed_settlement_is_told_held_again_and_settled_anew(world: World) -> None:
    key, sent, confirmed = await _settled(world)
    forgotten: list[int] = []
    world.reconcile.forget_batch = forgotten.append
    first = PaymentSettled.model_validate_json(world.payments[key].outputs[PAYMENTS_SETTLED])
    orphan = _orphaned(
        1_000, block=10, tx=sent.tx_hash or "", payment_id=sent.payment_id, payer_account="alice"
    )
    told = handle_chain_event(orphan, "seq", world.reconcile)
    (record,) = _records(told, PAYMENTS_REORGED)
    reorged = PaymentReorged.model_validate_json(record)
    assert (reorged.next, reorged.reorgs, reorged.removed_block_number) == ("RE_SENT", 1, 10)
    state = world.payments[key]
    assert (state.status, state.sequence, state.reorgs) == (Status.SCORED, sent.sequence, 1)
    assert forgotten == [state.batch_id]  # the sweeper sends it again without waiting
    assert world.balances["alice"].summary() == summary(10**9 - 1_000, held=1_000)
    assert _records(handle_chain_event(orphan, "seq", world.reconcile), PAYMENTS_REORGED) == [
        record
    ]
    assert world.balances["alice"].summary() == summary(10**9 - 1_000, held=1_000)
    # The sweeper sends it again; the new chain pays it in block 12.
    again = _confirmation(world, sent, block=12)
    settled = handle_chain_event(again, "ref", world.reconcile)
    second = PaymentSettled.model_validate_json(_records(settled, PAYMENTS_SETTLED)[0])
    assert (second.block_number, second.reorgs) == (12, 1)
    assert second.event_id != first.event_id
    assert world.balances["alice"].summary() == summary(10**9 - 1_000, settled=1_000)
    assert confirmed


async def test_a_settlement_re_included_in_another_block_is_told_and_settled_there(
    world: World,
) -> None:
    key, sent, confirmed = await _settled(world)
    assert handle_chain_event(confirmed, "ref", world.reconcile).note == "duplicate"
    moved = handle_chain_event(_confirmation(world, sent, block=11), "ref", world.reconcile)
    (record,) = _records(moved, PAYMENTS_REORGED)
    reorged = PaymentReorged.model_validate_json(record)
    assert (reorged.next, reorged.included_block_number) == ("RE_INCLUDED", 11)
    settled = PaymentSettled.model_validate_json(_records(moved, PAYMENTS_SETTLED)[0])
    assert (settled.block_number, settled.reorgs) == (11, 1)
    assert world.payments[key].status == Status.SETTLED
    assert world.balances["alice"] == Balance(
        available=10**9 - 1_000, settled=1_000, finished=(str(sent.payment_id),)
    )
    replay = handle_chain_event(_confirmation(world, sent, block=11), "ref", world.reconcile)
    assert replay.note == "duplicate"


def test_a_balance_written_before_deposit_ids_still_reads() -> None:
    old = {"available": 5, "holds": {}, "settled": 0, "recent_deposits": ["0x1:3"]}
    assert Balance.model_validate(old) == Balance(available=5)


def _final(world: World, sent: Sent, block: int) -> bytes:
    return (
        SettlementFinal(
            block_number=block,
            block_hash=f"0xbb{block}",
            tx_hash=sent.tx_hash or "",
            log_index=1,
            sequence=sent.sequence or 0,
            final_block_number=block + 2,
            payment_id=sent.payment_id,
            payer_account="alice",
        )
        .model_dump_json()
        .encode()
    )


async def test_the_published_settlement_is_told_final_once_it_is_deep_enough(
    world: World,
) -> None:
    """payments.finalized for the block payments.settled named, the same on a
    replay; a final block no settlement names (one a reorg replaced) is no
    finality; after a re-inclusion, the new block's."""
    key, sent, _ = await _settled(world)
    first = handle_chain_event(_final(world, sent, 10), "seq", world.reconcile)
    (record,) = [
        PaymentFinalized.model_validate_json(r) for r in _records(first, PAYMENTS_FINALIZED)
    ]
    assert (record.block_number, record.final_block_number, record.reorgs) == (10, 12, 0)
    again = handle_chain_event(_final(world, sent, 10), "seq", world.reconcile)
    assert [
        PaymentFinalized.model_validate_json(r).event_id
        for r in _records(again, PAYMENTS_FINALIZED)
    ] == [record.event_id]
    # Re-included in block 11 (a reorg deeper than finality here: the test's
    # depth is arbitrary): the old block's finality no longer counts.
    handle_chain_event(_confirmation(world, sent, block=11), "ref", world.reconcile)
    assert PAYMENTS_FINALIZED not in world.payments[key].outputs
    assert handle_chain_event(_final(world, sent, 10), "seq", world.reconcile).emits == ()
    moved = handle_chain_event(_final(world, sent, 11), "seq", world.reconcile)
    (later,) = [
        PaymentFinalized.model_validate_json(r) for r in _records(moved, PAYMENTS_FINALIZED)
    ]
    assert (later.block_number, later.reorgs) == (11, 1) and later.event_id != record.event_id
