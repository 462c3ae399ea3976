"""The chain listener: follows blocks, emits confirmed settlements and deposits
to ``chain.events``, and detects reorgs by block hash.

One instance runs (on the Faust leader). Its cursor (last emitted block, and the
hashes and events of the most recent ones) lives in a ``CursorStore``; losing it
only means re-emitting, which the reconciler recognises. Settlement records go
to the partition encoded in their sequence number (the payer's partition, where
the payment's state lives), with the payment the sequence was claimed for (read
from the claim store); deposits are keyed by their account.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.base import Record
from schemas.chain import (
    ChainEvents,
    DepositConfirmed,
    EventOrphaned,
    KeyedChainEvent,
    ReconciliationAlert,
    SettlementConfirmed,
    SettlementFinal,
)
from schemas.cursor import Cursor, SeenBlock, SeenEvent
from schemas.onchain import ChainEvent, SettledEvent, deposit_id
from schemas.partitioning import partition_for
from schemas.sequence import partition_of
from schemas.topics import CHAIN_EVENTS, RECONCILIATION_ALERTS
from services.ports import ChainClient, Claim, ClaimStore
from services.settings import Settings
from streams.outcomes import Emit

RECENT_BLOCKS = 64  # blocks whose hashes and events are kept for reorg detection


@dataclass
class Poll:
    emits: list[Emit] = field(default_factory=list)
    cursor: Cursor | None = None
    reorged_from: int | None = None
    head: int | None = None  # the chain's head block as this poll read it


def _seen(event: ChainEvent) -> SeenEvent:
    if isinstance(event, SettledEvent):
        return SeenEvent(
            tx_hash=event.at.tx_hash,
            log_index=event.at.log_index,
            amount=event.payment.amount,
            sequence=event.payment.sequence,
        )
    return SeenEvent(
        tx_hash=event.at.tx_hash,
        log_index=event.at.log_index,
        amount=event.amount,
        account=event.account,
        position=event.position,
    )


def identity(event: ChainEvent | SeenEvent) -> tuple[str, int]:
    """What stays the same when a reorg re-includes the event's transaction
    (its block, block hash and log index may change): the transaction, and the
    payment's sequence or the deposit's place in it."""
    if isinstance(event, SeenEvent):
        tx, sequence, position = event.tx_hash, event.sequence, event.position
    elif isinstance(event, SettledEvent):
        tx, sequence, position = event.at.tx_hash, event.payment.sequence, 0
    else:
        tx, sequence, position = event.at.tx_hash, None, event.position
    return (tx.lower(), sequence if sequence is not None else -1 - position)


def chain_record(event: ChainEvent, claims: dict[int, Claim]) -> Emit:
    """The ``chain.events`` record of a confirmed event (a settlement names the
    payment that claimed its sequence, if any)."""
    at = event.at
    where: dict[str, Any] = {
        # The same log always gets the same event id, however often it is emitted.
        "event_id": uuid.uuid5(uuid.NAMESPACE_URL, f"log:{at.tx_hash}:{at.log_index}"),
        "block_number": at.block_number,
        "block_hash": at.block_hash,
        "tx_hash": at.tx_hash,
        "log_index": at.log_index,
    }
    if isinstance(event, SettledEvent):
        p = event.payment
        claim = claims.get(p.sequence)
        record: Record = SettlementConfirmed(
            sequence=p.sequence,
            payer_ref=p.payer_ref,
            payee_address=p.payee,
            amount=p.amount,
            fee=p.fee,
            batch_id=p.batch_id,
            payment_id=claim.payment_id if claim else None,
            payer_account=claim.payer_account if claim else None,
            **where,
        )
        return Emit(CHAIN_EVENTS, f"ref:{p.payer_ref}", record, partition_of(p.sequence))
    where["event_id"] = uuid.uuid5(uuid.NAMESPACE_URL, f"deposit:{event.deposit_id}")
    record = DepositConfirmed(
        account=event.account,
        depositor=event.depositor,
        amount=event.amount,
        deposit_id=event.deposit_id,
        **where,
    )
    return Emit(CHAIN_EVENTS, event.account, record)


def record_or_alert(event: ChainEvent, claims: dict[int, Claim], partitions: int) -> Emit:
    """The event's ``chain.events`` record, or, for an event the engine cannot
    represent (an amount beyond its range, a sequence naming a partition that
    does not exist), an ``UNREPRESENTABLE`` alert: the listener moves on
    instead of failing on that block at every poll."""
    at = event.at
    try:
        emit = chain_record(event, claims)
    except ValidationError as exc:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    else:
        if emit.partition is None or emit.partition < partitions:
            return emit
        problem = f"sequence names partition {emit.partition}, of {partitions}"
    alert = ReconciliationAlert(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"unrepresentable:{at.tx_hash}:{at.log_index}"),
        kind="UNREPRESENTABLE",
        detail=f"block {at.block_number} log {at.log_index}: {problem}"[:1000],
        sequence=event.payment.sequence if isinstance(event, SettledEvent) else None,
        tx_hash=at.tx_hash,
    )
    return Emit(RECONCILIATION_ALERTS, at.tx_hash, alert)


def _orphan(block: SeenBlock, seen: SeenEvent, claims: dict[int, Claim]) -> Emit:
    claim = claims.get(seen.sequence) if seen.sequence is not None else None
    record = EventOrphaned(
        # Once per removal of the event from this block, however often emitted.
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"orphaned:{block.hash}:{seen.log_index}"),
        block_number=block.number,
        block_hash=block.hash,
        tx_hash=seen.tx_hash,
        log_index=seen.log_index,
        sequence=seen.sequence,
        account=seen.account,
        amount=seen.amount,
        deposit_id=deposit_id(seen.tx_hash, seen.position) if seen.sequence is None else None,
        payment_id=claim.payment_id if claim else None,
        payer_account=claim.payer_account if claim else None,
    )
    if seen.sequence is not None:
        return Emit(CHAIN_EVENTS, f"seq:{seen.sequence}", record, partition_of(seen.sequence))
    return Emit(CHAIN_EVENTS, seen.account or "", record)


def _final(
    number: int, block_hash: str, seen: SeenEvent, claims: dict[int, Claim], head: int
) -> Emit:
    sequence = seen.sequence or 0
    claim = claims.get(sequence)
    record = SettlementFinal(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"final:{block_hash}:{seen.log_index}"),
        block_number=number,
        block_hash=block_hash,
        tx_hash=seen.tx_hash,
        log_index=seen.log_index,
        sequence=sequence,
        final_block_number=head,
        payment_id=claim.payment_id if claim else None,
        payer_account=claim.payer_account if claim else None,
    )
    return Emit(CHAIN_EVENTS, f"seq:{sequence}", record, partition_of(sequence))


# Events per chain.events record: about 700 bytes each, so a record stays far
# below Kafka's 1 MiB default message size however many blocks a poll reads.
RECORD_EVENTS_MAX = 256


def per_partition(emits: list[Emit], partitions: int) -> list[Emit]:
    """A poll's ``chain.events`` records as records per partition (the
    partition each event was routed to, or its key's) of at most
    ``RECORD_EVENTS_MAX`` events, in the order found; alerts as they are."""
    out: list[Emit] = []
    grouped: dict[int, list[KeyedChainEvent]] = {}
    for emit in emits:
        value = emit.value
        if emit.topic != CHAIN_EVENTS or not isinstance(
            value, SettlementConfirmed | DepositConfirmed | EventOrphaned | SettlementFinal
        ):
            out.append(emit)
            continue
        partition = emit.partition
        if partition is None:
            partition = partition_for(emit.key, partitions)
        grouped.setdefault(partition, []).append(KeyedChainEvent(key=emit.key, event=value))
    for partition, found in grouped.items():
        for start in range(0, len(found), RECORD_EVENTS_MAX):
            events = found[start : start + RECORD_EVENTS_MAX]
            blocks = f"blocks:{events[0].event.block_number}-{events[-1].event.block_number}"
            out.append(Emit(CHAIN_EVENTS, blocks, ChainEvents(events=tuple(events)), partition))
    return out


class ChainListener:
    def __init__(
        self, chain: ChainClient, claims: ClaimStore, settings: Settings, start_block: int = 0
    ) -> None:
        self.chain = chain
        self.claims = claims  # which payment each paid sequence belongs to
        self.settings = settings
        self.start_block = start_block

    async def poll(self, cursor: Cursor | None) -> Poll:
        """What to emit next, and the cursor to save once it is emitted."""
        cursor = cursor or Cursor(last_block=self.start_block - 1)
        result = Poll()
        fork = await self._fork_point(cursor)
        if fork is not None:
            if fork < cursor.final_block:
                result.emits.append(await self._halt(fork, cursor.final_block))
            orphaned = [b for b in cursor.recent if b.number > fork]
            cursor = Cursor(
                last_block=fork,
                recent=[b for b in cursor.recent if b.number <= fork],
                final_block=min(cursor.final_block, fork),
            )
            result.reorged_from = fork + 1
            # Re-included events are not orphans: they are emitted again from
            # the blocks that now hold them (the reconciler tells consumers).
            kept = {identity(e) for e in await self._canonical(fork + 1)}
            removed = [(b, s) for b in orphaned for s in b.events if identity(s) not in kept]
            sequences = [s.sequence for _, s in removed if s.sequence is not None]
            claims = await self.claims.claims_of(sequences) if sequences else {}
            result.emits += [_orphan(b, s, claims) for b, s in removed]
        head = result.head = await self.chain.block_number()
        confirmed = head - self.settings.confirmations_min + 1
        to = min(confirmed, cursor.last_block + self.settings.listener_max_blocks)
        events: list[ChainEvent] = []
        if to > cursor.last_block:
            events = await self.chain.events(cursor.last_block + 1, to)
            advanced = await self._advance(cursor, to, events)
            if advanced is None:  # read again at the next poll
                result.cursor = cursor
                return result
            paid = [e.payment.sequence for e in events if isinstance(e, SettledEvent)]
            claims = await self.claims.claims_of(paid) if paid else {}
            partitions = self.settings.kafka_partitions
            result.emits += [record_or_alert(e, claims, partitions) for e in events]
            cursor = advanced
        final, cursor = await self._finals(cursor, events, head)
        result.emits += final
        result.cursor = cursor
        return result

    async def _finals(
        self, cursor: Cursor, events: list[ChainEvent], head: int
    ) -> tuple[list[Emit], Cursor]:
        """The ``SettlementFinal`` records of the emitted blocks that became
        ``finality_depth`` deep since the last poll, and the cursor past them."""
        upto = min(head - self.settings.finality_depth + 1, cursor.last_block)
        if upto <= cursor.final_block:
            return [], cursor
        found: dict[tuple[int, int], tuple[str, SeenEvent]] = {}  # (block, log) -> hash, event
        for e in events:  # blocks this poll read: maybe older than the remembered ones
            if isinstance(e, SettledEvent) and e.at.block_number <= upto:
                found[(e.at.block_number, e.at.log_index)] = (e.at.block_hash, _seen(e))
        for block in cursor.recent:
            if cursor.final_block < block.number <= upto:
                for seen in block.events:
                    if seen.sequence is not None:
                        found[(block.number, seen.log_index)] = (block.hash, seen)
        partitions = self.settings.kafka_partitions
        settled = {k: v for k, v in found.items() if partition_of(v[1].sequence or 0) < partitions}
        sequences = [seen.sequence for _, seen in settled.values() if seen.sequence is not None]
        claims = await self.claims.claims_of(sequences) if sequences else {}
        emits = [
            _final(number, h, seen, claims, head) for (number, _), (h, seen) in settled.items()
        ]
        return emits, cursor.model_copy(update={"final_block": upto})

    async def _halt(self, fork: int, final_block: int) -> Emit:
        """A reorg replaced blocks already told final: settlement halts for an
        operator (what it removed is undone all the same), and a DEEP_REORG
        alert says so."""
        detail = (
            f"a reorg replaced blocks from {fork + 1}, deeper than finality (blocks up to "
            f"{final_block} were told final, finality_depth {self.settings.finality_depth}); "
            "settlement is halted until `paystream chain resume-settlement`"
        )
        await self.claims.halt(detail)
        alert = ReconciliationAlert(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"deep-reorg:{fork}:{final_block}"),
            kind="DEEP_REORG",
            detail=detail,
        )
        return Emit(RECONCILIATION_ALERTS, f"block:{fork + 1}", alert)

    async def _canonical(self, first: int) -> list[ChainEvent]:
        """The events of the canonical chain's confirmed blocks from ``first``
        on (up to ``listener_max_blocks``): a removed event already back in one
        of them is no orphan. One re-included in a block not yet confirmed is
        an orphan now and confirmed again later."""
        confirmed = await self.chain.block_number() - self.settings.confirmations_min + 1
        last = min(confirmed, first + self.settings.listener_max_blocks - 1)
        return await self.chain.events(first, last) if first <= last else []

    async def _fork_point(self, cursor: Cursor) -> int | None:
        """None if the recent blocks are still canonical; else the last block that is."""
        for block in reversed(cursor.recent):
            now = await self.chain.block(block.number)
            if now is not None and now.hash == block.hash:
                return None if block is cursor.recent[-1] else block.number
        return cursor.recent[0].number - 1 if cursor.recent else None

    async def _advance(self, cursor: Cursor, to: int, events: list[ChainEvent]) -> Cursor | None:
        """The cursor past ``to``, or None when the chain changed while this
        poll read it: a block's hash is not the one its logs carry, or a block
        does not follow the one before it (a reorg between reading the last
        recorded block's hash and these blocks). The next poll then finds the
        fork from the blocks recorded before."""
        first = max(cursor.last_block + 1, to - RECENT_BLOCKS + 1)
        from_logs = {e.at.block_number: e.at.block_hash for e in events}
        last = cursor.recent[-1] if cursor.recent else None
        parent = last.hash if last is not None and last.number == first - 1 else None
        blocks: list[SeenBlock] = []
        for number in range(first, to + 1):
            block = await self.chain.block(number)
            if block is None:
                break
            if from_logs.get(number, block.hash) != block.hash:
                return None
            if parent is not None and block.parent_hash != parent:
                return None
            parent = block.hash
            seen = [_seen(e) for e in events if e.at.block_number == number]
            blocks.append(SeenBlock(number=number, hash=block.hash, events=seen))
        recent = (cursor.recent + blocks)[-RECENT_BLOCKS:]
        return Cursor(last_block=to, recent=recent, final_block=cursor.final_block)
