"""What the ledger sink reads: the outcome records of the pipeline (reorged
settlements too), the submissions to the chain, the reconciler's deposit
credits and reversals, the payments held for review and the reconciler's alerts."""

from __future__ import annotations

from schemas.chain import DepositCredited, DepositReversed, ReconciliationAlert
from schemas.payments import (
    BatchSubmitted,
    PaymentFailed,
    PaymentFinalized,
    PaymentReorged,
    PaymentScored,
    PaymentSettled,
)
from schemas.review import ReviewHeld

SinkRecord = (
    PaymentSettled
    | PaymentFailed
    | PaymentScored
    | BatchSubmitted
    | PaymentReorged
    | PaymentFinalized
    | DepositCredited
    | DepositReversed
    | ReviewHeld
    | ReconciliationAlert
)
