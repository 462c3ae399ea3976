"""Faust's Kafka transport with two of its fixed costs removed (ADR 0014).

1. **Delivery without ``wait_first`` when it cannot block.** Faust's consumer
   hands every record to the conductor inside ``Service.wait_first(callback,
   suspend_flow.wait())``: four tasks and an ``asyncio.wait`` per record, so
   that a delivery blocked on flow control, a full producer buffer or a full
   stream queue can be cut short by a rebalance or a stop. When none of these
   can block (flow is on and not being suspended, the producer buffer is at
   or under its limit and no stream queue is full), the delivery runs to its
   end without yielding, so awaiting it directly does the same thing at a
   fraction of the cost. Otherwise Faust's own path runs.
2. **Fetch batching.** Faust builds its aiokafka consumer with
   ``fetch_max_wait_ms=1500`` and ``fetch_min_bytes=1``, with no setting for
   either: under a steady trickle every fetch brings back a record or two.
   The worker's consumer waits for ``faust_fetch_min_bytes`` or
   ``faust_fetch_max_wait_ms``, whichever comes first.

Both lean on faust-streaming 0.15.3's internals (the call site in
``Consumer._drain_messages``, the consumer's private fetch attributes);
``tests/unit/test_transport.py`` pins them, and ``docs/upstream/`` holds the
text of the pull request that would make this module unnecessary.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitResults

FAUST_VERSION = "0.15.3"  # the version whose internals this module relies on


class FetchTuning:
    """The fetch settings the worker's consumer uses (Faust has none)."""

    def __init__(self, min_bytes: int, max_wait_ms: int) -> None:
        self.min_bytes, self.max_wait_ms = min_bytes, max_wait_ms


class TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, its worker consumer built with the fetch tuning."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        tuning: FetchTuning | None = getattr(transport, "fetch_tuning", None)
        if tuning is not None:  # read by AIOKafkaConsumer.start() when it builds its fetcher
            consumer._fetch_min_bytes = tuning.min_bytes
            consumer._fetch_max_wait_ms = tuning.max_wait_ms
        return consumer


class FastConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer; a delivery that cannot block is awaited directly."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def delivery_cannot_block(self) -> bool:
        """True when the conductor's ``on_message`` would run to its end without
        yielding: flow is on (and not being suspended by a rebalance), the
        producer buffer is at or under its limit, no stream queue is full, and
        this consumer is neither stopping nor crashed."""
        app = self.app
        if self.suspend_flow.is_set() or self.should_stop or self._crashed.is_set():
            return False
        if not app.flow_control.is_active():
            return False
        buffer = app.producer.buffer
        if buffer.size > buffer.max_messages:
            return False
        return not any(channel.queue.full() for channel in app.topics)

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:  # noqa: ASYNC109 - mode's signature
        """The consumer's only ``wait_first``: ``(callback(message),
        suspend_flow.wait())`` for each record read (pinned by the unit test)."""
        if timeout is None and len(coros) == 2 and self.delivery_cannot_block():
            delivery, suspended = coros
            close = getattr(suspended, "close", None)
            if close is not None:
                close()  # never awaited: the delivery cannot be interrupted
            result = await delivery
            return WaitResults([delivery], [result], False)
        return await super().wait_first(*coros, timeout=timeout)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with the fast consumer and the fetch tuning."""

    Consumer = FastConsumer
    fetch_tuning: FetchTuning | None = None


def install(app: faust.App, fetch: FetchTuning) -> None:
    """Give ``app`` the tuned transport; call it before anything declares a
    topic, table or agent (they reach the transport through the conductor)."""
    transport = Transport(app.conf.broker_consumer, app)
    transport.fetch_tuning = fetch
    app.transport = transport
