"""The invariant checker itself, on facts built by hand: a clean run has no
violation, and each kind of damage the scenarios look for is reported. Without
this, a scenario that "passes" could only mean the checker saw nothing."""

from __future__ import annotations

import uuid
from typing import Any

from eth_account import Account

from schemas.onchain import DepositEvent, LogRef, SettledEvent, SettledPayment, account_ref
from schemas.topics import FRAUD_SCORED, PAYMENTS_FAILED, PAYMENTS_REQUESTED, PAYMENTS_SETTLED
from streams.state import sequence_of
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


def _paid(sequence: int = SEQ) -> tuple[SettledEvent, Transfer]:
    payment = SettledPayment(PAYEE, AMOUNT, sequence, account_ref(PAYER), batch_id=1)
    return SettledEvent(payment, AT), Transfer(PAYEE.lower(), AMOUNT, "0xaa", 0)


def _facts(
    settled: list[Record], paid: list[tuple[SettledEvent, Transfer]], **changes: Any
) -> Facts:
    request = {"payment_id": PID, "payer_account": PAYER, "payee_address": PAYEE}
    scored = {"request": request | {"amount": AMOUNT}}
    topics = {
        PAYMENTS_REQUESTED: [Record(PAYMENTS_REQUESTED, 2, 0, PAYER, request | {"amount": AMOUNT})],
        FRAUD_SCORED: [Record(FRAUD_SCORED, 2, 5, PAYER, scored)],
        PAYMENTS_SETTLED: settled,
        PAYMENTS_FAILED: changes.pop("failed", []),
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
    facts = Facts(TopicFacts(topics), chain, changes.pop("ledger", ledger), reconcile)
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
    facts = _facts([_settled(), _settled(sequence=second)], [_paid(), _paid(second)])
    facts.topics.records[FRAUD_SCORED].append(
        Record(FRAUD_SCORED, 6, 0, PAYER, {"request": {"payment_id": PID}})
    )
    assert {"several_outcomes", "payment_paid_twice", "payee_paid_other_than_settled"} <= kinds(
        facts
    )


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
