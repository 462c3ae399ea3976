"""Publishing requests to ``payments.requested`` from asyncio: an idempotent
confluent-kafka producer (murmur2: the partition Faust and Java clients pick
for the payer) whose delivery reports are awaited, so a payment is answered
only once Kafka has it. A thread serves the producer's callbacks."""

from __future__ import annotations

import asyncio
import threading

from confluent_kafka import KafkaError, Message, Producer

from services.bootstrap import kafka_producer_config
from services.errors import InfrastructureError
from services.settings import Settings


class NotPublished(InfrastructureError):
    """Kafka did not confirm the record (it may or may not have it)."""


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # A caller waits for each record: batching waits of at most 1 ms (the
        # engine's producers wait 5), and records queued meanwhile still batch.
        config = kafka_producer_config(settings) | {"linger.ms": 1}
        self.producer = Producer(config)
        self.timeout_s = int(str(config["message.timeout.ms"])) / 1000 + 5
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="gateway-producer", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            self.producer.poll(0.1)

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        """Write one record and wait for Kafka's acknowledgement."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def report(err: KafkaError | None, _msg: Message) -> None:
            def settle() -> None:
                if done.done():
                    return
                if err is None:
                    done.set_result(None)
                else:
                    done.set_exception(NotPublished(f"Kafka did not confirm the request: {err}"))

            loop.call_soon_threadsafe(settle)

        try:
            self.producer.produce(
                self.settings.topic(topic), key=key.encode(), value=value, on_delivery=report
            )
        except BufferError as exc:
            raise NotPublished(f"the producer's queue is full: {exc}") from exc
        try:
            await asyncio.wait_for(done, self.timeout_s)
        except TimeoutError as exc:
            raise NotPublished("Kafka did not confirm the request in time") from exc

    def ready(self) -> bool:
        """Whether Kafka answers (the cluster's metadata within the connect timeout)."""
        try:
            self.producer.list_topics(timeout=self.settings.connect_timeout_s)
        except Exception:  # noqa: BLE001 - any failure means not ready
            return False
        return True

    def close(self) -> None:
        self.producer.flush(self.timeout_s)
        self.stopping.set()
        self.thread.join(timeout=5)
