"""In-memory fakes of the ports, for unit tests. Each one passes the same
contract test suite as its real adapter (tests/integration/*/test_*_contract.py)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from schemas.chain import DepositCredited, DepositReversed
from schemas.cursor import Cursor
from schemas.merchants import Merchant
from schemas.onchain import (
    BatchReceipt,
    BlockLink,
    ChainEvent,
    LogRef,
    PaymentRecord,
    SettledEvent,
    SettledPayment,
)
from schemas.records import SinkRecord
from schemas.sequence import COUNTER_MAX, PARTITION_MAX, sequence_of
from services.chain.approvals import ApprovalRefused, SignerUnavailable
from services.chain.packing import pack_batch
from services.chain.reverts import ContractReverted
from services.errors import RecordsRefused, require
from services.ports import Claim, ClaimRequest
from services.signer.policy import SignerPolicy
from services.store.deposits import order, signed_credit
from services.store.ledger import Entry, entries_of

FAKE_FEE_RECIPIENT = "0x" + "fe" * 20


@dataclass
class FakeChain:
    """A chain that mines one block per settled batch and never reorgs by itself."""

    treasury: int = 10**18
    balances: dict[str, int] = field(default_factory=dict)
    settled: set[int] = field(default_factory=set)
    blocks: list[tuple[str, list[ChainEvent]]] = field(default_factory=list)

    fees: int = 0  # paid to the fee recipient
    forks: int = 0
    unmined: int = 0  # operator transactions in the pool (a test sets it)
    paused: bool = False  # the contract's pause (a test sets it)
    # Payees the token will not credit (the zero address, and any a test adds).
    refusing: set[str] = field(default_factory=lambda: {"0x" + "0" * 40})
    # Batches above the threshold need the approval signer, which judges them by
    # its (real) policy; None: the signer does not answer.
    approval_threshold: int = 2**96
    signer: SignerPolicy | None = None
    signer_spent: int = 0

    def _hash(self, number: int) -> str:
        return "0x" + hashlib.sha256(f"block-{number}-{self.forks}".encode()).hexdigest()

    def mine_empty(self, count: int = 1) -> None:
        for _ in range(count):
            self.blocks.append((self._hash(len(self.blocks) + 1), []))

    def reorg(self, depth: int) -> list[ChainEvent]:
        """Replace the last ``depth`` blocks with empty ones; return what they held.
        (Their payments stay marked as paid: tests look at what the listener says.)"""
        self.forks += 1
        dropped = [e for _, events in self.blocks[-depth:] for e in events]
        del self.blocks[-depth:]
        self.mine_empty(depth)
        return dropped

    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        packed = pack_batch(payments)  # same validation as the real client
        tx_hash = "0x" + hashlib.sha256(packed + batch_id.to_bytes(8, "big")).hexdigest()
        if sum(p.amount for p in payments) > self.approval_threshold:
            self._approve(payments)
        self._would_revert(payments)
        paid: list[SettledPayment] = []
        for p in payments:
            if p.sequence in self.settled:
                continue
            self.settled.add(p.sequence)
            self.treasury -= p.amount
            self.balances[p.payee] = self.balances.get(p.payee, 0) + p.amount - p.fee
            self.fees += p.fee
            paid.append(SettledPayment(p.payee, p.amount, p.sequence, p.payer_ref, batch_id, p.fee))
        number = len(self.blocks) + 1
        block_hash = self._hash(number)
        events: list[ChainEvent] = [
            SettledEvent(s, LogRef(number, block_hash, tx_hash, 2 * i + 1))
            for i, s in enumerate(paid)
        ]
        self.blocks.append((block_hash, events))
        return BatchReceipt(
            tx_hash, number, block_hash, 21_000 + 10_000 * len(payments), tuple(paid)
        )

    def _approve(self, payments: Sequence[PaymentRecord]) -> None:
        if self.signer is None:
            raise SignerUnavailable("the approval signer does not answer")
        refusal = self.signer.judge(list(payments), self.signer_spent)
        if refusal is not None:
            raise ApprovalRefused(refusal.code, refusal.reason, refusal.payees)
        self.signer_spent += sum(p.amount for p in payments)

    def _would_revert(self, payments: Sequence[PaymentRecord]) -> None:
        """The contract's reverts: paused, or a transfer the token refuses (a
        payee it will not credit, or more than the treasury holds), in the
        contract's order: each payee's amount - fee, then the batch's fees."""
        if self.paused:
            raise ContractReverted("EnforcedPause", (), b"")
        left, fees = self.treasury, 0
        for p in payments:
            if p.sequence in self.settled:
                continue
            net = p.amount - p.fee
            if p.payee.lower() in self.refusing or net > left:
                raise ContractReverted("TransferFailed", (p.payee.lower(), net), b"")
            left, fees = left - net, fees + p.fee
        if fees > left or (fees and FAKE_FEE_RECIPIENT in self.refusing):
            raise ContractReverted("TransferFailed", (FAKE_FEE_RECIPIENT, fees), b"")

    async def payee_accepts(self, payee: str) -> bool:
        return payee.lower() not in self.refusing and self.treasury > 0

    async def fees_collected(self) -> int:
        return self.fees

    async def is_settled(self, sequence: int) -> bool:
        return sequence in self.settled

    async def treasury_balance(self) -> int:
        return self.treasury

    async def unmined_sends(self) -> int:
        return self.unmined

    async def events(self, from_block: int, to_block: int) -> list[ChainEvent]:
        return [e for n in range(from_block, to_block + 1) for e in self._events_of(n)]

    def _events_of(self, number: int) -> list[ChainEvent]:
        return self.blocks[number - 1][1] if 1 <= number <= len(self.blocks) else []

    async def block_number(self) -> int:
        return len(self.blocks)

    async def block(self, number: int) -> BlockLink | None:
        if not 1 <= number <= len(self.blocks):
            return None
        parent = self.blocks[number - 2][0] if number > 1 else "0x" + "00" * 32
        return BlockLink(self.blocks[number - 1][0], parent)


