"""The state the stages keep per payment and per account (Faust tables hold it;
these are the values). Transitions are checked: an illegal one is an invariant
violation that stops the worker."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.errors import require

NonNegative = Annotated[int, Field(ge=0)]


class Status(StrEnum):
    REQUESTED = "REQUESTED"
    REVIEW = "REVIEW"  # held, waiting for a human decision (review API: later)
    SCORED = "SCORED"  # approved and held; gets a sequence number when batched
    SUBMITTED = "SUBMITTED"  # in a batch transaction sent to the chain
    CONFIRMED = "CONFIRMED"
    SETTLED = "SETTLED"
    REJECTED = "REJECTED"  # failed before any hold
    FAILED = "FAILED"  # failed after the hold; the hold is released


LEGAL: dict[Status, frozenset[Status]] = {
    Status.REQUESTED: frozenset({Status.SCORED, Status.REVIEW, Status.REJECTED}),
    Status.REVIEW: frozenset({Status.SCORED, Status.FAILED}),
    Status.SCORED: frozenset({Status.SUBMITTED, Status.FAILED}),
    Status.SUBMITTED: frozenset({Status.CONFIRMED, Status.FAILED}),
    Status.CONFIRMED: frozenset({Status.SETTLED}),
    Status.SETTLED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.FAILED: frozenset(),
}
TERMINAL = frozenset({Status.SETTLED, Status.REJECTED, Status.FAILED})


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PaymentState(_Value):
    payment_id: uuid.UUID
    payer_account: str
    payee_address: str
    amount: NonNegative
    currency: str
    merchant_id: str | None = None
    status: Status
    requested_at: AwareDatetime
    sequence: NonNegative | None = None
    batch_id: NonNegative | None = None
    batched_at: AwareDatetime | None = None
    tx_hash: str | None = None
    # The records published for this payment, by topic (exact JSON): a replayed
    # input re-publishes them unchanged (same event_id), so a crash between the
    # state write and the publish cannot lose an outcome; consumers dedupe by event_id.
    outputs: dict[str, str] = {}

    def with_output(self, topic: str, record: BaseModel) -> PaymentState:
        return self.model_copy(
            update={"outputs": {**self.outputs, topic: record.model_dump_json()}}
        )

    def moved(self, status: Status, **changes: object) -> PaymentState:
        require(
            status in LEGAL[self.status],
            f"illegal transition {self.status} -> {status} for {self.payment_id}",
        )
        return self.model_copy(update={"status": status, **changes})


class Balance(_Value):
    """Per payer, in minor units: available to spend, held for payments in flight,
    and settled (paid out) in total."""

    available: NonNegative = 0
    held: NonNegative = 0
    settled: NonNegative = 0

    def hold(self, amount: int) -> Balance:
        require(0 < amount <= self.available, f"cannot hold {amount} of {self.available}")
        return Balance(
            available=self.available - amount, held=self.held + amount, settled=self.settled
        )

    def capture(self, amount: int) -> Balance:
        require(0 < amount <= self.held, f"cannot capture {amount} of held {self.held}")
        return Balance(
            available=self.available, held=self.held - amount, settled=self.settled + amount
        )

    def release(self, amount: int) -> Balance:
        require(0 < amount <= self.held, f"cannot release {amount} of held {self.held}")
        return Balance(
            available=self.available + amount, held=self.held - amount, settled=self.settled
        )

    def credit(self, amount: int) -> Balance:
        require(amount > 0, f"cannot credit {amount}")
        return Balance(available=self.available + amount, held=self.held, settled=self.settled)


VELOCITY_MAX_ENTRIES = 1024


class VelocityWindow(_Value):
    """A payer's recent requests, (epoch ms, amount), oldest first: a sliding window."""

    entries: tuple[tuple[int, int], ...] = ()

    def recent(self, now_ms: int, window_ms: int) -> tuple[int, int]:
        """(count, amount) of the requests within the window before ``now_ms``."""
        kept = [amount for at, amount in self.entries if at > now_ms - window_ms]
        return len(kept), sum(kept)

    def add(self, now_ms: int, window_ms: int, amount: int) -> VelocityWindow:
        kept = [e for e in self.entries if e[0] > now_ms - window_ms]
        kept.append((now_ms, amount))
        return VelocityWindow(entries=tuple(kept[-VELOCITY_MAX_ENTRIES:]))
