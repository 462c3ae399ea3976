"""The shared load generator on the stack's Kafka: every request it reports as
sent is on the topic, keyed by its payer, and validates as ``PaymentRequested``;
and it keeps to an offered rate. (How fast it is belongs to the benchmark, not
to a timed test.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.cimpl import NewTopic

from devtools.harness.load import LoadGenerator, new_payees
from schemas.payments import PaymentRequested
from schemas.topics import PAYMENTS_REQUESTED
from services.settings import Settings
from streams.ops.topics import create, delete_topics
from tests.support.kafka import consume

pytestmark = pytest.mark.integration

PAYERS = [f"load-payer-{i:03d}" for i in range(30)]


@pytest.fixture
def load_settings(stack_healthy: Settings) -> Iterator[Settings]:
    """The stack's Kafka with a topic prefix of its own (deleted afterwards)."""
    prefix = f"load-{uuid.uuid4().hex[:8]}-"
    settings = stack_healthy.model_copy(update={"topic_prefix": prefix})
    topic = settings.topic(PAYMENTS_REQUESTED)
    create(settings, [NewTopic(topic, num_partitions=settings.kafka_partitions)])
    try:
        yield settings
    finally:
        delete_topics(settings, prefix)


def test_every_request_sent_is_on_the_topic_and_valid(load_settings: Settings) -> None:
    load = LoadGenerator(load_settings, PAYERS, new_payees(5), max_amount=1_000)
    reported: list[int] = []

    sent = load.publish(None, count=5_000, progress=reported.append)

    assert sum(reported) == len(sent.ids) == len(set(sent.ids)) == 5_000
    records = consume(load_settings, load_settings.topic(PAYMENTS_REQUESTED), 5_000, timeout_s=60)
    requests = [(m.key(), PaymentRequested.model_validate_json(m.value() or b"")) for m in records]
    assert sorted(str(r.payment_id) for _, r in requests) == sorted(sent.ids)
    assert all(key == r.payer_account.encode() for key, r in requests)
    assert {r.payer_account for _, r in requests} == set(PAYERS)
    assert all(1 <= r.amount <= 1_000 for _, r in requests)
    assert all(r.requested_at.timestamp() >= sent.started_s - 1 for _, r in requests)
    assert 150 < load.record_bytes < 400


def test_an_offered_rate_is_kept(load_settings: Settings) -> None:
    load = LoadGenerator(load_settings, PAYERS, new_payees(5), max_amount=1_000)

    started = time.monotonic()
    sent = load.publish(500.0, count=400)
    elapsed = time.monotonic() - started

    assert len(sent.ids) == 400
    assert elapsed >= 399 / 500.0  # open loop: never ahead of the offered rate
    with pytest.raises(ValueError, match="duration or a count"):
        load.publish(500.0)
