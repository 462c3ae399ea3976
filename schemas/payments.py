"""The records of the payment topics. Topics carry bytes; agents validate them
here with ``Model.model_validate_json`` at the boundary."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from schemas.base import AccountId, Address, Frozen, Record
from schemas.codes import FailureCode
from schemas.money import MinorUnits

MetadataValue = Annotated[str, Field(max_length=256)] | int | bool
Metadata = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=40)], MetadataValue], Field(max_length=16)
]
Decision = Literal["APPROVE", "REVIEW", "BLOCK"]


class PaymentRequested(Frozen):
    """``payments.requested``, written by upstream producers (key: payer_account)."""

    schema_version: Literal[1] = 1
    payment_id: uuid.UUID
    payer_account: AccountId
    payee_address: Address
    amount: Annotated[MinorUnits, Field(ge=1)]
    currency: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,12}$")]
    merchant_id: AccountId | None = None
    metadata: Metadata | None = None
    requested_at: AwareDatetime

    def digest(self) -> str:
        """What makes this request this payment: payer, payee, amount, currency
        and merchant (not the time or metadata, which a producer's retry may
        change). The same id with another digest is a ``PAYMENT_ID_CONFLICT``."""
        fields = (self.payer_account, self.payee_address, self.amount, self.currency)
        text = "\x1f".join(map(str, (*fields, self.merchant_id or "")))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


class FraudCheck(Frozen):
    score: Annotated[int, Field(ge=0, le=1000)]
    decision: Decision
    rules_triggered: tuple[str, ...]
    check_duration_us: Annotated[int, Field(ge=0)]


class Approval(Frozen):
    """Who let a payment held for review through, and why."""

    decided_by: str
    note: str = ""
    decided_at: AwareDatetime


class PaymentScored(Record):
    """``fraud.scored``: an approved request with its hold taken (``approval``:
    the fraud rules said REVIEW and an operator approved it)."""

    request: PaymentRequested
    fraud: FraudCheck
    scored_at: AwareDatetime
    approval: Approval | None = None
    # The platform's fee out of the amount (the merchant's rate when scored);
    # the payee is paid amount - fee.
    fee: Annotated[int, Field(ge=0)] = 0


class SubmittedPayment(Frozen):
    """One payment of a ``chain.submitted`` record."""

    payment_id: uuid.UUID
    payer_account: AccountId
    amount: MinorUnits
    sequence: Annotated[int, Field(ge=0)] | None = None  # the payment's on-chain identity
    requested_at: AwareDatetime


class BatchSubmitted(Record):
    """``chain.submitted``: payments of one batch, all in one partition (their
    payers'), sent to the chain (``SUBMITTED``, with the transaction hash) or
    refused for good (``REJECTED``, with a code: the chain refused them and
    proved them unpaid, or their ids are other requests', ``PAYMENT_ID_CONFLICT``,
    which have no sequence). One record per partition and outcome of a send.

    A record of the earlier shape, one payment per record (its fields at the
    top level), is read as a batch of that one payment."""

    outcome: Literal["SUBMITTED", "REJECTED"]
    batch_id: Annotated[int, Field(ge=0)]
    tx_hash: str | None = None
    code: FailureCode | None = None
    reason: str | None = None
    submitted_at: AwareDatetime
    payments: Annotated[tuple[SubmittedPayment, ...], Field(min_length=1)]

    @model_validator(mode="before")
    @classmethod
    def _one_payment_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and "payments" not in data and "payment_id" in data:
            fields = set(SubmittedPayment.model_fields)
            one = {k: v for k, v in data.items() if k in fields}
            return {k: v for k, v in data.items() if k not in fields} | {"payments": [one]}
        return data


class ChainPayout(Frozen):
    """What the chain paid under a payment's sequence number, when it differs
    from the payment (a MISMATCH): the payee got ``amount - fee``, the fee
    recipient ``fee``."""

    sequence: Annotated[int, Field(ge=0)]
    payee_address: Address
    amount: MinorUnits
    fee: Annotated[int, Field(ge=0)] = 0
    batch_id: Annotated[int, Field(ge=0)]
    tx_hash: str
    block_number: Annotated[int, Field(ge=0)]
    block_hash: str


class Resolution(Frozen):
    """An operator's decision on a MISMATCH (``paystream mismatches accept|reject``).
    ACCEPT: the chain's payout is the payment's settlement; the payer is charged
    the payment's amount. REJECT: it is not; the payment fails
    (``SETTLEMENT_MISMATCH``) and the payer is charged nothing. Either way the
    ledger books what the chain paid, and the difference from what the payer
    was charged goes to the platform's suspense account."""

    verdict: Literal["ACCEPT", "REJECT"]
    decided_by: Annotated[str, Field(min_length=1, max_length=64)]
    note: Annotated[str, Field(max_length=500)] = ""
    decided_at: AwareDatetime
    chain: ChainPayout


class _Payment(Record):
    """A payment's facts, as its settlement, finality and reorg records carry them."""

    payment_id: uuid.UUID
    payer_account: AccountId
    payee_address: Address
    amount: MinorUnits  # what the payer paid
    fee: Annotated[int, Field(ge=0)] = 0  # of it, to the platform; the payee got amount - fee
    currency: str
    merchant_id: AccountId | None = None


class _Settlement(_Payment):
    """Where and when the chain paid a payment."""

    tx_hash: str
    block_number: Annotated[int, Field(ge=0)]
    block_hash: str
    batch_id: Annotated[int, Field(ge=0)]
    sequence: Annotated[int, Field(ge=0)]
    requested_at: AwareDatetime
    settled_at: AwareDatetime


class PaymentSettled(_Settlement):
    """``payments.settled``: confirmed on chain and captured."""

    latency_ms: Annotated[int, Field(ge=0)]
    # Set when the chain paid it differently and an operator accepted that payout.
    resolution: Resolution | None = None
    # Soft settlements of this payment a reorg undid before this one
    # (``payments.reorged``); each settlement has its own event id.
    reorgs: Annotated[int, Field(ge=0)] = 0


class PaymentFinalized(_Settlement):
    """``payments.finalized``: the settlement a ``payments.settled`` record told
    is ``finality_depth`` blocks deep. The payment's final outcome; a reorg can
    no longer undo it without halting settlement (``docs/consumers.md``)."""

    reorgs: Annotated[int, Field(ge=0)] = 0
    finalized_at: AwareDatetime
    final_block_number: Annotated[int, Field(ge=0)]  # the head that made it final


class PaymentReorged(_Payment):
    """``payments.reorged``: a reorg removed the block of a payment's
    ``payments.settled``. ``next`` says what follows: the same transaction is in
    block ``included_block_number`` of the new chain (``RE_INCLUDED``; a new
    ``payments.settled`` names that block), or it is not and the engine holds
    the payment again and sends it again (``RE_SENT``; a new ``payments.settled``
    or a ``payments.failed`` follows). The ledger reverses the settlement."""

    tx_hash: str  # the settlement's transaction
    removed_block_number: Annotated[int, Field(ge=0)]
    removed_block_hash: str
    reorgs: Annotated[int, Field(ge=1)]  # this payment's settlements undone so far
    next: Literal["RE_INCLUDED", "RE_SENT"]
    included_block_number: Annotated[int, Field(ge=0)] | None = None


class PaymentFailed(Record):
    """``payments.failed``: a terminal failure with a stable code."""

    payment_id: uuid.UUID
    payer_account: str | None = None
    amount: MinorUnits | None = None
    code: FailureCode
    reason: str
    fraud: FraudCheck | None = None
    requested_at: AwareDatetime | None = None
    failed_at: AwareDatetime
    # SETTLEMENT_MISMATCH: what the chain paid all the same, and who rejected it.
    resolution: Resolution | None = None


class DeadLetter(Record):
    """``payments.dlq``: a record no stage could decode, with its original bytes."""

    source_topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    error: str
    stage: str

    @classmethod
    def of(
        cls,
        where: tuple[str, int, int],
        key: bytes | None,
        value: bytes,
        error: str,
        stage: str,
    ) -> DeadLetter:
        """The envelope of a record that could not be handled: its source
        (topic, partition, offset), its bytes as they were, and why (the one
        builder every consumer uses)."""
        topic, partition, offset = where
        return cls(
            source_topic=topic,
            partition=partition,
            offset=offset,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            value_b64=base64.b64encode(value).decode(),
            error=error[:2000],
            stage=stage,
        )
