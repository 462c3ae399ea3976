"""The merchant gateway's HTTP objects (``docs/api.md``): what a merchant sends
to create a payment, and the payment, its stages and errors it gets back.

A request's fields have the types of ``payments.requested`` (``PaymentRequested``):
the gateway refuses what the engine would reject as malformed, with the same codes
in lower case."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema

from schemas.base import AccountId
from schemas.codes import FailureCode
from schemas.money import MinorUnits
from schemas.payments import Metadata

Status = Literal[
    "requested", "review", "scored", "submitted", "settled", "finalized", "failed", "rejected"
]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]
Scope = Literal["payments:write", "payments:read", "reviews:write"]
SCOPES: tuple[Scope, ...] = ("payments:write", "payments:read", "reviews:write")
AMOUNT_SCHEMA = {
    "description": "Integer minor units, as a JSON integer or a string of digits.",
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": 2**96 - 1},
        {"type": "string", "pattern": "^[0-9]{1,30}$"},
    ],
}


class PaymentCreate(BaseModel):
    """``POST /v1/payments``: collect ``amount`` from ``payer_account`` (which
    granted the merchant a mandate), paid to the merchant's payout address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    payer_account: AccountId
    amount: Annotated[MinorUnits, Field(ge=1), WithJsonSchema(AMOUNT_SCHEMA)]
    currency: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,12}$")]
    payee_address: str | None = Field(
        default=None, description="If given, the merchant's payout address (any letter case)."
    )
    metadata: Metadata | None = None


class ReviewDecisionCreate(BaseModel):
    """``POST /v1/reviews/{payment_id}``: end a hold for review."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Literal["approve", "deny"]
    note: Annotated[str, Field(max_length=500)] = ""


class Stage(BaseModel):
    """When a payment reached a stage, and what the stage told."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    at: AwareDatetime
    tx_hash: str | None = None
    block_number: int | None = None
    reorgs: int = 0
    expires_at: AwareDatetime | None = None
    code: str | None = None
    reason: str | None = None


class Failure(BaseModel):
    code: str = Field(description="The API code: the engine's code in lower case.")
    engine_code: FailureCode
    reason: str


class Settlement(BaseModel):
    tx_hash: str
    block_number: int


class Payment(BaseModel):
    object: Literal["payment"] = "payment"
    id: uuid.UUID
    status: Status
    amount: int
    currency: str
    payer_account: str
    payee_address: str
    metadata: Metadata | None = None
    created: AwareDatetime
    stages: dict[str, AwareDatetime] = Field(
        description="When the payment reached each stage so far (also 'reorged')."
    )
    failure: Failure | None = None
    settlement: Settlement | None = None
    review_expires_at: AwareDatetime | None = Field(
        default=None, description="While in review: when it is denied if nobody decides."
    )
    next_stage: str | None = Field(default=None, description="The stage expected next.")
    eta: AwareDatetime | None = Field(
        default=None,
        description=(
            "When the next stage is expected: from the measured stage latency of the last "
            "15 minutes and the current consumer lag; null when nothing was measured."
        ),
    )


class ReviewAnswer(BaseModel):
    object: Literal["review_decision"] = "review_decision"
    payment: Payment
    decision: Literal["approve", "deny"]
    note: str


class Balance(BaseModel):
    """An account's balance: live from the engine, or (``as_of``) from the ledger."""

    object: Literal["balance"] = "balance"
    account: str
    available: int | None = Field(default=None, description="Free to pay now (live).")
    held: int | None = Field(default=None, description="Reserved for payments in flight (live).")
    settled: int | None = Field(default=None, description="Paid out and settled (live).")
    owed: int | None = Field(
        default=None, description="Taken back by a reorg after it was spent (live)."
    )
    as_of: AwareDatetime | None = None
    ledger_balance: int | None = Field(
        default=None,
        description="With as_of: deposits minus settled payments booked in the ledger by then.",
    )


class PaymentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Payment]
    has_more: bool


class ErrorDetail(BaseModel):
    code: str
    message: str
    param: str | None = None


class Error(BaseModel):
    error: ErrorDetail


def api_code(code: FailureCode) -> str:
    """The API's code of an engine failure code (one to one)."""
    return code.value.lower()
