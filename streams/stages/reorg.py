"""Deposits, finality, and what the reconciler does when a reorg undoes what
it booked.

A deposit is credited once per reorg-stable id (its transaction and place in
it), whatever block or log index the chain shows it at; each credit and its
reversal is published on ``deposits.credited`` for the ledger. A removed
deposit is taken back; what the available balance cannot cover is owed and
freezes the account (a ``FROZEN`` alert).

A removed soft settlement publishes ``payments.reorged`` and holds the payment
again: re-included in the new chain, it settles again at once (a new
``payments.settled`` naming the new block); not re-included, it goes back to
SCORED with its sequence, and the sweeper sends it again (the contract pays a
sequence once on any chain). The ledger reverses the removed settlement.
"""

from __future__ import annotations

import json

from schemas.base import outcome_event_id
from schemas.chain import (
    DepositConfirmed,
    DepositCredited,
    DepositReversed,
    EventOrphaned,
    ReconciliationAlert,
    SettlementConfirmed,
    SettlementFinal,
    deposit_event_id,
)
from schemas.payments import PaymentReorged, PaymentSettled
from schemas.topics import (
    DEPOSITS_CREDITED,
    PAYMENTS_FINALIZED,
    PAYMENTS_REORGED,
    PAYMENTS_SETTLED,
    RECONCILIATION_ALERTS,
)
from streams.outcomes import Emit, Outcome, ignored, republish
from streams.stages.settled import (
    ReconcileDeps,
    chain_payout,
    finalized_record,
    payment_facts,
    settled_record,
)
from streams.state import NO_BALANCE, Balance, PaymentState, Status, payment_key


def finalized(event: SettlementFinal, deps: ReconcileDeps) -> Outcome:
    """Publish ``payments.finalized`` for the settlement the payment's
    ``payments.settled`` names, once it is final (a replay publishes it again)."""
    if event.payment_id is None or event.payer_account is None:
        return ignored("final, of no payment")
    key = payment_key(event.payer_account, event.payment_id)
    state = deps.payments.get(key)
    if state is not None and state.status == Status.MISMATCH:
        # Final before an operator decided: an ACCEPT publishes it final at once.
        deps.payments[key] = state.model_copy(
            update={"final": f"{event.block_hash}:{event.final_block_number}"}
        )
        return ignored("final, held in MISMATCH")
    if state is None or state.status != Status.SETTLED:
        return ignored("final, but not settled here")
    if PAYMENTS_FINALIZED in state.outputs:
        return republish(state.outputs, (PAYMENTS_FINALIZED,), state.payer_account, "replay")
    settled = PaymentSettled.model_validate_json(state.outputs[PAYMENTS_SETTLED])
    if (settled.tx_hash.lower(), settled.block_hash) != (event.tx_hash.lower(), event.block_hash):
        return ignored("final, but another settlement is published")
    record = finalized_record(settled, deps.clock(), event.final_block_number)
    deps.payments[key] = state.with_output(PAYMENTS_FINALIZED, record)
    emit = Emit(PAYMENTS_FINALIZED, state.payer_account, record)
    return Outcome(emits=(emit,), note="finalized")


def _balance(deps: ReconcileDeps, account: str, deposit_id: str) -> tuple[Balance, Balance]:
    """The account's stored balance, and the same remembering the deposit's last
    credit as the ledger booked it when the balance had forgotten it."""
    stored = deps.balances.get(account, NO_BALANCE)
    k = deps.booked.get(deposit_id, 0)
    return stored, stored.recalled(deposit_id, k, deps.deposit_memory)


def credit_deposit(event: DepositConfirmed, deps: ReconcileDeps) -> Outcome:
    """Credit a confirmed deposit once (a replay re-publishes the same credit)."""
    stored, balance = _balance(deps, event.account, event.deposit_id)
    credited, k = balance.credit(event.deposit_id, event.amount, deps.deposit_memory)
    record = DepositCredited(
        event_id=deposit_event_id("credited", event.deposit_id, k),
        deposit_id=event.deposit_id,
        account=event.account,
        amount=event.amount,
        credit=k,
        tx_hash=event.tx_hash,
        block_number=event.block_number,
        block_hash=event.block_hash,
    )
    if credited != stored:
        deps.balances[event.account] = credited
    note = "deposit credited" if credited != balance else "duplicate deposit"
    return Outcome(emits=(Emit(DEPOSITS_CREDITED, event.account, record),), note=note)


def orphaned(event: EventOrphaned, key: str, deps: ReconcileDeps) -> Outcome:
    """A reorg removed an emitted event the new chain does not hold (yet)."""
    if event.deposit_id is not None and event.account is not None:
        return _reverse_deposit(event, event.deposit_id, event.account, deps)
    if event.payment_id is not None and event.payer_account is not None:
        entry = payment_key(event.payer_account, event.payment_id)
        state = deps.payments.get(entry)
        same_tx = state is not None and _settled_tx(state) == event.tx_hash.lower()
        if state is not None and state.status == Status.SETTLED and same_tx:
            return unsettle(entry, state, event.block_number, event.block_hash, None, deps)
        if state is not None and PAYMENTS_REORGED in state.outputs:
            return republish(state.outputs, (PAYMENTS_REORGED,), state.payer_account, "replay")
    return _orphan_alert(event, key)


