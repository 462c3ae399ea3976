"""Records and stores for the ledger tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from eth_account import Account

from schemas.base import outcome_event_id
from schemas.chain import DepositCredited, DepositReversed, deposit_event_id
from schemas.codes import FAILURE_REASONS, FailureCode
from schemas.payments import (
    ChainPayout,
    PaymentFailed,
    PaymentFinalized,
    PaymentReorged,
    PaymentSettled,
    Resolution,
)
from services.bootstrap import pg_pool
from services.settings import Settings
from services.store.postgres import PostgresLedgerStore
from services.store.schema import upgrade
from streams.stages.settled import finalized_record

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PAYEE = Account.from_key(b"\x11" * 32).address
OTHER_PAYEE = Account.from_key(b"\x22" * 32).address


def deposit(account: str, amount: int, at: datetime = T0) -> DepositCredited:
    """The reconciler's first credit of a new deposit."""
    tx = "0x" + uuid.uuid4().hex
    return DepositCredited(
        occurred_at=at,
        deposit_id=f"{tx}:0",
        account=account,
        amount=amount,
        credit=1,
        tx_hash=tx,
        block_number=1,
        block_hash="0x1",
    )


def settled(
    payer: str, amount: int, fee: int = 0, at: datetime = T0 + timedelta(minutes=1)
) -> PaymentSettled:
    return PaymentSettled(
        occurred_at=at,
        payment_id=uuid.uuid4(),
        payer_account=payer,
        payee_address=PAYEE,
        amount=amount,
        fee=fee,
        currency="PTUSD",
        merchant_id="shop" if fee else None,
        tx_hash="0xaa",
        block_number=2,
        block_hash="0xbb",
        batch_id=1,
        sequence=1,
        requested_at=at - timedelta(seconds=1),
        settled_at=at,
        latency_ms=1000,
    )


def resolved(
    payer: str, amount: int, verdict: str, paid: int, fee: int = 0
) -> PaymentSettled | PaymentFailed:
    """A payment of ``amount`` the chain paid otherwise (``paid``, with ``fee``, to
    OTHER_PAYEE), its MISMATCH accepted (settled) or rejected (failed)."""
    request = settled(payer, amount)
    chain = ChainPayout(
        sequence=request.sequence,
        payee_address=OTHER_PAYEE,
        amount=paid,
        fee=fee,
        batch_id=1,
        tx_hash="0xcc",
        block_number=3,
        block_hash="0xdd",
    )
    resolution = Resolution(
        verdict="ACCEPT" if verdict == "ACCEPT" else "REJECT",
        decided_by="ops",
        decided_at=request.settled_at,
        chain=chain,
    )
    if verdict == "ACCEPT":
        return request.model_copy(update={"resolution": resolution})
    code = FailureCode.SETTLEMENT_MISMATCH
    return PaymentFailed(
        event_id=outcome_event_id("failed", request.payment_id),
        payment_id=request.payment_id,
        payer_account=payer,
        amount=amount,
        code=code,
        reason=FAILURE_REASONS[code],
        requested_at=request.requested_at,
        failed_at=request.settled_at,
        resolution=resolution,
    )


def postgres_store(settings: Settings) -> tuple[PostgresLedgerStore, object]:
    upgrade(settings)
    pool = pg_pool(settings)
    return PostgresLedgerStore(pool, "PTUSD"), pool


def reversal(credited: DepositCredited, owed: int = 0) -> DepositReversed:
    """A reorg took ``credited`` back."""
    return DepositReversed(
        event_id=deposit_event_id("reversed", credited.deposit_id, credited.credit),
        deposit_id=credited.deposit_id,
        account=credited.account,
        amount=credited.amount,
        credit=credited.credit,
        removed_block_number=credited.block_number,
        removed_block_hash=credited.block_hash,
        owed=owed,
    )


def reorged(s: PaymentSettled, reorgs: int = 1) -> PaymentReorged:
    """A reorg removed the block of ``s``; the payment is sent again."""
    return PaymentReorged(
        occurred_at=s.settled_at,
        event_id=outcome_event_id(f"reorged:{reorgs}", s.payment_id),
        payment_id=s.payment_id,
        payer_account=s.payer_account,
        payee_address=s.payee_address,
        amount=s.amount,
        fee=s.fee,
        currency=s.currency,
        tx_hash=s.tx_hash,
        removed_block_number=s.block_number,
        removed_block_hash=s.block_hash,
        reorgs=reorgs,
        next="RE_SENT",
    )


def resettled(s: PaymentSettled, reorgs: int = 1, block: int = 9) -> PaymentSettled:
    """``s`` settled again after ``reorgs`` reorgs, in ``block``."""
    return s.model_copy(
        update={
            "event_id": outcome_event_id(f"settled:{reorgs}:{s.tx_hash}", s.payment_id),
            "reorgs": reorgs,
            "block_number": block,
            "block_hash": f"0x{block}",
        }
    )


def finalized(s: PaymentSettled) -> PaymentFinalized:
    """``s`` is final, two blocks later."""
    return finalized_record(s, s.settled_at + timedelta(seconds=2), s.block_number + 2)
