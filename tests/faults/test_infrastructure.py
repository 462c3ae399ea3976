"""The shared stack's services stopped and started again mid-run: Kafka, then
PostgreSQL and Redis. The scenario restarts each service even if it fails, and
the fixture checks every one is healthy afterwards (other tests share them)."""

from __future__ import annotations

from tests.faults.conftest import Faults
from tests.faults.pipeline import FaultPipeline
from tests.faults.plan import MARKS, scaled
from tests.faults.stack import outage
from tests.faults.verdict import assert_invariants, publishing

pytestmark = MARKS

RATE_PER_S = 30.0


def test_broker_restart_mid_run(faults: Faults) -> None:
    """Kafka stopped while the worker is busy with the payments already sent,
    down for a few seconds, then started again (x scale)."""
    p = faults.pipeline()
    p.start()
    payers = p.payers(20)
    p.fund(payers)
    load = p.load(payers, payees=40)
    ids: list[str] = []
    for _ in range(scaled(1)):
        ids += load.publish(None, count=600).ids
        p.mark(f"published {len(ids)} payments")
        p.sleep(1.0, 5.0)
        with outage(p.base, "kafka"):
            p.mark("Kafka stopped")
            p.sleep(3.0, 10.0)
        p.mark("Kafka started again")
    assert_invariants(p, ids, timeout_s=180)


def _stores_round(p: FaultPipeline) -> None:
    """PostgreSQL down once, then Redis down three times, while payments flow."""
    p.sleep(1.0, 3.0)
    with outage(p.base, "postgres"):
        p.mark("PostgreSQL stopped")
        p.sleep(4.0, 8.0)
    p.mark("PostgreSQL started again")
    for _ in range(3):
        p.sleep(2.0, 4.0)
        with outage(p.base, "redis"):
            p.mark("Redis stopped")
            p.sleep(2.0, 4.0)
        p.mark("Redis started again")


def test_postgres_and_redis_restart_mid_run(faults: Faults) -> None:
    """PostgreSQL (the ledger) and then Redis (the listener's cursor) stopped
    for a few seconds while payments flow (x scale)."""
    p = faults.pipeline()
    p.start()
    payers = p.payers(20)
    p.fund(payers)
    rounds = scaled(1)
    count = int(RATE_PER_S * 35 * rounds)
    with publishing(p.load(payers, payees=40), RATE_PER_S, count) as sent:
        for _ in range(rounds):
            _stores_round(p)
        ids = sent.result().ids
        p.mark(f"published {len(ids)} payments")
    assert_invariants(p, ids, timeout_s=180)
