"""Sending a batch to the chain (the I/O half of settlement): bounded retries
with jittered backoff, then the ``chain.submitted`` record of each member.

What became of a batch is one ``SubmitResult``: sent, refused by the contract,
or out of retries. Out of retries, only the chain is trusted: a payment it says
was paid (by an earlier attempt) is SUBMITTED, the others time out, and a
payment whose state the chain cannot tell is treated as paid, so that a hold is
never released for money that may have left.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas.codes import FAILURE_REASONS, FailureCode
from schemas.onchain import PaymentRecord, account_ref
from schemas.payments import PaymentSubmitted
from schemas.topics import CHAIN_SUBMITTED
from services.chain.reverts import ContractReverted
from services.errors import InfrastructureError
from services.ports import ChainClient
from services.settings import Settings
from streams.outcomes import Emit
from streams.stages.settlement.batching import OpenBatch
from streams.state import PaymentState, partition_of

log = logging.getLogger("paystream.streams")


@dataclass(frozen=True)
class SubmitResult:
    """What the chain did with a batch (or with some of its members)."""

    outcome: Literal["SUBMITTED", "REJECTED"]
    tx_hash: str | None = None
    code: FailureCode | None = None
    reason: str | None = None

    @classmethod
    def rejected(cls, code: FailureCode, reason: str) -> SubmitResult:
        return cls("REJECTED", code=code, reason=reason)


PAID = SubmitResult("SUBMITTED")  # out of retries, but the chain says it was paid
TIMED_OUT = SubmitResult.rejected(
    FailureCode.SETTLEMENT_TIMEOUT, FAILURE_REASONS[FailureCode.SETTLEMENT_TIMEOUT]
)


async def settle(
    batch: OpenBatch, chain: ChainClient, settings: Settings, clock: Callable[[], datetime]
) -> list[Emit]:
    """Submit a batch with bounded retries; return the ``chain.submitted`` records."""
    members = sorted(batch.members, key=lambda m: m.sequence or 0)
    records = [
        PaymentRecord(m.payee_address, m.amount, m.sequence or 0, account_ref(m.payer_account))
        for m in members
    ]
    result = await _send(batch.batch_id, records, chain, settings)
    if result is not None:
        return submitted_records(members, batch.batch_id, result, clock())
    # Out of retries: trust only what the chain says was paid.
    paid = [m for m in members if await _settled(chain, m.sequence or 0)]
    unpaid = [m for m in members if m not in paid]
    return submitted_records(paid, batch.batch_id, PAID, clock()) + submitted_records(
        unpaid, batch.batch_id, TIMED_OUT, clock()
    )


async def _send(
    batch_id: int, records: Sequence[PaymentRecord], chain: ChainClient, settings: Settings
) -> SubmitResult | None:
    """The chain's answer to the batch, or None when every attempt failed."""
    delay_s = settings.settle_backoff_ms / 1000
    for attempt in range(settings.settle_retries_max + 1):
        try:
            receipt = await chain.settle_batch(batch_id, records)
        except ContractReverted as exc:
            return SubmitResult.rejected(FailureCode.SETTLEMENT_REJECTED, str(exc))
        except InfrastructureError as exc:
            if attempt == settings.settle_retries_max:
                log.error("batch %s: giving up after %d attempts: %s", batch_id, attempt + 1, exc)
                return None
            wait_s = delay_s * (1 + random.random())  # noqa: S311 - jitter
            log.warning(
                "batch %s: attempt %d failed (%s); retrying in %.2f s",
                batch_id,
                attempt + 1,
                exc,
                wait_s,
            )
            await asyncio.sleep(wait_s)
            delay_s *= 2
        else:
            return SubmitResult("SUBMITTED", tx_hash=receipt.tx_hash)
    return None


async def _settled(chain: ChainClient, sequence: int) -> bool:
    try:
        return await chain.is_settled(sequence)
    except InfrastructureError:
        return True  # unknown: do not release a hold that may have been paid out


def submitted_records(
    members: list[PaymentState], batch_id: int, result: SubmitResult, now: datetime
) -> list[Emit]:
    """One ``chain.submitted`` record per member, to the member's own partition
    (the payer's, encoded in its sequence number)."""
    return [
        Emit(
            CHAIN_SUBMITTED,
            m.payer_account,
            PaymentSubmitted(
                outcome=result.outcome,
                payment_id=m.payment_id,
                payer_account=m.payer_account,
                amount=m.amount,
                sequence=m.sequence or 0,
                batch_id=batch_id,
                tx_hash=result.tx_hash,
                code=result.code,
                reason=result.reason,
                requested_at=m.requested_at,
                submitted_at=now,
            ),
            partition=partition_of(m.sequence or 0),
        )
        for m in members
    ]
