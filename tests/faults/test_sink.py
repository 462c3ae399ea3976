"""A poison record for the ledger sink: a bad producer writes records the sink's
schema accepts but PostgreSQL cannot store (a NUL character in a text column)
onto ``reconciliation.alerts`` while payments flow. Each goes to the DLQ with
the database's reason and its source offset; the rest of its batch is written
and the sink never stops (audit finding 12)."""

from __future__ import annotations

import base64
import json

from confluent_kafka import Producer

from schemas.chain import ReconciliationAlert
from schemas.topics import PAYMENTS_DLQ, RECONCILIATION_ALERTS
from services.bootstrap import kafka_producer_config
from tests.faults.conftest import Faults
from tests.faults.plan import MARKS, scaled
from tests.faults.verdict import assert_invariants, publishing
from tests.support.kafka import consume

pytestmark = MARKS

RATE_PER_S = 30.0
POISON = 3


def test_records_postgresql_refuses_go_to_the_dlq_and_the_sink_goes_on(faults: Faults) -> None:
    p = faults.pipeline()
    p.start(workers=1)
    payers = p.payers(10)
    p.fund(payers)
    count = scaled(300)
    poison = [
        ReconciliationAlert(kind="UNKNOWN_SEQUENCE", detail=f"bad\x00producer {i}", sequence=i)
        for i in range(POISON)
    ]
    producer = Producer(kafka_producer_config(p.settings))
    with publishing(p.load(payers, payees=20), RATE_PER_S, count) as sent:
        for record in poison:
            p.sleep(1.0, 3.0)
            producer.produce(
                p.settings.topic(RECONCILIATION_ALERTS), key=b"bad", value=record.model_dump_json()
            )
            assert producer.flush(10) == 0
        p.mark(f"published {POISON} records PostgreSQL cannot store")
        ids = sent.result().ids
    assert_invariants(p, ids, timeout_s=120 + count / 20)
    dead = [
        json.loads(m.value() or b"{}")
        for m in consume(p.settings, p.settings.topic(PAYMENTS_DLQ), POISON, timeout_s=30)
    ]
    assert sorted(base64.b64decode(d["value_b64"]) for d in dead) == sorted(
        r.model_dump_json().encode() for r in poison
    )
    assert all(
        d["stage"] == "ledger-sink"
        and "refused by the ledger store" in d["error"]
        and d["source_topic"] == p.settings.topic(RECONCILIATION_ALERTS)
        for d in dead
    ), dead
    assert p.supervisor.children["sink"].crashes == [], "the sink stopped"
