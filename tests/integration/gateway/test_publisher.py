"""The gateway's publisher against the real Kafka: each request is answered
only once Kafka acknowledged its record, the reports served on the event loop,
and a broker that never answers ends in ``NotPublished``, not in a wait."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from devtools.harness.isolated import free_port
from paystream.gateway.publisher import NotPublished, Publisher
from schemas.topics import PAYMENTS_REQUESTED
from services.settings import Settings
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration


async def test_concurrent_records_are_each_acknowledged(gw_settings: Settings) -> None:
    publisher = Publisher(gw_settings)
    run = uuid.uuid4().hex
    values = [f"{run}-{i}".encode() for i in range(300)]
    await asyncio.gather(
        *(publisher.publish(PAYMENTS_REQUESTED, f"payer-{i % 7}", v) for i, v in enumerate(values))
    )
    assert publisher.waiting == 0 and publisher.idle.is_set()
    await publisher.close()

    found = read_all(gw_settings, gw_settings.topic(PAYMENTS_REQUESTED))
    mine = [m for m in found if (m.value() or b"").startswith(run.encode())]
    assert sorted(m.value() or b"" for m in mine) == sorted(values)
    # one partition per payer: a payer's records keep their order
    by_key: dict[bytes, list[int]] = {}
    for m in mine:
        by_key.setdefault(m.key() or b"", []).append(int((m.value() or b"").split(b"-")[-1]))
    assert all(seq == sorted(seq) for seq in by_key.values())


async def test_a_broker_that_never_answers_is_not_published(stack_healthy: Settings) -> None:
    nowhere = stack_healthy.model_copy(
        update={"kafka_port": free_port(stack_healthy.host), "connect_timeout_s": 0.5}
    )
    publisher = Publisher(nowhere)
    started = time.monotonic()
    with pytest.raises(NotPublished):
        await publisher.publish(PAYMENTS_REQUESTED, "payer", b"lost")
    assert time.monotonic() - started < publisher.timeout_s
    await publisher.close()
    assert publisher.waiting == 0
