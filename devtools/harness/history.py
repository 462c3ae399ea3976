"""A history of settled payments written straight into a pipeline's
``payments`` table changelog, as the workers would have left it: what a
restart with a large history has to read back (the restart benchmark and the
fault scenario of ``tests/faults/test_history.py``).

Each entry is a SETTLED payment with the records a real one keeps (its
``fraud.scored``, ``payments.settled`` and ``payments.finalized`` records),
each batch of 200 with transaction and block hashes of its own, in its
payer's partition, in the table's wire format (JSON key, and the value as
``ModelTable`` writes it: packed). The restart benchmark also writes the payers' balances
(``seed_balances``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from confluent_kafka import Producer
from eth_account import Account

from schemas.base import outcome_event_id
from schemas.partitioning import partition_for
from schemas.payments import FraudCheck, PaymentRequested, PaymentScored, PaymentSettled
from schemas.topics import FRAUD_SCORED, PAYMENTS_FINALIZED, PAYMENTS_SETTLED
from services.bootstrap import kafka_producer_config
from services.errors import BrokerUnavailable
from services.settings import Settings
from streams.packing import pack
from streams.stages.settled import finalized_record
from streams.state import RECENT_FINISHED, Balance, PaymentState, Status, payment_key
from streams.tables import changelog_topic

FLUSH_TIMEOUT_S = 120.0
CHECK = FraudCheck(score=0, decision="APPROVE", rules_triggered=(), check_duration_us=40)


def history_amount(i: int) -> int:
    """The amount of the i-th payment of a history."""
    return 1_000_000 + i % 1_000


def settled_state(payer: str, payee: str, sequence: int, requested_at: datetime) -> PaymentState:
    """One settled payment's state, with the records it published."""
    request = PaymentRequested(
        payment_id=uuid.uuid4(),
        payer_account=payer,
        payee_address=payee,
        amount=history_amount(sequence),
        currency="PTUSD",
        requested_at=requested_at,
    )
    pid = request.payment_id
    batch = sequence // 200
    scored = PaymentScored(
        event_id=outcome_event_id("scored", pid),
        request=request,
        fraud=CHECK,
        scored_at=requested_at,
    )
    settled = PaymentSettled(
        event_id=outcome_event_id("settled", pid),
        payment_id=pid,
        payer_account=payer,
        payee_address=payee,
        amount=request.amount,
        currency="PTUSD",
        tx_hash=_hash(f"tx {batch}"),
        block_number=batch,
        block_hash=_hash(f"block {batch}"),
        batch_id=batch,
        sequence=sequence,
        requested_at=requested_at,
        settled_at=requested_at + timedelta(seconds=3),
        latency_ms=3_000,
    )
    finalized = finalized_record(settled, settled.settled_at + timedelta(seconds=2), batch + 2)
    return PaymentState(
        payment_id=pid,
        payer_account=payer,
        payee_address=payee,
        amount=request.amount,
        currency="PTUSD",
        status=Status.SETTLED,
        requested_at=requested_at,
        partition=0,
        request_digest=request.digest(),
        sequence=sequence,
        batch_id=batch,
        tx_hash=settled.tx_hash,
        outputs={
            FRAUD_SCORED: scored.model_dump_json(),
            PAYMENTS_SETTLED: settled.model_dump_json(),
            PAYMENTS_FINALIZED: finalized.model_dump_json(),
        },
    )


def _hash(seed: str) -> str:
    return "0x" + hashlib.sha256(seed.encode()).hexdigest()


def seed_history(
    settings: Settings,
    count: int,
    requested_at: Callable[[int], datetime],
    payers: int = 1_000,
    progress: Callable[[int], None] = lambda _: None,
) -> list[str]:
    """Write ``count`` settled payments (the i-th requested at
    ``requested_at(i)``) to the ``payments`` changelog; returns their keys."""
    producer = Producer(kafka_producer_config(settings))
    topic = changelog_topic(settings.app_id, "payments")
    payees = [Account.create().address for _ in range(50)]
    keys = []
    for i in range(count):
        payer = f"{settings.app_id}-history-{i % payers:05d}"
        state = settled_state(payer, payees[i % len(payees)], i, requested_at(i))
        home = partition_for(payer, settings.kafka_partitions)
        key = payment_key(payer, state.payment_id)
        state = state.model_copy(update={"partition": home})
        value = pack(state.model_dump_json().encode())  # as ModelTable writes it
        producer.produce(topic, key=json.dumps(key).encode(), value=value, partition=home)
        producer.poll(0)
        keys.append(key)
        if i % 1_000 == 999:
            progress(1_000)
    left = producer.flush(FLUSH_TIMEOUT_S)
    if left:
        raise BrokerUnavailable(f"{left} history records to {topic} not delivered")
    progress(count % 1_000)
    return keys


def seed_balances(settings: Settings, keys: list[str]) -> int:
    """Write each history payer's balance as its payments left it (``keys``
    from ``seed_history``, in order) to the ``balances`` changelog, compacted
    (one record per payer): nothing available or held, its settled total, and
    its last ``RECENT_FINISHED`` payment ids finished. Returns the bytes written."""
    finished: dict[str, list[str]] = {}
    settled: dict[str, int] = {}
    for i, key in enumerate(keys):
        payer, payment_id = key.split(":", 1)
        finished.setdefault(payer, []).append(payment_id)
        settled[payer] = settled.get(payer, 0) + history_amount(i)
    producer = Producer(kafka_producer_config(settings))
    topic = changelog_topic(settings.app_id, "balances")
    written = 0
    for payer, ids in finished.items():
        balance = Balance(settled=settled[payer], finished=tuple(ids[-RECENT_FINISHED:]))
        value = balance.model_dump_json().encode()
        home = partition_for(payer, settings.kafka_partitions)
        producer.produce(topic, key=json.dumps(payer).encode(), value=value, partition=home)
        producer.poll(0)
        written += len(value)
    left = producer.flush(FLUSH_TIMEOUT_S)
    if left:
        raise BrokerUnavailable(f"{left} history balances to {topic} not delivered")
    return written
