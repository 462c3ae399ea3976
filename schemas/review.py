"""The records of a review: a payment the fraud rules held for a human
(``payments.review``) and the decision that ends the hold (``review.decisions``:
an operator's approval or denial, or the expiry)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from schemas.base import AccountId, Record
from schemas.payments import FraudCheck, PaymentRequested

# APPROVE, DENY, EXPIRE end a review; ACCEPT, REJECT end a MISMATCH (the chain's
# payout accepted as the payment's settlement, or rejected).
Verdict = Literal["APPROVE", "DENY", "EXPIRE", "ACCEPT", "REJECT"]
_REVIEW_NAMESPACE = uuid.UUID("5f0c1d55-5d0e-4a53-9c8e-7f4c3a2b1e90")


class ReviewHeld(Record):
    """``payments.review``: the request, held (its amount reserved) until a
    decision or ``expires_at``, whichever comes first."""

    request: PaymentRequested
    fraud: FraudCheck
    held_at: AwareDatetime
    expires_at: AwareDatetime


class ReviewDecision(Record):
    """``review.decisions`` (key: payer account): what ends a review or a
    MISMATCH. Only the first decision for a payment counts; later ones are
    recorded and ignored."""

    payment_id: uuid.UUID
    payer_account: AccountId
    verdict: Verdict
    decided_by: Annotated[str, Field(min_length=1, max_length=64)]
    note: Annotated[str, Field(max_length=500)] = ""
    decided_at: AwareDatetime


def expiry_event_id(payment_id: uuid.UUID) -> uuid.UUID:
    """The expiry decision of a payment: the same each time the sweep publishes it."""
    return uuid.uuid5(_REVIEW_NAMESPACE, f"expire:{payment_id}")