def reincluded(
    entry: str, state: PaymentState, event: SettlementConfirmed, deps: ReconcileDeps
) -> Outcome | None:
    """A SETTLED payment confirmed again by the same transaction in another
    block: the reorg is told, and the payment settles again in that block. None
    when the block is the one already published (a replay)."""
    published = json.loads(state.outputs.get(PAYMENTS_SETTLED, "{}"))
    if published.get("block_hash") in (None, event.block_hash):
        return None
    if _settled_tx(state) != event.tx_hash.lower():
        return None  # paid by another transaction: the reconciler's MISMATCH rules apply
    removed = (int(published["block_number"]), str(published["block_hash"]))
    return unsettle(entry, state, *removed, event, deps)


def _settled_tx(state: PaymentState) -> str | None:
    """The transaction the payment's published ``payments.settled`` names (the
    one that paid it, not necessarily the last one sent for it)."""
    raw = state.outputs.get(PAYMENTS_SETTLED)
    return None if raw is None else str(json.loads(raw)["tx_hash"]).lower()


def unsettle(
    entry: str,
    state: PaymentState,
    removed_number: int,
    removed_hash: str,
    again: SettlementConfirmed | None,
    deps: ReconcileDeps,
) -> Outcome:
    """Publish ``payments.reorged``; settle again in ``again``'s block, or hold
    the payment again for the sweeper to send."""
    reorgs = state.reorgs + 1
    record = PaymentReorged(
        event_id=outcome_event_id(f"reorged:{reorgs}", state.payment_id),
        **payment_facts(state),
        tx_hash=_settled_tx(state) or "",
        removed_block_number=removed_number,
        removed_block_hash=removed_hash,
        reorgs=reorgs,
        next="RE_INCLUDED" if again else "RE_SENT",
        included_block_number=again.block_number if again else None,
    )
    outputs = {
        t: r for t, r in state.outputs.items() if t not in (PAYMENTS_SETTLED, PAYMENTS_FINALIZED)
    }
    held = state.model_copy(update={"reorgs": reorgs, "outputs": outputs})
    held = held.moved(Status.SCORED).with_output(PAYMENTS_REORGED, record)
    key = str(state.payment_id)
    balance = deps.balances.get(state.payer_account, NO_BALANCE).unsettle(key, state.amount)
    emits = [Emit(PAYMENTS_REORGED, state.payer_account, record)]
    if again is None:
        deps.payments[entry] = held
        deps.balances[state.payer_account] = balance
        if state.batch_id is not None:
            deps.forget_batch(state.batch_id)
        return Outcome(emits=tuple(emits), note="reorged: sent again")
    settled = settled_record(held, chain_payout(again), deps.clock())
    final = held.moved(Status.SUBMITTED).moved(Status.CONFIRMED).moved(Status.SETTLED)
    deps.payments[entry] = final.with_output(PAYMENTS_SETTLED, settled)
    deps.balances[state.payer_account] = balance.capture(key)
    emits.append(Emit(PAYMENTS_SETTLED, state.payer_account, settled))
    return Outcome(emits=tuple(emits), note="reorged: re-included")


def _reverse_deposit(
    event: EventOrphaned, deposit_id: str, account: str, deps: ReconcileDeps
) -> Outcome:
    stored, balance = _balance(deps, account, deposit_id)
    reversed_, k, owed = balance.reverse(deposit_id, event.amount, deps.deposit_memory)
    if k == 0:  # never credited here (or forgotten): nothing to take back
        return _orphan_alert(event, account)
    record = DepositReversed(
        event_id=deposit_event_id("reversed", deposit_id, k),
        deposit_id=deposit_id,
        account=account,
        amount=event.amount,
        credit=k,
        removed_block_number=event.block_number,
        removed_block_hash=event.block_hash,
        owed=owed,
    )
    emits = [Emit(DEPOSITS_CREDITED, account, record)]
    if reversed_ == balance:
        if balance != stored:
            deps.balances[account] = balance  # remembers the deposit's reversal now
        return Outcome(emits=tuple(emits), note="deposit reversed before")
    deps.balances[account] = reversed_
    if owed:
        alert = ReconciliationAlert(
            event_id=deposit_event_id("frozen", deposit_id, k),
            kind="FROZEN",
            detail=(
                f"a reorg removed deposit {deposit_id} of {event.amount}; the account "
                f"{account} had {event.amount - owed} available and owes {reversed_.owed}: "
                "it refuses payments until deposits repay it"
            ),
            tx_hash=event.tx_hash,
            payer_account=account,
        )
        emits.append(Emit(RECONCILIATION_ALERTS, account, alert))
    return Outcome(emits=tuple(emits), note="deposit reversed")


def _orphan_alert(event: EventOrphaned, key: str) -> Outcome:
    alert = ReconciliationAlert(
        event_id=outcome_event_id("orphaned", event.event_id),
        kind="ORPHANED",
        detail=f"reorg removed a confirmed event in {event.tx_hash} (block "
        f"{event.block_number}) that the engine had not booked",
        sequence=event.sequence,
        tx_hash=event.tx_hash,
    )
    return Outcome(emits=(Emit(RECONCILIATION_ALERTS, key, alert),), note="alert:ORPHANED")
