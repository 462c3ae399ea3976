"""The invariants every fault scenario must leave intact, checked on ``Facts``
read from the real sources (``sources.py``). Each check returns violations, never
raises, so one report shows everything that broke:

(a) every payment id on ``payments.requested`` has exactly one terminal
    outcome on ``payments.settled`` / ``payments.failed``; a record delivered
    again (the same record) is fine, two different ones are not. A settlement
    a reorg undid (``payments.reorged`` with a higher count) is no outcome. An id sent
    with several bodies (other payers, payees or amounts) is one payment: each
    body but the one that kept the id gets a ``PAYMENT_ID_CONFLICT`` rejection,
    which answers that request and is not the payment's outcome;
(b) nobody is paid twice on chain: no sequence and no payment is paid twice,
    every payout has a settled outcome and every settled outcome a payout, and
    per payee the token ``Transfer`` logs out of the settlement contract add
    up to that payee's settled payments;
(c) the ledger sums to zero and agrees with the chain per account: a payer's
    entries are its deposits minus what was paid out for it, a payee's are its
    token balance;
(d) ``paystream reconcile`` reports no mismatch;
(e) every hold ended (the balances table holds nothing at rest);
(f) every settlement is final at rest: a ``payments.finalized`` names the same
    transaction and block as the payment's settled outcome.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from eth_utils.address import is_checksum_address

from schemas.onchain import account_ref
from schemas.topics import (
    CHAIN_EVENTS,
    CHAIN_SUBMITTED,
    PAYMENTS_FAILED,
    PAYMENTS_FINALIZED,
    PAYMENTS_REORGED,
    PAYMENTS_REQUESTED,
    PAYMENTS_SETTLED,
    RECONCILIATION_ALERTS,
)
from services.store.ledger import FEE_ACCOUNT
from tests.faults.sources import Facts, Record, chain_events


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str


@dataclass(frozen=True)
class Request:
    payer: str
    payee: str
    amount: int | None


@dataclass(frozen=True)
class Outcome:
    """A terminal record as a consumer reads it; equal records are one outcome."""

    kind: str  # settled | failed
    payment_id: str
    event_id: str
    sequence: int | None
    tx_hash: str | None
    code: str | None
    payer: str | None
    payee: str | None
    amount: int | None
    fee: int = 0  # of the amount, to the platform's fee recipient
    reorgs: int = 0  # settlements of the payment a reorg undid before this one
    block_hash: str | None = None


def _pid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def requests_of(facts: Facts) -> dict[str, list[Request]]:
    """Payment id -> the requests sent with it (several: the id was reused)."""
    out: dict[str, list[Request]] = defaultdict(list)
    for r in facts.topics.of(PAYMENTS_REQUESTED):
        body = r.value if isinstance(r.value, dict) else {}
        pid = _pid(body.get("payment_id"))
        if pid is not None:
            req = Request(
                str(body.get("payer_account")), str(body.get("payee_address")), body.get("amount")
            )
            if req not in out[pid]:
                out[pid].append(req)
    return dict(out)


def _outcome(r: Record) -> Outcome | None:
    v = r.value if isinstance(r.value, dict) else {}
    pid = _pid(v.get("payment_id"))
    if pid is None:
        return None
    sequence = v.get("sequence")
    return Outcome(
        kind="settled" if r.topic == PAYMENTS_SETTLED else "failed",
        payment_id=pid,
        event_id=str(v.get("event_id")),
        sequence=int(sequence) if sequence is not None else None,
        tx_hash=v.get("tx_hash"),
        code=v.get("code"),
        payer=v.get("payer_account"),
        payee=v.get("payee_address"),
        amount=int(v["amount"]) if v.get("amount") is not None else None,
        fee=int(v.get("fee") or 0),
        reorgs=int(v.get("reorgs") or 0),
        block_hash=v.get("block_hash"),
    )


def reorgs_of(facts: Facts) -> dict[str, int]:
    """Payment id -> how many of its settlements a reorg undid."""
    out: dict[str, int] = {}
    for r in facts.topics.of(PAYMENTS_REORGED):
        v = r.value if isinstance(r.value, dict) else {}
        pid = _pid(v.get("payment_id"))
        if pid is not None:
            out[pid] = max(out.get(pid, 0), int(v.get("reorgs") or 0))
    return out


CONFLICT = "PAYMENT_ID_CONFLICT"


def _answers(facts: Facts, conflicts: bool) -> dict[str, list[Outcome]]:
    out: dict[str, list[Outcome]] = defaultdict(list)
    undone = reorgs_of(facts)
    for r in [*facts.topics.of(PAYMENTS_SETTLED), *facts.topics.of(PAYMENTS_FAILED)]:
        o = _outcome(r)
        if o is None or (o.code == CONFLICT) != conflicts or o in out[o.payment_id]:
            continue
        if o.kind == "settled" and o.reorgs < undone.get(o.payment_id, 0):
            continue  # a reorg removed it
        out[o.payment_id].append(o)
    return dict(out)


def outcomes_of(facts: Facts) -> dict[str, list[Outcome]]:
    """Payment id -> its distinct terminal outcomes, in the order first read."""
    return _answers(facts, conflicts=False)


def conflicts_of(facts: Facts) -> dict[str, list[Outcome]]:
    """Payment id -> the distinct ``PAYMENT_ID_CONFLICT`` rejections of its id."""
    return _answers(facts, conflicts=True)


def sequence_owners(facts: Facts) -> dict[int, set[str]]:
    """Sequence number -> the payment ids the engine said it stands for: its
    claims in PostgreSQL, and the ``chain.submitted`` and ``payments.settled``
    records (several ids, or one id under several sequences, is a violation)."""
    out: dict[int, set[str]] = defaultdict(set)
    for sequence, claimed in facts.claims.items():
        out[sequence].add(claimed)
    for r in [*facts.topics.of(CHAIN_SUBMITTED), *facts.topics.of(PAYMENTS_SETTLED)]:
        v = r.value if isinstance(r.value, dict) else {}
        # chain.submitted: a batch's payments (or, in the earlier shape, one payment)
        for p in v.get("payments") or [v]:
            pid = _pid(p.get("payment_id"))
            if pid is not None and p.get("sequence") is not None:
                out[int(p["sequence"])].add(pid)
    return dict(out)


def trail_of(facts: Facts) -> dict[int, list[str]]:
    """Sequence number -> what the listener and the reconciler said about it:
    its ``chain.events`` records and the alerts (for the report)."""
    out: dict[int, list[str]] = defaultdict(list)
    told = [("chain.events", v) for v in chain_events(facts.topics.of(CHAIN_EVENTS))]
    alerts = facts.topics.of(RECONCILIATION_ALERTS)
    told += [("alert", r.value) for r in alerts if isinstance(r.value, dict)]
    for said, v in told:
        if v.get("sequence") is not None:
            out[int(v["sequence"])].append(f"{said} {v.get('kind')} {v.get('detail') or ''}")
    return dict(out)


def check_outcomes(facts: Facts) -> list[Violation]:
    """(a) one terminal outcome per payment id; a conflict answer per other body."""
    requests, outcomes, conflicts = requests_of(facts), outcomes_of(facts), conflicts_of(facts)
    found: list[Violation] = []
    for pid, sent in requests.items():
        got = outcomes.get(pid, [])
        if not got:
            found.append(Violation("no_outcome", f"{pid} requested as {sent}: no terminal record"))
        elif len(got) > 1:
            found.append(Violation("several_outcomes", f"{pid}: {got}"))
        answered = len(conflicts.get(pid, []))
        if answered != len(sent) - 1:
            found.append(
                Violation(
                    "conflicts_unanswered",
                    f"{pid}: {len(sent)} bodies, {answered} PAYMENT_ID_CONFLICT answers: {sent}",
                )
            )
        for o in got:
            if o.kind == "settled" and Request(str(o.payer), str(o.payee), o.amount) not in sent:
                found.append(Violation("outcome_unlike_request", f"{pid}: {o} for {sent}"))
    found += [
        Violation("outcome_without_request", f"{pid}: {got}")
        for pid, got in outcomes.items()
        if pid not in requests
    ]
    return found


def check_payouts(facts: Facts) -> list[Violation]:
    """(b) nobody paid twice, and the chain agrees with the settled outcomes."""
    outcomes, scored, trail = outcomes_of(facts), sequence_owners(facts), trail_of(facts)
    settled = [o for got in outcomes.values() for o in got if o.kind == "settled"]
    by_sequence = {o.sequence: o for o in settled}
    found: list[Violation] = []
    found += [
        Violation("sequence_of_several_payments", f"{s}: {sorted(owners)}")
        for s, owners in scored.items()
        if len(owners) > 1
    ]
    paid = Counter(e.payment.sequence for e in facts.chain.settled)
    found += [Violation("sequence_paid_twice", f"{s}: {n} times") for s, n in paid.items() if n > 1]
    paid_for: dict[str, set[int]] = defaultdict(set)
    for e in facts.chain.settled:
        p = e.payment
        owners = scored.get(p.sequence, set())
        for pid in owners:
            paid_for[pid].add(p.sequence)
        if p.sequence not in by_sequence:
            fate = {pid: [o.kind for o in outcomes.get(pid, [])] for pid in owners}
            found.append(
                Violation(
                    "paid_without_settled_outcome",
                    f"sequence {p.sequence}: {p.amount} to {p.payee} in {e.at.tx_hash}; "
                    f"scored as {fate or 'nothing'}; seen as {trail.get(p.sequence, [])}",
                )
            )
    on_chain = {
        e.payment.sequence: (e.payment.payee, e.payment.amount, e.payment.fee)
        for e in facts.chain.settled
    }
    for s, o in by_sequence.items():
        paid_as = on_chain.get(s) if s is not None else None
        if paid_as != (o.payee, o.amount, o.fee):
            found.append(Violation("settled_but_not_paid", f"{o}; the chain paid {paid_as}"))
    found += [
        Violation("payment_paid_twice", f"{pid}: paid under sequences {sorted(seqs)}")
        for pid, seqs in paid_for.items()
        if len(seqs) > 1
    ]
    return found + _payee_totals(facts, outcomes)


def _payee_totals(facts: Facts, outcomes: dict[str, list[Outcome]]) -> list[Violation]:
    """Per payee: token Transfers out of the contract = settled payments (one per
    id) less their fees; to the fee recipient: those fees."""
    received: Counter[str] = Counter()
    for t in facts.chain.transfers:
        received[t.payee.lower()] += t.amount
    owed: Counter[str] = Counter()
    for got in outcomes.values():
        first = next((o for o in got if o.kind == "settled"), None)
        if first is not None and first.payee is not None and first.amount is not None:
            owed[first.payee.lower()] += first.amount - first.fee
            owed[facts.chain.fee_recipient] += first.fee
    return [
        Violation(
            "payee_paid_other_than_settled",
            f"{payee}: received {received[payee]} on chain, settled payments sum {owed[payee]}",
        )
        for payee in sorted(set(received) | set(owed))
        if received[payee] != owed[payee]
    ]


def check_ledger(facts: Facts) -> list[Violation]:
    """(c) the ledger balances, and agrees with the chain per payer and payee."""
    ledger = facts.ledger
    found: list[Violation] = []
    if sum(ledger.values()) != 0:
        found.append(Violation("ledger_unbalanced", f"entries sum to {sum(ledger.values())}"))
    deposited: Counter[str] = Counter()
    for d in facts.chain.deposits:
        deposited[d.account] += d.amount
    paid_out: Counter[int] = Counter()
    for e in facts.chain.settled:
        paid_out[e.payment.payer_ref] += e.payment.amount
    requests = requests_of(facts)
    payers = set(deposited) | {r.payer for sent in requests.values() for r in sent}
    for payer in sorted(payers):
        chain = deposited[payer] - paid_out[account_ref(payer)]
        if ledger.get(payer, 0) != chain:
            found.append(
                Violation(
                    "payer_ledger_vs_chain",
                    f"{payer}: ledger {ledger.get(payer, 0)}, chain {chain} (deposited "
                    f"{deposited[payer]}, paid out {paid_out[account_ref(payer)]})",
                )
            )
    fees = ledger.get(FEE_ACCOUNT, 0)
    if facts.chain.fees_held != fees:
        found.append(
            Violation(
                "fees_ledger_vs_chain",
                f"the fee recipient holds {facts.chain.fees_held}, the ledger's fees {fees}",
            )
        )
    for payee, balance in sorted(facts.chain.balances.items()):
        if is_checksum_address(payee) and ledger.get(payee, 0) != balance:
            found.append(
                Violation(
                    "payee_ledger_vs_chain",
                    f"{payee}: ledger {ledger.get(payee, 0)}, token balance {balance}",
                )
            )
    return found


def check_reconcile(facts: Facts) -> list[Violation]:
    """(d) ``paystream reconcile`` ran and found nothing."""
    run = facts.reconcile
    if run.report is None or run.returncode not in (0, 1):
        return [Violation("reconcile_failed", f"exit {run.returncode}: {run.output}")]
    mismatches = run.report.get("mismatches") or []
    found = [Violation("reconcile_mismatch", str(m)) for m in mismatches]
    if run.returncode == 1 and not found:
        found.append(Violation("reconcile_failed", f"exit 1 without mismatches: {run.output}"))
    return found


def check_holds(facts: Facts) -> list[Violation]:
    """(e) every hold ended: at rest, with every payment's outcome in, the
    balances table holds nothing (a REVIEW, SCORED or SUBMITTED payment left
    behind keeps its payer's money held)."""
    counts = (facts.reconcile.report or {}).get("counts") or {}
    holds = counts.get("holds in the balances table")
    if holds is None or holds == 0:
        return []
    held = counts.get("held in the balances table")
    return [Violation("holds_left", f"{holds} holds of {held} in total")]


def check_finality(facts: Facts) -> list[Violation]:
    """(f) every settled outcome was told final, for its own transaction and block."""
    finals: dict[tuple[str, int], tuple[str | None, str | None]] = {}
    for r in facts.topics.of(PAYMENTS_FINALIZED):
        v = r.value if isinstance(r.value, dict) else {}
        pid = _pid(v.get("payment_id"))
        if pid is not None:
            finals[(pid, int(v.get("reorgs") or 0))] = (v.get("tx_hash"), v.get("block_hash"))
    return [
        Violation("settled_not_final", f"{o}; finalized as {finals.get((pid, o.reorgs))}")
        for pid, got in outcomes_of(facts).items()
        for o in got
        if o.kind == "settled" and finals.get((pid, o.reorgs)) != (o.tx_hash, o.block_hash)
    ]


def check(facts: Facts) -> list[Violation]:
    """Every invariant, in the order (a) to (f)."""
    return [
        *check_outcomes(facts),
        *check_payouts(facts),
        *check_ledger(facts),
        *check_reconcile(facts),
        *check_holds(facts),
        *check_finality(facts),
    ]


def describe(violations: list[Violation], per_kind: int = 5) -> str:
    """A readable report: counts per kind, then the first few of each."""
    if not violations:
        return "no violations"
    kinds = Counter(v.kind for v in violations)
    lines = [f"{len(violations)} violations: " + ", ".join(f"{k} x{n}" for k, n in kinds.items())]
    for kind in kinds:
        shown = [v for v in violations if v.kind == kind][:per_kind]
        lines += [f"  {kind}: {v.detail}" for v in shown]
        if kinds[kind] > per_kind:
            lines.append(f"  {kind}: ... {kinds[kind] - per_kind} more")
    return "\n".join(lines)
