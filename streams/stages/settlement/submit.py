"""Sending a batch to the chain (the I/O half of settlement): claim each
member's on-chain identity, send with bounded retries and jittered backoff,
then publish the ``chain.submitted`` record of each member.

Identity first. Each member claims its sequence number in PostgreSQL just
before it is sent (one round-trip per batch): a payment id keeps its first
claim forever, so whatever is replayed, re-published, rebalanced or
re-partitioned, it is sent under one sequence and the contract pays it at most
once. A member whose id another payer (or another body) claimed first fails
with ``PAYMENT_ID_CONFLICT``, before anything is sent.

Failure only with proof. A payment is refused (``REJECTED``) only when the
contract refused its batch, none of the operator's transactions is still
waiting in the node's pool and the chain says the payment is not paid. Out of
retries, nothing is decided: ``SettlementDeferred`` leaves the batch, held, to
the sweeper, which sends it again under the same sequence numbers. A
transaction the chain does not mine within ``chain_cancel_after_s`` is
cancelled (an empty transaction takes its nonce); once the cancel is mined,
its payments fail with ``SETTLEMENT_TIMEOUT``, with the same proof.

One bad payment fails alone. A payee the token will not credit reverts the
whole batch (``TransferFailed``): only the payments to that payee are refused,
and the rest are sent again at once. Reverts that say nothing about the
payments (the contract paused, the treasury short, the daily cap used up, out
of gas) are never failures: the batch waits, held, and the sweeper sends it
again until they clear.

Above the approval threshold the approval signer decides. Not answering, or
its daily cap used up: the batch waits, held. A payee it does not allow: only
that payee's payments fail (``SIGNER_REFUSED``). Above its per-batch cap: the
batch is split in halves, each asked for again; a lone payment above the cap
fails (``SIGNER_REFUSED``).
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
from schemas.payments import BatchSubmitted, SubmittedPayment
from schemas.topics import CHAIN_SUBMITTED
from services.chain.approvals import ApprovalRefused
from services.chain.reverts import ContractReverted
from services.errors import InfrastructureError, InvariantViolation, TransactionCancelled
from services.ports import ChainClient, Claim, ClaimRequest, WorkerPorts
from services.settings import Settings
from streams.outcomes import Emit
from streams.stages.settlement.batching import OpenBatch, member_partition
from streams.state import PaymentState

log = logging.getLogger("paystream.streams")


class SettlementDeferred(InfrastructureError):
    """Nothing could be decided for (some of) a batch: its payments stay held
    and the sweeper sends them again later."""


@dataclass(frozen=True)
class SubmitResult:
    """What the chain did with a batch (or with some of its members)."""

    outcome: Literal["SUBMITTED", "REJECTED"]
    tx_hash: str | None = None
    code: FailureCode | None = None
    reason: str | None = None
    payee: str | None = None  # a payee refused (lower case): only its payments
    split: bool = False  # the approval signer's per-batch cap: send it in halves

    @classmethod
    def rejected(cls, code: FailureCode, reason: str, payee: str | None = None) -> SubmitResult:
        return cls("REJECTED", code=code, reason=reason, payee=payee)


# Reverts that say nothing about the payments: the batch waits and is sent again.
# ApprovalExpired: a version signed long ago was mined late; the next attempt
# is approved afresh.
# DailyCapExceeded: the contract's rolling cap refills with time.
# Panic: the contract's own fault (an assert, an overflow), no verdict on the
# payments; they stay held, as while paused, until it is fixed or it passes.
TRANSIENT_REVERTS = frozenset(
    {"EnforcedPause", "OutOfGas", "ApprovalExpired", "DailyCapExceeded", "Panic"}
)
SPLIT = SubmitResult("REJECTED", split=True)


PAID = SubmitResult("SUBMITTED")  # refused now, but the chain says an earlier attempt paid it
CONFLICT = SubmitResult.rejected(
    FailureCode.PAYMENT_ID_CONFLICT, FAILURE_REASONS[FailureCode.PAYMENT_ID_CONFLICT]
)


def claim_request(member: PaymentState) -> ClaimRequest:
    partition = member_partition(member)
    if partition is None:
        raise InvariantViolation(f"batch member {member.payment_id} has no partition")
    return ClaimRequest(
        member.payment_id, member.payer_account, member.request_digest or "", partition
    )


async def settle(
    batch: OpenBatch,
    ports: WorkerPorts,
    settings: Settings,
    clock: Callable[[], datetime],
    mined: Callable[[int], None] = lambda _block: None,
) -> list[Emit]:
    """Claim, submit with bounded retries; return the ``chain.submitted`` records.
    Nothing is sent while settlement is halted (a reorg deeper than finality).
    ``mined`` is told the block of each receipt (``blocks.BlockClock``)."""
    halt = await ports.claims.halted()
    if halt is not None:
        raise SettlementDeferred(f"batch {batch.batch_id}: settlement is halted: {halt}")
    requests = [claim_request(m) for m in batch.members]
    claims = await ports.claims.claim(requests)
    own: list[PaymentState] = []
    conflicts: list[PaymentState] = []
    for member, request in zip(batch.members, requests, strict=True):
        claim: Claim = claims[member.payment_id]
        if claim.belongs_to(request):
            own.append(member.model_copy(update={"sequence": claim.sequence}))
        else:
            conflicts.append(member)
    emits = submitted_records(conflicts, batch.batch_id, CONFLICT, clock())
    if not own:
        return emits
    own.sort(key=lambda m: m.sequence or 0)
    groups = [own]
    while groups:  # each round settles or refuses a group, narrows it or splits it
        group = groups.pop()
        result = await _send(batch.batch_id, _records(group), ports.chain, settings, mined)
        if result.outcome == "SUBMITTED":
            emits += submitted_records(group, batch.batch_id, result, clock())
        elif result.split:
            half = len(group) // 2
            groups += [group[half:], group[:half]]
        else:
            emits += await _narrowed(group, groups, batch.batch_id, result, ports.chain, clock)
    return emits


async def _narrowed(
    group: list[PaymentState],
    groups: list[list[PaymentState]],
    batch_id: int,
    result: SubmitResult,
    chain: ChainClient,
    clock: Callable[[], datetime],
) -> list[Emit]:
    """A refused group: only a refused payee's payments when it names one (the
    others go back on ``groups``), else the whole group."""
    bad = [m for m in group if result.payee and m.payee_address.lower() == result.payee]
    if result.payee and not bad:
        raise SettlementDeferred(
            f"batch {batch_id}: {result.payee} was refused, no payee of the batch (the fee "
            "recipient?); its payments stay held until that is fixed"
        )
    if not bad or len(bad) == len(group):
        return await _refused(group, batch_id, result, chain, clock)
    log.warning("batch %s: %s; sending the others again", batch_id, result.reason)
    groups.append([m for m in group if m not in bad])
    return await _refused(bad, batch_id, result, chain, clock)


def _records(members: list[PaymentState]) -> list[PaymentRecord]:
    return [
        PaymentRecord(
            m.payee_address, m.amount, m.sequence or 0, account_ref(m.payer_account), m.fee
        )
        for m in members
    ]


async def _send(
    batch_id: int,
    records: Sequence[PaymentRecord],
    chain: ChainClient,
    settings: Settings,
    mined: Callable[[int], None],
) -> SubmitResult:
    """The chain's answer to the batch; ``SettlementDeferred`` when every attempt failed."""
    delay_s = settings.settle_backoff_ms / 1000
    for attempt in range(settings.settle_retries_max + 1):
        try:
            receipt = await chain.settle_batch(batch_id, records)
        except ContractReverted as exc:
            return await _classified(batch_id, exc, records, chain)
        except ApprovalRefused as exc:
            return _signer_refused(batch_id, exc, records)
        except TransactionCancelled as exc:  # not mined in time; failed only with proof
            return SubmitResult.rejected(FailureCode.SETTLEMENT_TIMEOUT, str(exc))
        except InfrastructureError as exc:
            if attempt == settings.settle_retries_max:
                raise SettlementDeferred(
                    f"batch {batch_id}: {attempt + 1} attempts failed, the last: {exc}; "
                    "its payments stay held and the sweeper sends it again"
                ) from exc
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
            mined(receipt.block_number)
            return SubmitResult("SUBMITTED", tx_hash=receipt.tx_hash)
    raise SettlementDeferred(f"batch {batch_id}: no attempt was made")  # retries_max < 0


