"""The invariant checker itself, on facts built by hand: a clean run has no
violation, and each kind of damage the scenarios look for is reported. Without
this, a scenario that "passes" could only mean the checker saw nothing."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from eth_account import Account

from schemas.onchain import DepositEvent, LogRef, SettledEvent, SettledPayment, account_ref
from schemas.sequence import sequence_of
from schemas.topics import (
    CHAIN_SUBMITTED,
    PAYMENTS_FAILED,
    PAYMENTS_FINALIZED,
    PAYMENTS_REORGED,
    PAYMENTS_REQUESTED,
    PAYMENTS_SETTLED,
)
from tests.faults.invariants import check, describe
from tests.faults.plan import MARKS
from tests.faults.sources import (
    ChainFacts,
    Facts,
    ReconcileFacts,
    Record,
    TopicFacts,
    Transfer,
)

pytestmark = MARKS

PAYER = "payer-1"
PAYEE = str(Account.create().address)
PID = str(uuid.uuid4())
AMOUNT = 700
DEPOSIT = 10_000
SEQ = sequence_of(2, 5)
AT = LogRef(block_number=3, block_hash="0xbb", tx_hash="0xaa", log_index=1)


def _settled(pid: str = PID, sequence: int = SEQ, event: str = "e1") -> Record:
    body = {"payment_id": pid, "event_id": event, "sequence": sequence, "tx_hash": "0xaa"}
    body |= {"payer_account": PAYER, "payee_address": PAYEE, "amount": AMOUNT}
    return Record(PAYMENTS_SETTLED, 2, 0, PAYER, body)


def _final(settled: Record, block_hash: str | None = None) -> Record:
    """The ``payments.finalized`` of a settled record (its transaction and block)."""
    body = dict(settled.value) | {"event_id": f"final-{settled.value['event_id']}"}
    if block_hash is not None:
        body["block_hash"] = block_hash
    return Record(PAYMENTS_FINALIZED, 2, 0, PAYER, body)


def _paid(sequence: int = SEQ) -> tuple[SettledEvent, Transfer]:
    payment = SettledPayment(PAYEE, AMOUNT, sequence, account_ref(PAYER), batch_id=1)
    return SettledEvent(payment, AT), Transfer(PAYEE.lower(), AMOUNT, "0xaa", 0)


def _facts(
    settled: list[Record], paid: list[tuple[SettledEvent, Transfer]], **changes: Any
) -> Facts:
    request = {"payment_id": PID, "payer_account": PAYER, "payee_address": PAYEE}
    requested = [Record(PAYMENTS_REQUESTED, 2, 0, PAYER, request | {"amount": AMOUNT})]
    topics = {
        PAYMENTS_REQUESTED: requested + changes.pop("requested", []),
        CHAIN_SUBMITTED: changes.pop("submitted", []),
        PAYMENTS_SETTLED: settled,
        PAYMENTS_FAILED: changes.pop("failed", []),
        PAYMENTS_FINALIZED: changes.pop("finalized", [_final(r) for r in settled]),
        PAYMENTS_REORGED: changes.pop("reorged", []),
    }
    paid_total = sum(t.amount for _, t in paid)
    deposit = DepositEvent(PAYER, account_ref(PAYER), PAYEE, DEPOSIT, AT)
    chain = ChainFacts(
        transfers=[t for _, t in paid],
        settled=[e for e, _ in paid],
        deposits=[deposit],
        balances={PAYEE: paid_total},
        head=10,
    )
    ledger = {PAYER: DEPOSIT - AMOUNT, PAYEE: AMOUNT, "treasury:chain": -DEPOSIT}
    reconcile = ReconcileFacts(0, {"counts": {}, "mismatches": []}, "")
    facts = Facts(TopicFacts(topics), chain, changes.pop("ledger", ledger), reconcile, {SEQ: PID})
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


def kinds(facts: Facts) -> set[str]:
    return {v.kind for v in check(facts)}


def test_a_clean_run_has_no_violation() -> None:
    facts = _facts([_settled(), _settled()], [_paid()])  # a redelivered record is fine
    assert check(facts) == [], describe(check(facts))


def test_a_payment_paid_twice_under_two_sequences_is_reported() -> None:
    second = sequence_of(6, 0)
    submitted = [
        Record(
            CHAIN_SUBMITTED, 6, 0, PAYER, {"payments": [{"payment_id": PID, "sequence": second}]}
        )
    ]
    paid = [_paid(), _paid(second)]
    facts = _facts([_settled(), _settled(sequence=second)], paid, submitted=submitted)
    assert {"several_outcomes", "payment_paid_twice", "payee_paid_other_than_settled"} <= kinds(
        facts
    )


def test_one_sequence_claimed_for_two_payments_is_reported() -> None:
    other = str(uuid.uuid4())
    submitted = [
        Record(CHAIN_SUBMITTED, 2, 0, PAYER, {"payments": [{"payment_id": other, "sequence": SEQ}]})
    ]
    facts = _facts([_settled()], [_paid()], submitted=submitted)
    assert "sequence_of_several_payments" in kinds(facts)


def _conflict(payer: str, event: str = "c1") -> Record:
    body = {"payment_id": PID, "event_id": event, "code": "PAYMENT_ID_CONFLICT"}
    return Record(PAYMENTS_FAILED, 5, 0, payer, body | {"payer_account": payer, "amount": 9})


def test_an_id_sent_by_two_payers_is_one_payment_and_one_conflict_answer() -> None:
    twin = {"payment_id": PID, "payer_account": "payer-2", "payee_address": PAYEE, "amount": 9}
    requested = [Record(PAYMENTS_REQUESTED, 5, 0, "payer-2", twin)]
    answered = _facts([_settled()], [_paid()], requested=requested, failed=[_conflict("payer-2")])
    assert check(answered) == [], describe(check(answered))
    unanswered = _facts([_settled()], [_paid()], requested=requested)
    assert kinds(unanswered) == {"conflicts_unanswered"}
    both_paid = _facts(
        [_settled(), _settled(event="e2")], [_paid()], requested=requested, failed=[]
    )
    assert {"several_outcomes", "conflicts_unanswered"} <= kinds(both_paid)


def test_a_failed_payment_the_chain_paid_is_reported() -> None:
    failed = [Record(PAYMENTS_FAILED, 2, 0, PAYER, {"payment_id": PID, "event_id": "f1"})]
    ledger = {PAYER: DEPOSIT, "treasury:chain": -DEPOSIT}  # the sink booked a failure
    facts = _facts([], [_paid()], failed=failed, ledger=ledger)
    assert {"paid_without_settled_outcome", "payer_ledger_vs_chain", "payee_ledger_vs_chain"} <= (
        kinds(facts)
    )


def test_a_request_without_outcome_and_an_unbalanced_ledger_are_reported() -> None:
    ledger = {PAYER: DEPOSIT, "treasury:chain": -DEPOSIT + 1}
    assert {"no_outcome", "ledger_unbalanced"} <= kinds(_facts([], [], ledger=ledger))


def test_reconcile_mismatches_and_a_reconcile_that_did_not_run_are_reported() -> None:
    mismatch = {"mismatches": [{"kind": "balance", "account": PAYER}]}
    broken = _facts([_settled()], [_paid()], reconcile=ReconcileFacts(1, mismatch, ""))
    assert kinds(broken) == {"reconcile_mismatch"}
    crashed = _facts([_settled()], [_paid()], reconcile=ReconcileFacts(2, None, "boom"))
    assert kinds(crashed) == {"reconcile_failed"}


def test_a_hold_left_in_the_balances_table_is_reported() -> None:
    counts = {"holds in the balances table": 1, "held in the balances table": 500}
    report = {"counts": counts, "mismatches": []}
    left = _facts([_settled()], [_paid()], reconcile=ReconcileFacts(0, report, ""))
    assert kinds(left) == {"holds_left"}
    counts["holds in the balances table"] = 0
    assert kinds(left) == set()


FEE = 50
FEE_RECIPIENT = "0x" + "fe" * 20


def _with_fee(facts: Facts, fee_taken: int) -> Facts:
    """The payment carried a 50 fee; the chain took ``fee_taken`` of it."""
    settled = facts.topics.records[PAYMENTS_SETTLED][0]
    facts.topics.records[PAYMENTS_SETTLED] = [replace(settled, value=settled.value | {"fee": FEE})]
    event = facts.chain.settled[0]
    facts.chain.settled = [replace(event, payment=replace(event.payment, fee=fee_taken))]
    facts.chain.transfers = [
        Transfer(PAYEE.lower(), AMOUNT - fee_taken, "0xaa", 0),
        Transfer(FEE_RECIPIENT, fee_taken, "0xaa", 2),
    ]
    facts.chain.balances = {PAYEE: AMOUNT - fee_taken}
    facts.chain.fee_recipient, facts.chain.fees_held = FEE_RECIPIENT, fee_taken
    facts.ledger = {
        PAYER: DEPOSIT - AMOUNT,
        PAYEE: AMOUNT - FEE,
        "platform:fees": FEE,
        "treasury:chain": -DEPOSIT,
    }
    return facts


def test_a_fee_paid_on_chain_as_booked_is_clean_and_one_not_paid_is_reported() -> None:
    assert check(_with_fee(_facts([_settled()], [_paid()]), FEE)) == []
    assert kinds(_with_fee(_facts([_settled()], [_paid()]), 0)) == {
        "settled_but_not_paid",
        "payee_paid_other_than_settled",
        "payee_ledger_vs_chain",
        "fees_ledger_vs_chain",
    }


def test_every_settlement_must_be_final_for_its_own_block_unless_a_reorg_undid_it() -> None:
    assert kinds(_facts([_settled()], [_paid()], finalized=[])) == {"settled_not_final"}
    elsewhere = _final(_settled(), block_hash="0xother")
    assert kinds(_facts([_settled()], [_paid()], finalized=[elsewhere])) == {"settled_not_final"}
    undone = _settled(event="e0")  # settled, then a reorg undid it: not an outcome, not final
    again = Record(PAYMENTS_SETTLED, 2, 1, PAYER, dict(_settled().value) | {"reorgs": 1})
    reorged = Record(PAYMENTS_REORGED, 2, 0, PAYER, {"payment_id": PID, "reorgs": 1})
    facts = _facts([undone, again], [_paid()], finalized=[_final(again)], reorged=[reorged])
    assert check(facts) == [], describe(check(facts))
