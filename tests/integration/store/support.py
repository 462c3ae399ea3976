"""Records and stores for the ledger tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from eth_account import Account

from schemas.chain import DepositConfirmed
from schemas.payments import PaymentSettled
from services.bootstrap import pg_pool
from services.settings import Settings
from services.store.postgres import PostgresLedgerStore
from services.store.schema import upgrade

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PAYEE = Account.from_key(b"\x11" * 32).address


def deposit(account: str, amount: int, at: datetime = T0) -> DepositConfirmed:
    return DepositConfirmed(
        occurred_at=at,
        block_number=1,
        block_hash="0x1",
        tx_hash="0x" + uuid.uuid4().hex,
        log_index=0,
        account=account,
        depositor=PAYEE,
        amount=amount,
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


def postgres_store(settings: Settings) -> tuple[PostgresLedgerStore, object]:
    upgrade(settings)
    pool = pg_pool(settings)
    return PostgresLedgerStore(pool, "PTUSD"), pool
