"""The bench's load generator: payment requests published open loop at a fixed
offered rate (a slow pipeline shows up as latency, not as a slower generator),
or as fast as possible. ``requested_at`` is stamped when each request is sent."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from confluent_kafka import Producer

from schemas.topics import PAYMENTS_REQUESTED
from services.bootstrap import kafka_producer_config
from services.errors import BrokerUnavailable
from services.settings import Settings

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Sent:
    ids: list[str]
    started_s: float  # epoch seconds of the first send


@dataclass
class LoadGenerator:
    settings: Settings
    payers: Sequence[str]
    payees: Sequence[str]
    max_amount: int
    seed: int = 11

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - load, not secrets
        self._next_payer = 0
        self.record_bytes = 0  # mean size of the last phase's requests
        self._producer = Producer(
            {**kafka_producer_config(self.settings), "linger.ms": 5, "batch.size": 262_144}
        )

    def _request(self) -> tuple[str, bytes, bytes]:
        payer = self.payers[self._next_payer % len(self.payers)]
        self._next_payer += 1
        payment_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        body = {
            "payment_id": payment_id,
            "payer_account": payer,
            "payee_address": self._rng.choice(self.payees),
            "amount": self._rng.randint(1, self.max_amount),
            "currency": "PTUSD",
            "requested_at": datetime.now(UTC).isoformat(),
        }
        return payment_id, payer.encode(), orjson.dumps(body)

    def publish(
        self,
        rate_per_s: float | None,
        duration_s: float | None = None,
        count: int | None = None,
        progress: Progress | None = None,
    ) -> Sent:
        """Publish for ``duration_s`` seconds or ``count`` requests (whichever is
        given) at ``rate_per_s`` (None: as fast as possible)."""
        if (duration_s is None) == (count is None):
            raise ValueError("give a duration or a count")
        if rate_per_s is None and count is None:
            raise ValueError("as fast as possible needs a count")
        total = count if count is not None else round((rate_per_s or 0) * (duration_s or 0))
        topic = self.settings.topic(PAYMENTS_REQUESTED)
        ids: list[str] = []
        size = 0
        start = time.monotonic()
        started_s = time.time()
        while len(ids) < total:
            due = (
                total
                if rate_per_s is None
                else min(total, int((time.monotonic() - start) * rate_per_s) + 1)
            )
            burst = due - len(ids)
            for _ in range(burst):
                payment_id, key, value = self._request()
                self._produce(topic, key, value)
                ids.append(payment_id)
                size += len(value)
            self._producer.poll(0)
            if progress is not None and burst:
                progress(burst)
            if rate_per_s is not None and len(ids) < total:
                time.sleep(max(0.0, start + len(ids) / rate_per_s - time.monotonic()))
        if self._producer.flush(60) != 0:
            raise BrokerUnavailable("could not deliver every request to Kafka within 60 s")
        self.record_bytes = size // max(len(ids), 1)
        return Sent(ids, started_s)

    def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        for _ in range(1_000):
            try:
                self._producer.produce(topic, key=key, value=value)
                return
            except BufferError:  # the local queue is full: let it drain
                self._producer.poll(0.05)
        raise BrokerUnavailable("the producer's queue stayed full for 50 s")
