"""Fund payers with real deposits, publish requests, collect their outcomes."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer, Producer
from eth_account import Account

from schemas.topics import PAYMENTS_FAILED, PAYMENTS_REQUESTED, PAYMENTS_SETTLED
from services.bootstrap import (
    chain_client,
    kafka_consumer_config,
    kafka_producer_config,
    web3_client,
)
from services.errors import BrokerUnavailable
from services.settings import Settings

Progress = Callable[[int], None]


def _quiet(_: int) -> None:
    return None


async def fund_payers(
    settings: Settings,
    payers: Sequence[str],
    amount_each: int,
    progress: Progress = _quiet,
    concurrency: int = 32,
) -> None:
    """One real on-chain deposit per payer, sent concurrently (the nonce manager
    keeps the funder's nonces gap-free)."""
    client = await chain_client(settings)
    funder = client.keys.funder
    await client.call_token(client.keys.admin, "mint", funder.address, amount_each * len(payers))
    await client.call_token(funder, "approve", client.settlement.address, 2**256 - 1)
    slots = asyncio.Semaphore(concurrency)

    async def one(payer: str) -> None:
        async with slots:
            await client.call_settlement(funder, "deposit", payer, amount_each)
            progress(1)

    try:
        await asyncio.gather(*(one(p) for p in payers))
    finally:
        await client.w3.provider.disconnect()


async def gas_used(settings: Settings, tx_hashes: set[str]) -> tuple[int, int]:
    """(transactions, total gas used) of these transactions."""
    w3 = web3_client(settings)
    try:
        receipts = [await w3.eth.get_transaction_receipt(h) for h in tx_hashes]  # type: ignore[arg-type]
    finally:
        await w3.provider.disconnect()
    return len(tx_hashes), sum(int(r["gasUsed"]) for r in receipts)


def request(payer: str, payee: str, amount: int) -> dict[str, object]:
    return {
        "payment_id": str(uuid.uuid4()),
        "payer_account": payer,
        "payee_address": payee,
        "amount": amount,
        "currency": "PTUSD",
        "requested_at": datetime.now(UTC).isoformat(),
    }


def make_requests(
    payers: Sequence[str], count: int, payees: int, max_amount: int, seed: int = 7
) -> list[dict[str, object]]:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    pool = [Account.create().address for _ in range(payees)]
    return [
        request(payers[i % len(payers)], rng.choice(pool), rng.randint(1, max_amount))
        for i in range(count)
    ]


def publish(
    settings: Settings,
    requests: Sequence[dict[str, object]],
    rate_per_s: float | None,
    progress: Progress = _quiet,
) -> float:
    """Publish at a fixed offered rate (None: as fast as possible); returns the
    monotonic time of the first send."""
    producer = Producer(kafka_producer_config(settings))
    started = time.monotonic()
    for i, req in enumerate(requests):
        if rate_per_s:
            wait = started + i / rate_per_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        producer.produce(
            settings.topic(PAYMENTS_REQUESTED),
            key=str(req["payer_account"]).encode(),
            value=json.dumps(req).encode(),
        )
        producer.poll(0)
        progress(1)
    if producer.flush(60) != 0:
        raise BrokerUnavailable("could not deliver every request to Kafka within 60 s")
    return started


@dataclass
class Outcomes:
    settled: dict[str, dict[str, object]] = field(default_factory=dict)
    failed: dict[str, dict[str, object]] = field(default_factory=dict)
    duplicates: int = 0  # a second, different outcome for a payment: must never happen
    redelivered: int = 0  # the same record (same event_id) again: at-least-once delivery
    last_at: float = 0.0


def collect(
    settings: Settings,
    ids: set[str],
    timeout_s: float,
    progress: Progress = _quiet,
    stop_after: int | None = None,
) -> Outcomes:
    """Read payments.settled and payments.failed until every id (or ``stop_after``
    of them) has an outcome."""
    consumer = Consumer(kafka_consumer_config(settings, f"collect-{uuid.uuid4().hex[:8]}"))
    settled_topic = settings.topic(PAYMENTS_SETTLED)
    consumer.subscribe([settled_topic, settings.topic(PAYMENTS_FAILED)])
    outcomes = Outcomes()
    deadline = time.monotonic() + timeout_s
    try:
        wanted = len(ids) if stop_after is None else min(stop_after, len(ids))
        while len(outcomes.settled) + len(outcomes.failed) < wanted:
            if time.monotonic() > deadline:
                break
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                if msg.error() is not None:
                    continue
                record = json.loads(msg.value() or b"{}")
                pid = str(record.get("payment_id"))
                if pid not in ids:
                    continue
                target = outcomes.settled if msg.topic() == settled_topic else outcomes.failed
                first = outcomes.settled.get(pid) or outcomes.failed.get(pid)
                if first is not None:
                    same = first.get("event_id") == record.get("event_id")
                    outcomes.redelivered += same
                    outcomes.duplicates += not same
                    continue
                target[pid] = record
                outcomes.last_at = time.monotonic()
                progress(1)
    finally:
        consumer.close()
    return outcomes
