"""Publishing requests to ``payments.requested`` from asyncio: an idempotent
confluent-kafka producer (murmur2: the partition Faust and Java clients pick
for the payer) whose delivery reports are awaited, so a payment is answered
only once Kafka has it."""

from __future__ import annotations

import asyncio
import contextlib

from confluent_kafka import KafkaError, Message, Producer

from services.bootstrap import kafka_producer_config
from services.errors import InfrastructureError
from services.settings import Settings


class NotPublished(InfrastructureError):
    """Kafka did not confirm the record (it may or may not have it)."""


POLL_EVERY_S = 0.001  # while records await their acknowledgement


class Publisher:
    """Delivery reports are served on the event loop: while records await
    theirs, the producer is polled every millisecond (no thread, so no hand-off
    between threads per record)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # A caller waits for each record: batching waits of at most 1 ms (the
        # engine's producers wait 5), and records queued meanwhile still batch.
        config = kafka_producer_config(settings) | {"linger.ms": 1}
        self.producer = Producer(config)
        self.timeout_s = int(str(config["message.timeout.ms"])) / 1000 + 5
        self.waiting = 0  # records produced and not yet reported
        self.idle = asyncio.Event()  # set while none is
        self.idle.set()
        self.polling: asyncio.TimerHandle | None = None

    def _poll(self) -> None:
        self.polling = None
        self.producer.poll(0)  # runs the reports due, here on the loop
        if self.waiting:
            self.polling = asyncio.get_running_loop().call_later(POLL_EVERY_S, self._poll)

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        """Write one record and wait for Kafka's acknowledgement (librdkafka
        reports every record within ``message.timeout.ms``)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def report(err: KafkaError | None, _msg: Message) -> None:
            self.waiting -= 1
            if not self.waiting:
                self.idle.set()
            if done.done():  # its caller stopped waiting
                return
            if err is None:
                done.set_result(None)
            else:
                done.set_exception(NotPublished(f"Kafka did not confirm the request: {err}"))

        try:
            self.producer.produce(
                self.settings.topic(topic), key=key.encode(), value=value, on_delivery=report
            )
        except BufferError as exc:
            raise NotPublished(f"the producer's queue is full: {exc}") from exc
        self.waiting += 1
        self.idle.clear()
        if self.polling is None:
            self.polling = loop.call_later(POLL_EVERY_S, self._poll)
        try:
            async with asyncio.timeout(self.timeout_s):
                await done
        except TimeoutError as exc:
            raise NotPublished("Kafka did not confirm the request in time") from exc

    def ready(self) -> bool:
        """Whether Kafka answers (the cluster's metadata within the connect timeout)."""
        try:
            self.producer.list_topics(timeout=self.settings.connect_timeout_s)
        except Exception:  # noqa: BLE001 - any failure means not ready
            return False
        return True

    async def close(self) -> None:
        """Once the records still awaiting their report have it (at most the
        delivery timeout)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout_s):
                await self.idle.wait()
        if self.polling is not None:
            self.polling.cancel()
