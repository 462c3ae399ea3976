"""The ports: small interfaces the stream stages call, one adapter each.

Adapters are built only in ``services/bootstrap.py``; unit tests use in-memory
fakes (``tests/support/fakes.py``), and one contract test suite per port runs
against the fake and the real adapter so that they cannot drift apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from pydantic import BaseModel

from schemas.cursor import Cursor
from schemas.merchants import Merchant
from schemas.onchain import BatchReceipt, BlockLink, ChainEvent, PaymentRecord
from schemas.records import SinkRecord


class ChainClient(Protocol):
    """Settlement on the chain and what the chain says happened."""

    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        """Pay the payments of a batch not paid before; return what was paid."""

    async def is_settled(self, sequence: int) -> bool:
        """Whether the payment with this sequence number has been paid."""

    async def treasury_balance(self) -> int:
        """What the settlement contract holds of the token, to pay batches from."""

    async def payee_accepts(self, payee: str) -> bool:
        """Whether the token would move one unit from the treasury to ``payee``
        (a call, nothing is sent): False for a payee the token refuses."""

    async def fees_collected(self) -> int:
        """What the contract's fee recipient holds of the token: every fee paid."""

    async def unmined_sends(self) -> int:
        """How many transactions the operator sent that are not mined yet (its
        pending nonce minus its confirmed one): while any is, a payment it may
        carry cannot be proven unpaid."""

    async def events(self, from_block: int, to_block: int) -> list[ChainEvent]:
        """Settlements and deposits in a block range, in chain order."""

    async def block_number(self) -> int:
        """The newest block's number."""

    async def block(self, number: int) -> BlockLink | None:
        """A block's hash and its parent's on the current chain (reorg
        detection); None if absent."""


M = TypeVar("M", bound=BaseModel)


class Cache(Protocol):
    """A read-through cache that never fails a read: when it is down, ``load`` answers."""

    async def get(
        self, kind: str, key: str, model: type[M], load: Callable[[], Awaitable[M | None]]
    ) -> M | None:
        """The cached value of ``kind``/``key``, else ``load()``'s, cached for next time."""


class CursorStore(Protocol):
    """Where the chain listener keeps its cursor."""

    async def load(self) -> Cursor | None:
        """The saved cursor, or None on first start."""

    async def save(self, cursor: Cursor) -> None:
        """Replace the saved cursor."""


class Merchants(Protocol):
    """The registered merchants that can be paid (they have a payout address)."""

    async def load(self) -> dict[str, Merchant]:
        """Every such merchant, by id."""


class LedgerStore(Protocol):
    """The system of record: outcomes, fraud checks, the double-entry ledger."""

    async def apply(self, consumer: str, records: Sequence[SinkRecord]) -> int:
        """Write the effects of the records not yet processed by ``consumer``, with
        their idempotency records, atomically; return how many were new."""

    async def balance(self, account: str, as_of: datetime | None = None) -> int:
        """An account's ledger balance (minor units), now or as of a time."""

    async def ledger_total(self) -> int:
        """The sum of all ledger entries (zero when the books balance)."""

    async def deposit_credits(self, deposit_ids: Sequence[str]) -> dict[str, int]:
        """The last credit booked for each of these deposits: k for its k-th
        credit, -k for that credit's reversal (absent: never booked)."""


@dataclass(frozen=True)
class WorkerPorts:
    """What a stream worker is handed once it starts (the chain client needs the
    deployment, so it is built then): built by ``services/bootstrap.py``."""

    chain: ChainClient
    cursors: CursorStore  # the chain listener's, one per deployment
    claims: ClaimStore  # payments' on-chain identities (PostgreSQL)
    merchants: Merchants  # who may be paid for a merchant, and at which fee
    ledger: LedgerStore  # read for deposits the worker no longer remembers


@dataclass(frozen=True)
class ClaimRequest:
    """A payment about to be sent to the chain, asking for its sequence number."""

    payment_id: uuid.UUID
    payer_account: str
    request_digest: str
    partition: int  # its payer's partition: the sequence carries it


@dataclass(frozen=True)
class Claim:
    """A payment's one on-chain identity: the first claim of its id, kept forever."""

    payment_id: uuid.UUID
    payer_account: str
    request_digest: str
    sequence: int

    def belongs_to(self, request: ClaimRequest) -> bool:
        """Whether this claim is the request's own (same payer and digest), not
        another payer's (or another body's) that took the payment id first."""
        return (
            self.payment_id == request.payment_id
            and self.payer_account == request.payer_account
            and self.request_digest == request.request_digest
        )


class ClaimStore(Protocol):
    """Where payments claim their sequence numbers, just before they are sent."""

    async def claim(self, requests: Sequence[ClaimRequest]) -> dict[uuid.UUID, Claim]:
        """Each request's claim: new ones are created (sequence from its partition and
        the next counter), existing ones returned unchanged (possibly another payer's:
        a conflict the caller handles). Idempotent."""

    async def claims_of(self, sequences: Sequence[int]) -> dict[int, Claim]:
        """The claim of each sequence (absent: never claimed)."""

    async def next_counter(self) -> int:
        """The counter the next claim will use (without consuming it): for the
        start-up check that the next sequences are unused on chain."""

    async def halt(self, reason: str) -> None:
        """Halt all settlement until an operator resumes it (the first open
        halt's reason is kept)."""

    async def halted(self) -> str | None:
        """The open halt's reason; None: settlement may go on."""
