"""Settlement batching (consumes ``fraud.scored``): put each approved payment in
a batch; decide which batches go to the chain now. Pure:
no asyncio and no chain here (``submit.py`` sends).

Batches are per partition (their members' sequence numbers, claimed together
when sent, are then consecutive: cheap for the contract's bitmap). The batch a
payment belongs to is written to the ``payments`` table when the payment joins
it, before anything is sent: a worker that dies re-sends the same batch
(``pending_batches``) under the same claimed sequence numbers, and the contract
never pays a sequence number twice.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from schemas.payments import PaymentScored
from schemas.sequence import partition_of, sequence_of
from services.settings import Settings
from streams.outcomes import Outcome, dead, ignored
from streams.state import PaymentState, Status, payment_key


@dataclass
class OpenBatch:
    batch_id: int
    opened_at: datetime
    members: list[PaymentState] = field(default_factory=list)


@dataclass
class Batches:
    """The batching state: the batch each partition is filling, and the full ones
    not yet taken by the scheduler. In memory: after a restart the sweeper finds
    unsent batches in the ``payments`` table (``pending_batches``)."""

    open: dict[int, OpenBatch] = field(default_factory=dict)  # partition -> batch
    closed: list[OpenBatch] = field(default_factory=list)  # full, not yet taken


@dataclass
class SettlementDeps:
    settings: Settings
    payments: MutableMapping[str, PaymentState]
    clock: Callable[[], datetime]
    batches: Batches = field(default_factory=Batches)  # filled here, taken by the scheduler


def handle_scored(raw: bytes, partition: int, offset: int, deps: SettlementDeps) -> Outcome:
    """Join an approved payment to its partition's open batch.

    The batch is recorded in the payment's state (with the partition the state
    lives in) before anything is sent. Its on-chain identity is not chosen
    here: it is claimed just before sending (``submit.py``).
    """
    try:
        scored = PaymentScored.model_validate_json(raw)
    except ValidationError as exc:
        return dead(f"invalid fraud.scored record: {exc.error_count()} errors: {exc}"[:1000])
    key = payment_key(scored.request.payer_account, scored.request.payment_id)
    state = deps.payments.get(key)
    if state is not None and state.batch_id is not None:
        return ignored("already batched")
    if state is None or state.status != Status.SCORED:
        return ignored("not awaiting a batch")
    now = deps.clock()
    batches = deps.batches
    batch = batches.open.get(partition)
    if batch is None or len(batch.members) >= deps.settings.batch_max_payments:
        if batch is not None:
            batches.closed.append(batch)
        # A label for the batch, unique per partition: where its first record is.
        batch = OpenBatch(batch_id=sequence_of(partition, offset), opened_at=now)
        batches.open[partition] = batch
    state = state.model_copy(
        update={"partition": partition, "batch_id": batch.batch_id, "batched_at": now}
    )
    deps.payments[key] = state
    batch.members.append(state)
    return ignored("batched")


def member_partition(member: PaymentState) -> int | None:
    """A member's ``fraud.scored`` partition (from its sequence-shaped batch id
    when the state, batched before it kept its partition, does not say)."""
    if member.partition is not None:
        return member.partition
    return None if member.batch_id is None else partition_of(member.batch_id)


def _due(batch: OpenBatch, settings: Settings, now: datetime, block_near: bool | None) -> bool:
    if block_near or len(batch.members) >= settings.batch_max_payments:
        return True
    waited = now - batch.opened_at
    if block_near is None:
        return waited >= timedelta(milliseconds=settings.batch_wait_ms)
    return waited >= timedelta(seconds=settings.block_time_s)


def take_due_batches(
    deps: SettlementDeps, sending: int, block_near: bool | None = None
) -> list[OpenBatch]:
    """The transactions to send now: each full batch on its own and, if fewer
    than ``settle_inflight_max`` transactions are on their way to the chain
    (``sending``, counted by the scheduler), the due batches merged into as
    few transactions as fit (``batch_max_payments`` each; a partition's batch
    is never split, so its sequence numbers stay together for the contract's
    bitmap).

    Which batches are due depends on ``block_near`` (``blocks.BlockClock``):
    None (no block timing known) every batch that waited ``batch_wait_ms``;
    True (the next block is near) every batch with a member; False those that
    waited a whole block interval (a busy worker's flusher can tick past the
    moment before a block: a batch misses at most one).

    While the chain is busy, due batches keep filling: load makes transactions
    fuller, not more numerous.
    """
    batches = deps.batches
    full, batches.closed = batches.closed, []
    if sending >= deps.settings.settle_inflight_max:
        return full
    now = deps.clock()
    due = [
        p for p, b in batches.open.items() if b.members and _due(b, deps.settings, now, block_near)
    ]
    merged = merge_batches([batches.open.pop(p) for p in due], deps.settings.batch_max_payments)
    return full + merged


def merge_batches(batches: list[OpenBatch], max_payments: int) -> list[OpenBatch]:
    """Pack whole batches into transactions of at most ``max_payments``; each
    transaction takes the id of its first batch (its members keep their own)."""
    out: list[OpenBatch] = []
    for batch in batches:
        last = out[-1] if out else None
        if last is not None and len(last.members) + len(batch.members) <= max_payments:
            last.members.extend(batch.members)
            last.opened_at = min(last.opened_at, batch.opened_at)
        else:
            out.append(OpenBatch(batch.batch_id, batch.opened_at, list(batch.members)))
    return out


def member_batches(batch: OpenBatch) -> set[int]:
    """The batch ids recorded in the members' states (several after a merge)."""
    return {m.batch_id for m in batch.members if m.batch_id is not None} | {batch.batch_id}


def pending_batches(
    payments: Iterable[PaymentState],
    older_than: datetime,
    handled: Container[int],
    status: Status = Status.SCORED,
) -> list[OpenBatch]:
    """Batches recorded in the table but never submitted (e.g. the worker died),
    or (``status`` SUBMITTED) submitted and never confirmed."""
    groups: dict[int, OpenBatch] = {}
    for state in payments:
        if state.status != status or state.batch_id is None or state.batched_at is None:
            continue
        if state.batched_at > older_than or state.batch_id in handled:
            continue
        batch = groups.setdefault(state.batch_id, OpenBatch(state.batch_id, state.batched_at))
        batch.members.append(state)
    return list(groups.values())
