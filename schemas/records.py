"""What the ledger sink reads: the outcome and deposit records of the pipeline."""

from __future__ import annotations

from schemas.chain import DepositConfirmed
from schemas.payments import PaymentFailed, PaymentScored, PaymentSettled

SinkRecord = PaymentSettled | PaymentFailed | PaymentScored | DepositConfirmed