def _signer_refused(
    batch_id: int, exc: ApprovalRefused, records: Sequence[PaymentRecord]
) -> SubmitResult:
    """The approval signer's refusal: a payee's payments fail, a batch over its
    cap is split, a lone payment over it fails; anything else waits."""
    if exc.code == "PAYEE_NOT_ALLOWED" and exc.payees:
        return SubmitResult.rejected(FailureCode.SIGNER_REFUSED, exc.reason, exc.payees[0])
    if exc.code == "BATCH_OVER_CAP":
        if len(records) > 1:
            return SPLIT
        return SubmitResult.rejected(FailureCode.SIGNER_REFUSED, exc.reason)
    raise SettlementDeferred(
        f"batch {batch_id}: {exc}; its payments stay held and the sweeper asks again"
    )


async def _classified(
    batch_id: int, exc: ContractReverted, records: Sequence[PaymentRecord], chain: ChainClient
) -> SubmitResult:
    """A revert: deferred when it says nothing about the payments, narrowed to
    a payee when the token refused one, else the whole batch's refusal."""
    if exc.name in TRANSIENT_REVERTS:
        raise SettlementDeferred(
            f"batch {batch_id}: refused for now ({exc}); its payments stay held and the "
            "sweeper sends it again until the condition clears"
        )
    if exc.name == "TransferFailed" and exc.args_decoded:
        unpaid = [r for r in records if not await chain.is_settled(r.sequence)]
        needed, held = sum(r.amount for r in unpaid), await chain.treasury_balance()
        payee = str(exc.args_decoded[0]).lower()
        # Short now, or short at the pending state (other batches in flight spend
        # first): a payee refused only when the token refuses it one unit.
        if held < needed or await chain.payee_accepts(payee):
            raise SettlementDeferred(
                f"batch {batch_id}: the treasury holds {held}, the batch needs {needed} "
                f"({exc}); its payments stay held and the sweeper sends it again once the "
                "treasury can pay it"
            )
        reason = f"payee {payee} cannot receive the token ({exc})"
        return SubmitResult.rejected(FailureCode.SETTLEMENT_REJECTED, reason, payee)
    return SubmitResult.rejected(FailureCode.SETTLEMENT_REJECTED, str(exc))


