"""Producers that do not follow docs/producers.md (audit finding 6): the
engine must re-route or reject what they send, never split a payer's state
across partitions or pay one payment id twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from eth_account import Account

from devtools.harness.load import request
from schemas.payments import PaymentRequested
from tests.faults.conftest import Faults
from tests.faults.pipeline import MAX_AMOUNT, FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.producers import crc32_partition, murmur2_partition, publish
from tests.faults.verdict import assert_invariants

pytestmark = MARKS


def _split_payers(p: FaultPipeline, count: int) -> list[str]:
    """Payers that librdkafka's default partitioner puts on another partition
    than murmur2 (most keys: 7 in 8 with 8 partitions)."""
    n = p.settings.kafka_partitions
    names = (f"{p.settings.app_id}-crc-{i:04d}" for i in range(10 * count))
    split = [a for a in names if crc32_partition(a, n) != murmur2_partition(a, n)]
    return split[:count]


def _requests(p: FaultPipeline, payers: list[str], count: int) -> list[PaymentRequested]:
    payees = [str(Account.create().address) for _ in range(40)]
    return [
        request(payers[i % len(payers)], p.rng.choice(payees), p.rng.randint(1, MAX_AMOUNT))
        for i in range(count)
    ]


def test_producer_on_librdkafkas_default_partitioner(faults: Faults) -> None:
    """A confluent-kafka producer that keeps the default partitioner, a worker
    SIGKILLed and restarted mid-run, and some requests sent again (the new
    user's run of issue 12)."""
    p = faults.pipeline()
    p.start()
    payers = _split_payers(p, 20)
    p.fund(payers)
    ids: list[str] = []
    for _ in range(scaled(1)):
        first = _requests(p, payers, 300)
        ids += [str(r.payment_id) for r in first]
        publish(p.settings, first[:150], documented=False)
        p.sleep(0.5, 2.0)
        p.supervisor.kill("worker-1")
        publish(p.settings, first[150:], documented=False)
        p.sleep(0.0, 2.0)
        p.supervisor.start("worker-1")
        again = p.rng.sample(first, 5)
        publish(p.settings, again, documented=False)
        p.mark(f"published {len(first)} requests and {len(again)} again")
    assert_invariants(p, ids, timeout_s=150)


def test_one_payment_id_from_two_payers(faults: Faults) -> None:
    """Pairs of payers on different partitions send one payment id each, with
    the documented producer; two workers share the partitions."""
    p = faults.pipeline()
    p.start(workers=2)
    n = p.settings.kafka_partitions
    pairs = scaled(10)
    firsts, candidates = p.payers(pairs, "first"), iter(p.payers(10 * pairs, "second"))
    seconds = [
        next(b for b in candidates if murmur2_partition(b, n) != murmur2_partition(a, n))
        for a in firsts
    ]
    p.fund(firsts + seconds)
    twins: list[PaymentRequested] = []
    for a, b in zip(firsts, seconds, strict=True):
        pid, amount = uuid.uuid4(), p.rng.randint(1, MAX_AMOUNT)
        for payer in (a, b):
            twins.append(_twin(pid, payer, amount))
    publish(p.settings, twins, documented=True)
    p.mark(f"published {len(twins)} requests: {len(twins) // 2} payment ids, each from 2 payers")
    ids = list(dict.fromkeys(str(r.payment_id) for r in twins))
    assert_invariants(p, ids, timeout_s=90)


def _twin(payment_id: uuid.UUID, payer: str, amount: int) -> PaymentRequested:
    return PaymentRequested(
        payment_id=payment_id,
        payer_account=payer,
        payee_address=str(Account.create().address),
        amount=amount,
        currency="PTUSD",
        requested_at=datetime.now(UTC),
    )
