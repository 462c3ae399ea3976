"""What the ledger sink reads: the outcome and deposit records of the pipeline,
the payments held for review and the reconciler's alerts."""

from __future__ import annotations

from schemas.chain import DepositConfirmed, ReconciliationAlert
from schemas.payments import PaymentFailed, PaymentScored, PaymentSettled
from schemas.review import ReviewHeld

SinkRecord = (
    PaymentSettled
    | PaymentFailed
    | PaymentScored
    | DepositConfirmed
    | ReviewHeld
    | ReconciliationAlert
)