@dataclass
class MemoryCursorStore:
    saved: Cursor | None = None

    async def load(self) -> Cursor | None:
        return self.saved

    async def save(self, cursor: Cursor) -> None:
        self.saved = cursor


@dataclass
class MemoryLedgerStore:
    """The ledger rules of services/store/ledger.py over lists and dicts."""

    token_symbol: str = "PTUSD"
    processed: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    entries: list[Entry] = field(default_factory=list)
    deposits: dict[str, int] = field(default_factory=dict)

    async def apply(self, consumer: str, records: Sequence[SinkRecord]) -> int:
        # PostgreSQL's rule the contract test checks: text and JSON cannot hold NUL.
        refused = [r.event_id for r in records if "\\u0000" in r.model_dump_json()]
        if refused:
            raise RecordsRefused(f"a NUL character in {refused}")
        new = 0
        for r in records:
            if (consumer, r.event_id) in self.processed:
                continue
            self.processed.add((consumer, r.event_id))
            new += 1
            self.entries += entries_of(r, self.token_symbol)
            if isinstance(r, DepositCredited | DepositReversed):
                self._remember(r.deposit_id, signed_credit(r))
        return new

    def _remember(self, deposit_id: str, credit: int) -> None:
        if order(credit) > order(self.deposits.get(deposit_id, 0)):
            self.deposits[deposit_id] = credit

    async def deposit_credits(self, deposit_ids: Sequence[str]) -> dict[str, int]:
        return {d: self.deposits[d] for d in deposit_ids if d in self.deposits}

    async def balance(self, account: str, as_of: datetime | None = None) -> int:
        return sum(
            e.amount
            for e in self.entries
            if e.account == account and (as_of is None or e.at <= as_of)
        )

    async def ledger_total(self) -> int:
        return sum(e.amount for e in self.entries)


@dataclass
class MemoryClaimStore:
    """The claim rules of services/store/claims.py over dicts: the first claim of a
    payment id wins; a new claim takes the next counter (never reused)."""

    claims: dict[uuid.UUID, Claim] = field(default_factory=dict)
    by_sequence: dict[int, uuid.UUID] = field(default_factory=dict)
    counter: int = 1  # the next counter, as PostgreSQL's settlement_counter starts
    halt_reason: str | None = None  # an open settlement halt (a test resumes by clearing it)

    async def claim(self, requests: Sequence[ClaimRequest]) -> dict[uuid.UUID, Claim]:
        out: dict[uuid.UUID, Claim] = {}
        for r in requests:
            require(0 <= r.partition <= PARTITION_MAX, "partition %s out of range", r.partition)
            if r.payment_id not in self.claims:
                self._new(r)
            out[r.payment_id] = self.claims[r.payment_id]
        return out

    def _new(self, r: ClaimRequest) -> None:
        require(self.counter <= COUNTER_MAX, "the settlement counter is exhausted")
        sequence = sequence_of(r.partition, self.counter)
        self.counter += 1
        require(sequence not in self.by_sequence, "sequence %s claimed twice", sequence)
        self.claims[r.payment_id] = Claim(r.payment_id, r.payer_account, r.request_digest, sequence)
        self.by_sequence[sequence] = r.payment_id

    async def claims_of(self, sequences: Sequence[int]) -> dict[int, Claim]:
        return {s: self.claims[self.by_sequence[s]] for s in sequences if s in self.by_sequence}

    async def next_counter(self) -> int:
        return self.counter

    async def halt(self, reason: str) -> None:
        self.halt_reason = self.halt_reason or reason

    async def halted(self) -> str | None:
        return self.halt_reason


@dataclass
class MemoryMerchants:
    """The merchants port over a dict (what ``paystream merchants create`` registered)."""

    merchants: dict[str, Merchant] = field(default_factory=dict)
    loads: int = 0

    def add(self, merchant: Merchant) -> Merchant:
        self.merchants[merchant.merchant_id] = merchant
        return merchant

    async def load(self) -> dict[str, Merchant]:
        self.loads += 1
        return dict(self.merchants)


@dataclass
class MemoryWindowStore:
    """The ``WindowStore`` of ``streams/windows.py`` in a dict: (key, second) -> bytes."""

    data: dict[tuple[str, int], bytes] = field(default_factory=dict)
    writes: list[tuple[str, int, int]] = field(default_factory=list)  # (key, second, partition)

    def get(self, key: str, second: int) -> bytes | None:
        return self.data.get((key, second))

    def put(self, key: str, second: int, value: bytes, partition: int) -> None:
        self.writes.append((key, second, partition))
        self.data[(key, second)] = value

    def entries(self) -> Iterator[tuple[str, int, bytes]]:
        for (key, second), value in list(self.data.items()):
            yield key, second, value

    def drop_before(self, second: int) -> int:
        stale = [slot for slot in self.data if slot[1] < second]
        for slot in stale:
            del self.data[slot]
        return len(stale)
