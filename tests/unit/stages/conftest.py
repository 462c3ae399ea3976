"""Stage handlers with dict tables, a fixed clock and the in-memory chain."""

from __future__ import annotations

import json
import uuid
from collections import UserDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account

from schemas.chain import SettlementConfirmed
from schemas.codes import FailureCode
from schemas.merchants import Merchant
from schemas.onchain import account_ref
from schemas.payments import BatchSubmitted
from services.ports import WorkerPorts
from services.settings import Settings
from streams.outcomes import Emit
from streams.stages.fraud import FraudDeps, handle_request
from streams.stages.review import ReviewDeps
from streams.stages.settled import ReconcileDeps
from streams.stages.settlement.batching import (
    OpenBatch,
    SettlementDeps,
    handle_scored,
    take_due_batches,
)
from streams.stages.submitted import SubmittedDeps
from streams.state import Balance, PaymentState, VelocityWindow, payment_key
from tests.support.fakes import (
    FakeChain,
    MemoryClaimStore,
    MemoryCursorStore,
    MemoryLedgerStore,
    MemoryMerchants,
)

BLOCKED = Account.create().address


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += timedelta(milliseconds=ms)


class World:
    """The tables every stage shares, as plain dicts."""

    def __init__(self) -> None:
        self.settings = Settings(fraud_blocklist=frozenset({BLOCKED}), batch_max_payments=3)
        self.clock = Clock()
        self.payments: dict[str, PaymentState] = {}
        self.balances: dict[str, Balance] = {}
        self.velocity: dict[str, VelocityWindow] = {}
        self.merchants: dict[str, Merchant] = {}
        self.fraud = FraudDeps(
            self.settings,
            self.payments,
            self.balances,
            self.velocity,
            self.clock,
            merchants=self.merchants,
        )
        self.settlement = SettlementDeps(self.settings, self.payments, self.clock)
        self.submitted = SubmittedDeps(self.payments, self.balances, self.clock)
        self.reconcile = ReconcileDeps(self.payments, self.balances, self.clock)
        self.review = ReviewDeps(self.settings, self.payments, self.balances, self.clock)
        self.chain = FakeChain()
        self.claims = MemoryClaimStore()
        self.ledger = MemoryLedgerStore()
        self.ports = WorkerPorts(
            self.chain,
            MemoryCursorStore(),
            self.claims,
            MemoryMerchants(self.merchants),
            self.ledger,
        )


@pytest.fixture
def world() -> World:
    return World()


def request(payer: str = "alice", amount: Any = 1_000, **override: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "payment_id": str(uuid.uuid4()),
        "payer_account": payer,
        "payee_address": Account.create().address,
        "amount": amount,
        "currency": "PTUSD",
        "requested_at": "2026-11-22T11:59:59+00:00",
    }
    body.update(override)
    return body


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def summary(available: int = 0, held: int = 0, settled: int = 0) -> dict[str, int]:
    return {"available": available, "held": held, "settled": settled}


def key_of(body: dict[str, Any]) -> str:
    """The ``payments`` table key of a request body."""
    return payment_key(str(body["payer_account"]), str(body["payment_id"]))


def approve(world: World, count: int, payer: str = "alice") -> list[bytes]:
    world.balances.setdefault(payer, Balance(available=10**9))
    scored = []
    for _ in range(count):
        (emit,) = handle_request(raw(request(payer)), payer, world.fraud).emits
        scored.append(emit.payload())
    return scored


def due_batch(world: World, count: int, partition: int = 0) -> OpenBatch:
    """``count`` approved payments of one partition, batched and due."""
    for offset, payload in enumerate(approve(world, count)):
        handle_scored(payload, partition, offset, world.settlement)
    world.clock.advance(world.settings.batch_wait_ms)
    (batch,) = take_due_batches(world.settlement, 0)
    return batch


def confirmed(payment_id: Any, payee: str, amount: int, fee: int = 0) -> bytes:
    """The ``chain.events`` record of alice's payment settled on chain (sequence 7,
    block 3, transaction 0xaa) with this payee, amount and fee."""
    return (
        SettlementConfirmed(
            block_number=3,
            block_hash="0xbb",
            tx_hash="0xaa",
            log_index=1,
            sequence=7,
            payer_ref=account_ref("alice"),
            payee_address=payee,
            amount=amount,
            fee=fee,
            batch_id=4,
            payment_id=payment_id,
            payer_account="alice",
        )
        .model_dump_json()
        .encode()
    )


class CountedWrites(UserDict[str, Balance]):
    """A table that counts its writes (each is a changelog record in Faust)."""

    def __init__(self, data: dict[str, Balance]) -> None:
        self.writes: list[str] = []
        super().__init__(data)
        self.writes.clear()

    def __setitem__(self, key: str, value: Balance) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


@dataclass(frozen=True)
class Sent:
    """One payment of a ``chain.submitted`` record, with its record's fields."""

    outcome: str
    code: FailureCode | None
    reason: str | None
    tx_hash: str | None
    batch_id: int
    payment_id: uuid.UUID
    payer_account: str
    sequence: int | None
    partition: int | None


def sent_of(emits: Iterable[Emit]) -> list[Sent]:
    """The payments of these ``chain.submitted`` records, one by one."""
    out = []
    for e in emits:
        r = BatchSubmitted.model_validate_json(e.payload())
        for p in r.payments:
            out.append(
                Sent(
                    r.outcome,
                    r.code,
                    r.reason,
                    r.tx_hash,
                    r.batch_id,
                    p.payment_id,
                    p.payer_account,
                    p.sequence,
                    e.partition,
                )
            )
    return out


def confirmation(world: World, sent: Sent, block: int, block_hash: str) -> bytes:
    """The ``chain.events`` record of the chain paying alice's submitted payment
    as requested, in ``block``."""
    state = world.payments[payment_key(sent.payer_account, sent.payment_id)]
    return (
        SettlementConfirmed(
            block_number=block,
            block_hash=block_hash,
            tx_hash=sent.tx_hash or "0xaa",
            log_index=1,
            sequence=sent.sequence or 0,
            payer_ref=account_ref("alice"),
            payee_address=state.payee_address,
            amount=state.amount,
            batch_id=sent.batch_id,
            payment_id=sent.payment_id,
            payer_account=sent.payer_account,
        )
        .model_dump_json()
        .encode()
    )
