"""What the ledger sink reads: the outcome and deposit records of the pipeline,
and the payments held for review."""

from __future__ import annotations

from schemas.chain import DepositConfirmed
from schemas.payments import PaymentFailed, PaymentScored, PaymentSettled
from schemas.review import ReviewHeld

SinkRecord = PaymentSettled | PaymentFailed | PaymentScored | DepositConfirmed | ReviewHeld