async def _refused(
    members: list[PaymentState],
    batch_id: int,
    result: SubmitResult,
    chain: ChainClient,
    clock: Callable[[], datetime],
) -> list[Emit]:
    """The contract refused the batch: fail what the chain proves unpaid.

    Proof is that no transaction of the operator waits in the pool (none sent
    earlier can still pay) and ``isSettled`` is false; a member an earlier
    attempt paid is SUBMITTED. Without proof, the batch is deferred."""
    if await chain.unmined_sends() > 0:
        raise SettlementDeferred(
            f"batch {batch_id} refused ({result.reason}), but the operator has transactions "
            "in the pool that may still pay it: deciding later"
        )
    paid = [m for m in members if await chain.is_settled(m.sequence or 0)]
    unpaid = [m for m in members if m not in paid]
    now = clock()
    return submitted_records(paid, batch_id, PAID, now) + submitted_records(
        unpaid, batch_id, result, now
    )


# Payments per chain.submitted record: about 200 bytes each, so a record stays
# far below Kafka's 1 MiB default message size, merged batches included.
RECORD_PAYMENTS_MAX = 512


def submitted_records(
    members: list[PaymentState], batch_id: int, result: SubmitResult, now: datetime
) -> list[Emit]:
    """The ``chain.submitted`` records of ``members``: per partition (the
    members' own, their payers', where their states live), of at most
    ``RECORD_PAYMENTS_MAX`` payments, keyed by the batch."""
    by_partition: dict[int, list[SubmittedPayment]] = {}
    for m in members:
        by_partition.setdefault(claim_request(m).partition, []).append(
            SubmittedPayment(
                payment_id=m.payment_id,
                payer_account=m.payer_account,
                amount=m.amount,
                sequence=m.sequence,
                requested_at=m.requested_at,
            )
        )
    return [
        Emit(
            CHAIN_SUBMITTED,
            str(batch_id),
            BatchSubmitted(
                outcome=result.outcome,
                batch_id=batch_id,
                tx_hash=result.tx_hash,
                code=result.code,
                reason=result.reason,
                submitted_at=now,
                payments=tuple(payments[start : start + RECORD_PAYMENTS_MAX]),
            ),
            partition=partition,
        )
        for partition, payments in by_partition.items()
        for start in range(0, len(payments), RECORD_PAYMENTS_MAX)
    ]
