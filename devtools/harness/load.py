"""The one load generator, for the demo, the bench and the pipeline tests.

Each request is a ``PaymentRequested`` (``schemas/payments.py``), validated and
serialised by the model itself: the load cannot drift from the wire contract,
and a request the engine would refuse fails here, in the generator, not as a
rejection counted in the results. Optional fields that are not set are left out
of the JSON, as an upstream producer that does not know them would.

Requests are published open loop at a fixed offered rate (a slow pipeline shows
up as latency, not as a slower generator), or as fast as possible.
``requested_at`` is stamped when each request is built, right before it is
sent, so the latencies the worker computes from it start at the send.

Cost, measured: 20,000 requests as fast as possible into a scratch topic of
the local stack's Kafka (2 cores, three rounds each) go out at about 36,000 a
second both with the hand-built dict and orjson this replaced and with the
model; the generator's CPU (librdkafka's threads included) rose from about 11
to about 17 µs a request. At the few thousand requests a second the pipeline
takes, that is 2 % of a core, so every request is built and validated by the
model, with no shortcut (copying one validated template per payer and payee
instead measured only about 2 µs a request faster).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import KafkaError, Producer
from eth_account import Account

from schemas.payments import PaymentRequested
from schemas.topics import PAYMENTS_REQUESTED
from services.bootstrap import kafka_producer_config
from services.errors import BrokerUnavailable
from services.settings import Settings

Progress = Callable[[int], None]

CURRENCY = "PTUSD"
FLUSH_TIMEOUT_S = 60.0
QUEUE_FULL_TRIES = 1_000  # x 50 ms of polling for delivery reports
# librdkafka batches for 5 ms into requests of up to 256 KiB: thousands of
# small records a second in a few produce requests, with little added latency.
# Only a failed delivery calls back into Python, not every record.
PRODUCER_EXTRA: dict[str, object] = {
    "linger.ms": 5,
    "batch.size": 262_144,
    "delivery.report.only.error": True,
}


def new_payees(count: int) -> list[str]:
    """Fresh checksummed addresses that hold nothing yet."""
    return [str(Account.create().address) for _ in range(count)]


def request(
    payer: str, payee: str, amount: int, merchant_id: str | None = None
) -> PaymentRequested:
    """A request with a new payment id, requested now."""
    return PaymentRequested(
        payment_id=uuid.uuid4(),
        payer_account=payer,
        payee_address=payee,
        amount=amount,
        currency=CURRENCY,
        merchant_id=merchant_id,
        requested_at=datetime.now(UTC),
    )


def request_body(payer: str, payee: str, amount: int) -> dict[str, object]:
    """A request as the JSON object that goes on the topic (a test may alter it
    to send what the model would refuse)."""
    body: dict[str, object] = request(payer, payee, amount).model_dump(
        mode="json", exclude_none=True
    )
    return body


def encode(req: PaymentRequested) -> tuple[bytes, bytes]:
    """(key, value) of a request's record: keyed by payer, so one payer's
    requests stay in order on one partition."""
    return req.payer_account.encode(), req.model_dump_json(exclude_none=True).encode()


@dataclass(frozen=True)
class Sent:
    ids: list[str]
    started_s: float  # epoch seconds of the first send


@dataclass
class LoadGenerator:
    """Requests from ``payers`` (in turn) to ``payees`` (at random), amounts
    uniform in 1..``max_amount``; ``seed`` fixes the payees and amounts chosen
    (payment ids are always new: runs on the same topics never collide). A
    payee in ``merchant_of`` is paid as that merchant's payout address (the
    request names the merchant)."""

    settings: Settings
    payers: Sequence[str]
    payees: Sequence[str]
    max_amount: int
    seed: int = 11
    merchant_of: dict[str, str] = field(default_factory=dict)  # payee -> merchant id
    record_bytes: int = 0  # mean size of the last publish's records
    _producer: Producer = field(init=False, repr=False)
    _failures: list[KafkaError] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.payers or not self.payees:
            raise ValueError("the load needs at least one payer and one payee")
        self._rng = random.Random(self.seed)  # noqa: S311 - load, not secrets
        self._next_payer = 0
        self._producer = Producer(
            {
                **kafka_producer_config(self.settings),
                **PRODUCER_EXTRA,
                "on_delivery": self._on_delivery,
            }
        )

    def _on_delivery(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            self._failures.append(err)

    def next_request(self) -> PaymentRequested:
        payer = self.payers[self._next_payer % len(self.payers)]
        self._next_payer += 1
        payee = self._rng.choice(self.payees)
        amount = self._rng.randint(1, self.max_amount)
        return request(payer, payee, amount, self.merchant_of.get(payee))

    def publish(
        self,
        rate_per_s: float | None,
        duration_s: float | None = None,
        count: int | None = None,
        progress: Progress | None = None,
    ) -> Sent:
        """Publish for ``duration_s`` seconds or ``count`` requests (whichever is
        given) at ``rate_per_s`` (None: as fast as possible); every request is
        delivered (BrokerUnavailable otherwise) when this returns."""
        if (duration_s is None) == (count is None):
            raise ValueError("give a duration or a count")
        if rate_per_s is None and count is None:
            raise ValueError("as fast as possible needs a count")
        total = count if count is not None else round((rate_per_s or 0) * (duration_s or 0))
        topic = self.settings.topic(PAYMENTS_REQUESTED)
        ids: list[str] = []
        size = 0
        start, started_s = time.monotonic(), time.time()
        while len(ids) < total:
            due = total if rate_per_s is None else int((time.monotonic() - start) * rate_per_s) + 1
            burst = min(total, due) - len(ids)
            for _ in range(burst):
                req = self.next_request()
                key, value = encode(req)
                self._produce(topic, key, value)
                ids.append(str(req.payment_id))
                size += len(value)
            self._producer.poll(0)
            if progress is not None and burst:
                progress(burst)
            if rate_per_s is not None and len(ids) < total:
                time.sleep(max(0.0, start + len(ids) / rate_per_s - time.monotonic()))
        self._flush(topic)
        self.record_bytes = size // max(len(ids), 1)
        return Sent(ids, started_s)

    def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        for _ in range(QUEUE_FULL_TRIES):
            try:
                self._producer.produce(topic, key=key, value=value)
                return
            except BufferError:  # the local queue is full: let it drain
                self._producer.poll(0.05)
        raise BrokerUnavailable(f"the producer's queue to {topic} stayed full for 50 s")

    def _flush(self, topic: str) -> None:
        """Wait for every delivery report; BrokerUnavailable if a record is still
        queued after ``FLUSH_TIMEOUT_S`` or was refused."""
        left = self._producer.flush(FLUSH_TIMEOUT_S)
        failed, self._failures = self._failures, []
        if left:
            raise BrokerUnavailable(
                f"{left} requests to {topic} not delivered within {FLUSH_TIMEOUT_S:.0f} s"
            )
        if failed:
            raise BrokerUnavailable(f"{len(failed)} requests to {topic} not delivered: {failed[0]}")
