"""The ledger sink on the real Kafka and PostgreSQL: batches, replays, poison."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest
from confluent_kafka import Producer

from schemas.topics import DEPOSITS_CREDITED, PAYMENTS_DLQ, PAYMENTS_SETTLED
from services.bootstrap import kafka_producer_config, ledger_store, pg_pool, sink_bundle
from services.settings import Settings
from streams.ops.topics import create_topics
from streams.sink import LedgerSink, group_id
from tests.integration.store.support import PAYEE, deposit, postgres_store, settled
from tests.support.kafka import consume

pytestmark = pytest.mark.integration


async def _drain(settings: Settings) -> int:
    """Run a sink until it has seen every record once; return how many were new."""
    applied: list[int] = []
    idle = [0]

    def on_batch(new: int) -> None:
        applied.append(new)

    def stop() -> bool:
        idle[0] += 1
        return idle[0] > 60  # about 6 s of polling, enough for a few hundred records

    async with sink_bundle(settings, group_id(settings)) as bundle:
        await LedgerSink(settings, bundle).run(stop, on_batch)
    return sum(applied)


def test_sink_writes_once_and_replays_change_nothing(fresh_db: Settings) -> None:
    run = uuid.uuid4().hex[:8]
    settings = fresh_db.model_copy(update={"app_id": f"sink-{run}", "topic_prefix": f"sink-{run}."})
    postgres_store(settings)
    create_topics(settings)
    producer = Producer(kafka_producer_config(settings))
    # A settlement 30 days after its request: its latency no longer fits an integer.
    late = settled("dora", 1).model_copy(update={"latency_ms": 30 * 24 * 3600 * 1000})
    records = [deposit("dora", 5_000), late] + [settled("dora", 100 + i) for i in range(50)]
    for r in records:
        topic = DEPOSITS_CREDITED if r.__class__.__name__ == "DepositCredited" else PAYMENTS_SETTLED
        producer.produce(settings.topic(topic), key=b"dora", value=r.model_dump_json().encode())
        producer.produce(settings.topic(topic), key=b"dora", value=r.model_dump_json().encode())
    producer.produce(settings.topic(PAYMENTS_SETTLED), key=b"dora", value=b"{not json")
    # Valid JSON the schema takes, but PostgreSQL cannot store (a NUL in a text column).
    refused = settled("dora", 7).model_copy(update={"currency": "PT\x00USD"})
    producer.produce(settings.topic(PAYMENTS_SETTLED), key=b"dora", value=refused.model_dump_json())
    assert producer.flush(30) == 0

    assert asyncio.run(_drain(settings)) == 52  # each record delivered twice, written once
    replay = settings.model_copy(update={"app_id": f"sink-{run}-replay"})  # reads all again
    assert asyncio.run(_drain(replay)) == 0

    async def books() -> tuple[int, int, int]:
        async with pg_pool(settings) as pool:
            store = ledger_store(pool, settings)
            return (
                await store.balance("dora"),
                await store.balance(PAYEE),
                await store.ledger_total(),
            )

    spent = 1 + sum(100 + i for i in range(50))
    assert asyncio.run(books()) == (5_000 - spent, spent, 0)
    # Each sink that read a poison record reported it (the replay included), with
    # its bytes and why: the undecodable one, and the one PostgreSQL refused.
    dead = [
        json.loads(m.value() or b"{}")
        for m in consume(settings, settings.topic(PAYMENTS_DLQ), 4, timeout_s=20)
    ]
    assert len(dead) == 4
    assert sorted(base64.b64decode(d["value_b64"]) for d in dead) == sorted(
        [b"{not json", refused.model_dump_json().encode()] * 2
    )
    assert {d["stage"] for d in dead} == {"ledger-sink"}
    refusals = [d["error"] for d in dead if "refused by the ledger store" in d["error"]]
    assert len(refusals) == 2 and all("DataError" in e and "NUL" in e for e in refusals), dead
