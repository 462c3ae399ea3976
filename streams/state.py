"""The state the stages keep per payment and per account (Faust tables hold it;
these are the values). Transitions are checked: an illegal one is an invariant
violation that stops the worker."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.errors import require

NonNegative = Annotated[int, Field(ge=0)]


class Status(StrEnum):
    REQUESTED = "REQUESTED"
    REVIEW = "REVIEW"  # held, waiting for a human decision (review API: later)
    SCORED = "SCORED"  # approved and held; gets a sequence number when batched
    SUBMITTED = "SUBMITTED"  # in a batch transaction sent to the chain
    # Paid on chain otherwise than requested (payee, amount or fee): held until
    # an operator accepts or rejects the chain's payout (``paystream mismatches``).
    MISMATCH = "MISMATCH"
    CONFIRMED = "CONFIRMED"
    SETTLED = "SETTLED"
    REJECTED = "REJECTED"  # failed before any hold
    FAILED = "FAILED"  # failed after the hold; the hold is released


LEGAL: dict[Status, frozenset[Status]] = {
    Status.REQUESTED: frozenset({Status.SCORED, Status.REVIEW, Status.REJECTED}),
    Status.REVIEW: frozenset({Status.SCORED, Status.FAILED}),
    Status.SCORED: frozenset({Status.SUBMITTED, Status.MISMATCH, Status.FAILED}),
    Status.SUBMITTED: frozenset({Status.CONFIRMED, Status.MISMATCH, Status.FAILED}),
    Status.MISMATCH: frozenset({Status.CONFIRMED, Status.FAILED}),
    Status.CONFIRMED: frozenset({Status.SETTLED}),
    # A reorg removed its settlement's transaction: held again, sent again.
    Status.SETTLED: frozenset({Status.SCORED}),
    Status.REJECTED: frozenset(),
    Status.FAILED: frozenset(),
}
TERMINAL = frozenset({Status.SETTLED, Status.REJECTED, Status.FAILED})


def payment_key(payer_account: str, payment_id: uuid.UUID | str) -> str:
    """A payment's key in the ``payments`` table: its payer and its id (account
    ids have no colon). Two payers that send one id have two entries; which of
    them keeps the id is decided by its claim (``submit.py``)."""
    return f"{payer_account}:{payment_id}"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PaymentState(_Value):
    payment_id: uuid.UUID
    payer_account: str
    payee_address: str
    amount: NonNegative
    currency: str
    merchant_id: str | None = None
    fee: NonNegative = 0  # of the amount, to the platform; fixed when the payment is scored
    status: Status
    requested_at: AwareDatetime
    # Where the payment's state lives: its payer's partition (set when batched;
    # its chain.submitted and chain.events records are routed there).
    partition: NonNegative | None = None
    # A digest of the request's fields: the same id with another body is a conflict.
    request_digest: str | None = None
    sequence: NonNegative | None = None
    batch_id: NonNegative | None = None
    batched_at: AwareDatetime | None = None
    tx_hash: str | None = None
    # Soft settlements a reorg undid: each later payments.settled has another
    # event id (it names its transaction and this count).
    reorgs: NonNegative = 0
    # "<block hash>:<head>": the chain's payout a MISMATCH holds became final
    # (finality_depth deep at that head) before an operator decided.
    final: str | None = None
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
            "illegal transition %s -> %s for %s",
            self.status,
            status,
            self.payment_id,
        )
        return self.model_copy(update={"status": status, **changes})


class RetiredPayment(_Value):
    """What is kept of a terminal payment once its state left the ``payments``
    table (``streams/retention.py``): enough to know its id was used."""

    request_digest: str | None
    requested_at: AwareDatetime


RECENT_DEPOSITS = 256  # per account; the ledger remembers every one (streams/deposits.py)
RECENT_FINISHED = 1024  # payment ids whose hold was captured or released
HELD_STATUSES = frozenset(
    {Status.REVIEW, Status.SCORED, Status.SUBMITTED, Status.MISMATCH, Status.CONFIRMED}
)


class Balance(_Value):
    """Per payer, in minor units: available to spend, the holds of payments in
    flight (by payment id), and what was settled (paid out) in total.

    Holds are keyed by payment id and recent deposits are remembered by their
    reorg-stable id, so every effect is idempotent and recorded in the same
    table write as the money it moves: a replay after a crash can neither
    double-count nor lose it. A reversed deposit the available balance could
    not cover is ``owed``: the account is frozen until deposits repay it.
    """

    available: NonNegative = 0
    holds: dict[str, NonNegative] = {}
    settled: NonNegative = 0
    # deposit id -> k: its k-th credit stands (k > 0), or was reversed (-k).
    deposits: dict[str, int] = {}
    owed: NonNegative = 0
    finished: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _without_log_position_keys(cls, value: Any) -> Any:
        """Values written before deposits had a reorg-stable id remembered them
        by log position (``recent_deposits``): not comparable, dropped."""
        if isinstance(value, dict) and "recent_deposits" in value:
            return {k: v for k, v in value.items() if k != "recent_deposits"}
        return value

    @property
    def held(self) -> int:
        return sum(self.holds.values())

    @property
    def on_ledger(self) -> int:
        """What the ledger's account for this payer holds: available plus held,
        less what it owes (settled money has left it)."""
        return self.available + self.held - self.owed

    @property
    def frozen(self) -> bool:
        return self.owed > 0

    def summary(self) -> dict[str, int]:
        return {"available": self.available, "held": self.held, "settled": self.settled}

    def hold(self, payment_id: str, amount: int) -> Balance:
        if payment_id in self.holds or payment_id in self.finished:
            return self
        require(0 < amount <= self.available, "cannot hold %s of %s", amount, self.available)
        return self.model_copy(
            update={
                "available": self.available - amount,
                "holds": {**self.holds, payment_id: amount},
            }
        )

    def capture(self, payment_id: str) -> Balance:
        """Settle a held payment (a no-op if it is not held: already captured)."""
        return self._end_hold(payment_id, paid_out=True)

    def release(self, payment_id: str) -> Balance:
        """Give a held amount back (a no-op if it is not held: already released)."""
        return self._end_hold(payment_id, paid_out=False)

    def _end_hold(self, payment_id: str, paid_out: bool) -> Balance:
        if payment_id not in self.holds:
            return self
        holds = dict(self.holds)
        amount = holds.pop(payment_id)
        moved = (
            {"settled": self.settled + amount}
            if paid_out
            else {"available": self.available + amount}
        )
        finished = (*self.finished, payment_id)[-RECENT_FINISHED:]
        return self.model_copy(update={"holds": holds, "finished": finished, **moved})

    def unsettle(self, payment_id: str, amount: int) -> Balance:
        """Hold a settled payment again: a reorg removed its settlement."""
        if payment_id in self.holds or payment_id not in self.finished:
            return self
        require(amount <= self.settled, "cannot unsettle %s of %s", amount, self.settled)
        return self.model_copy(
            update={
                "settled": self.settled - amount,
                "holds": {**self.holds, payment_id: amount},
                "finished": tuple(f for f in self.finished if f != payment_id),
            }
        )

    def credit(
        self, deposit_id: str, amount: int, keep: int = RECENT_DEPOSITS
    ) -> tuple[Balance, int]:
        """Credit a deposit once (what is owed first); also the credit number
        (the same on a replay, the next after a reversal). The account's last
        ``keep`` deposits are remembered."""
        require(amount > 0, "cannot credit %s", amount)
        k = self.deposits.get(deposit_id, 0)
        if k > 0:
            return self, k
        repaid = min(self.owed, amount)
        update = {
            "available": self.available + amount - repaid,
            "owed": self.owed - repaid,
            "deposits": _remembered(self.deposits, deposit_id, 1 - k, keep),
        }
        return self.model_copy(update=update), 1 - k

    def recalled(self, deposit_id: str, k: int, keep: int = RECENT_DEPOSITS) -> Balance:
        """Remember a deposit's credit number as the ledger booked it (no money
        moves: what it credited or reversed is in the balance already)."""
        if deposit_id in self.deposits or k == 0:
            return self
        return self.model_copy(update={"deposits": _remembered(self.deposits, deposit_id, k, keep)})

    def reverse(
        self, deposit_id: str, amount: int, keep: int = RECENT_DEPOSITS
    ) -> tuple[Balance, int, int]:
        """Take a credited deposit back; also the credit number it reverses (0:
        not credited) and what the available balance could not cover (owed)."""
        k = self.deposits.get(deposit_id, 0)
        if k <= 0:
            return self, -k, 0
        taken = min(self.available, amount)
        update = {
            "available": self.available - taken,
            "owed": self.owed + amount - taken,
            "deposits": _remembered(self.deposits, deposit_id, -k, keep),
        }
        return self.model_copy(update=update), k, amount - taken

    def aligned(self, state: PaymentState) -> Balance:
        """The balance as the payment's status says it must be (repairs a crash
        that saved the payment's new status but not the balance, or the reverse)."""
        key = str(state.payment_id)
        if state.status in HELD_STATUSES:
            return self.hold(key, state.amount)
        if state.status == Status.SETTLED:
            return self.capture(key)
        if state.status == Status.FAILED:
            return self.release(key)
        return self


NO_BALANCE = Balance()  # an account with nothing yet (frozen: shared, never built per read)


def _remembered(deposits: dict[str, int], deposit_id: str, k: int, keep: int) -> dict[str, int]:
    """The deposits with this one's state, most recent last, at most ``keep``."""
    kept = {d: n for d, n in deposits.items() if d != deposit_id}
    kept[deposit_id] = k
    return dict(list(kept.items())[-keep:])


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
