"""The worker's table store: Faust's in-memory store, which reads a
partition's changelog in bulk when the partition becomes active here.

Faust's recovery reads a changelog record by record through its consumer
(a task and a ``wait_first`` per record, and every partition's remaining
offsets computed on each): about 13,000 records a second, so a worker with
a million payments in its tables took 80 s to serve again. This store reads
each newly active partition's changelog from its start to its current end
with one confluent-kafka consumer in a thread (the records exactly as Faust
would apply them: the table's own key and value deserialisers, a ``None``
value deletes), then hands Faust's recovery the last offset it applied
(``persisted_offset``), once: the recovery reads only what was written
since. A partition that stays active keeps its data (Faust's recovery
continues from its own offset), and one that leaves is dropped by Faust's
in-memory store when the recovery completes, as before.

If the bulk read fails (the broker does not answer in time), the store
drops what it read of that partition and Faust's recovery reads the whole
changelog itself. Registered with Faust as the ``paystream://`` store (the
``faust.stores`` entry point in ``pyproject.toml``).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from faust.stores import memory
from faust.types import TP

log = logging.getLogger("paystream.streams")

READ_TIMEOUT_S = 120.0  # the whole bulk read of one rebalance
POLL_BATCH = 10_000
POLL_WAIT_S = 0.1  # a poll returns once it has POLL_BATCH records or after this


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's
    ``malloc_trim``; elsewhere nothing). The reader's prefetched records,
    freed when it closes, stay in the worker's RSS otherwise: 1,553 MiB
    against 670 after reading 1,000,000 packed payments (docs/performance.md)."""
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def bootstrap(app: Any) -> str:
    """The brokers of a Faust app, as confluent-kafka names them."""
    return ",".join(f"{url.host}:{url.port}" for url in app.conf.broker)


class ChangelogReader:
    """Every record of some partitions, from their start to their end when
    the reader was made, in order, a batch at a time (``next_batch``; each
    call blocks: run it in a thread). Raises ``KafkaException`` on a broker
    error or past ``timeout_s``."""

    def __init__(self, brokers: str, tps: Iterable[TP], timeout_s: float = READ_TIMEOUT_S) -> None:
        self._deadline = time.monotonic() + timeout_s
        self._timeout_s = timeout_s
        self._consumer = Consumer(
            {
                "bootstrap.servers": brokers,
                "group.id": "paystream-preload",  # partitions assigned: never joins nor commits
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.max.bytes": 64 * 2**20,
                "max.partition.fetch.bytes": 16 * 2**20,
                "queued.max.messages.kbytes": 256 * 1024,
                "queued.min.messages": 1_000_000,  # prefetch: 2.5 s for 1M records against 6 s
                "socket.timeout.ms": 10_000,
            }
        )
        self.last: dict[TP, int] = {}  # the offset each partition is read to
        try:
            for tp in tps:
                where = TopicPartition(tp.topic, tp.partition)
                low, high = self._consumer.get_watermark_offsets(where, timeout=10)
                if high > low:
                    self.last[tp] = high - 1
            self._left = {(tp.topic, tp.partition): tp for tp in self.last}
            self._consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in self._left])
        except KafkaException:
            self._consumer.close()
            raise

    def next_batch(self) -> list[tuple[int, bytes | None, bytes | None]] | None:
        """Up to ``POLL_BATCH`` records as (partition, key, value); None once
        every partition is read to its end."""
        if not self._left:
            return None
        if time.monotonic() > self._deadline:
            raise KafkaException(f"changelogs not read to their end in {self._timeout_s:.0f} s")
        batch = []
        for msg in self._consumer.consume(POLL_BATCH, POLL_WAIT_S):
            where = (str(msg.topic()), int(msg.partition() or 0))
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                self._left.pop(where, None)
                continue
            tp = self._left.get(where)
            if tp is None:
                continue  # read to its end already
            batch.append((tp.partition, msg.key(), msg.value()))
            if int(msg.offset() or 0) >= self.last[tp]:
                del self._left[where]
        return batch

    def close(self) -> None:
        self._consumer.close()


class Store(memory.Store[Any, Any]):
    """Faust's in-memory store, loaded in bulk (see the module)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._whole: set[TP] = set()  # active partitions whose every record is applied here
        self._read_to: dict[TP, int] = {}  # for Faust's recovery, taken once

    def persisted_offset(self, tp: TP) -> int | None:
        return self._read_to.pop(tp, None)

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        mine = self.table.changelog_topic.get_topic_name()
        active = {tp for tp in self.app.assignor.assigned_actives() if tp.topic == mine}
        self._whole &= active
        self._read_to.clear()
        todo = active - self._whole
        if not todo:
            return
        began, records = time.monotonic(), 0
        self._drop({tp.partition for tp in todo})
        try:
            reader = await asyncio.to_thread(ChangelogReader, bootstrap(self.app), todo)
            records = await self._load(reader)
        except KafkaException as exc:
            log.warning("%s: bulk read failed (%s); Faust's recovery reads it all", mine, exc)
            self._drop({tp.partition for tp in todo})
            return
        finally:
            trim_heap()
        self._read_to.update(reader.last)
        self._whole |= todo
        log.info(
            "%s: %d records of %d partitions read in bulk in %.1f s",
            mine,
            records,
            len(todo),
            time.monotonic() - began,
        )

    async def _load(self, reader: ChangelogReader) -> int:
        """Apply every batch of ``reader`` (the next one is read meanwhile);
        the records applied."""
        records = 0
        reading = asyncio.ensure_future(asyncio.to_thread(reader.next_batch))
        try:
            while (batch := await reading) is not None:
                reading = asyncio.ensure_future(asyncio.to_thread(reader.next_batch))
                self._apply(batch)
                records += len(batch)
            return records
        finally:
            await asyncio.gather(reading, return_exceptions=True)  # its thread uses the consumer
            reader.close()

    def _drop(self, partitions: set[int]) -> None:
        """Forget what this store holds of ``partitions`` (left from an earlier
        assignment, or half read): one pass over the keys."""
        stale = [k for k, p in self._key_partition.items() if p in partitions]
        for key in stale:
            self.data.pop(key, None)
            del self._key_partition[key]

    def _apply(self, records: list[tuple[int, bytes | None, bytes | None]]) -> None:
        """Apply changelog records as Faust's recovery does: the changelog's
        deserialisers, then the table's ``_to_key`` (a windowed key comes as
        a JSON list and is kept as a tuple) and ``_to_value``."""
        loads_key = self.app.serializers.loads_key
        loads_value = self.app.serializers.loads_value
        table: Any = self.table  # a faust Collection: its _to_key and _to_value
        to_key, to_value = table._to_key, table._to_value
        data, where = self.data, self._key_partition
        key_type, key_ser = self.key_type, self.key_serializer
        value_type, value_ser = self.value_type, self.value_serializer
        for partition, raw_key, raw_value in records:
            key = to_key(loads_key(key_type, raw_key, serializer=key_ser))
            if raw_value is None:
                data.pop(key, None)
                where.pop(key, None)
            else:
                data[key] = to_value(loads_value(value_type, raw_value, serializer=value_ser))
                where[key] = partition
