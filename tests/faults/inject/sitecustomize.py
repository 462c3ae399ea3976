"""Faults only a worker's own process can inject.

1. Faust no longer fetching a partition it was given, which faust-streaming
issue #629 leaves behind after some rebalances (the partition assigned, its
records waiting, never fetched).
2. The worker SIGKILLed between the chain listener's send and its cursor save.
3. Table changes slow to reach Kafka (below).

Python imports this module at start-up when this directory is on
``PYTHONPATH``; the scenario sets that for its workers only
(``tests/faults/test_crashes.py``). With ``PAYSTREAM_FAULT_UNFETCHED`` set to
``TOPIC:PARTITION:AFTER_S``, the worker's Faust consumer stops fetching that
partition of ``TOPIC`` (without the prefix) ``AFTER_S`` seconds after the worker
starts, as Faust does for a paused partition. It happens once per scenario:
the file ``PAYSTREAM_FAULT_UNFETCHED_MARK`` records that it did, and a restarted
worker leaves the partition alone.
"""

from __future__ import annotations

import os

SPEC = os.environ.get("PAYSTREAM_FAULT_UNFETCHED")
MARK = os.environ.get("PAYSTREAM_FAULT_UNFETCHED_MARK", "")


def _install(spec: str, mark: str) -> None:
    import asyncio
    import logging
    import time
    from pathlib import Path
    from typing import Any

    from faust.types import TP

    import streams.app

    topic, partition, after_s = spec.split(":")
    original = streams.app.create_app
    started = time.monotonic()
    fired: list[TP] = [TP("", 0)] if Path(mark).exists() else []  # once per scenario
    log = logging.getLogger("paystream.faults")

    def create_app(settings: Any, *parts: Any, **options: Any) -> Any:
        app = original(settings, *parts, **options)
        tp = TP(settings.topic(topic), int(partition))

        @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
        async def stop_fetching() -> None:
            if fired or time.monotonic() - started < float(after_s):
                return
            if tp in app.assignor.assigned_actives():
                fired.append(tp)
                await asyncio.to_thread(Path(mark).write_text, f"{tp}\n")
                log.warning("FAULT: Faust no longer fetches %s", tp)
                app.consumer.pause_partitions({tp})

        return app

    streams.app.create_app = create_app


if SPEC and MARK:
    _install(SPEC, MARK)


# 2. The worker SIGKILLed between the chain listener's send of settlements and
# its cursor save (audit finding 3). With ``PAYSTREAM_FAULT_KILL_AT_CURSOR``
# set to ``AFTER_S``, the first cursor save at least ``AFTER_S`` seconds after
# start-up whose newest block holds settlements (their records are already in
# Kafka) kills the worker instead of saving; once per scenario (the file
# ``PAYSTREAM_FAULT_KILL_AT_CURSOR_MARK``).
KILL_AFTER_S = os.environ.get("PAYSTREAM_FAULT_KILL_AT_CURSOR")
KILL_MARK = os.environ.get("PAYSTREAM_FAULT_KILL_AT_CURSOR_MARK", "")


def _install_kill(after_s: float, mark: str) -> None:
    import logging
    import signal
    import time
    from pathlib import Path
    from typing import Any

    from services.cache.cursor import RedisCursorStore

    original = RedisCursorStore.save
    started = time.monotonic()
    fired = Path(mark).exists()  # a restarted worker leaves its cursor alone
    log = logging.getLogger("paystream.faults")

    async def save(self: Any, cursor: Any) -> None:
        newest: Any = cursor.recent[-1] if cursor.recent else None
        settled = newest is not None and any(e.sequence is not None for e in newest.events)
        if settled and not fired and time.monotonic() - started >= after_s:
            Path(mark).write_text(f"block {newest.number}\n")  # noqa: ASYNC240 - it dies next
            log.warning("FAULT: killed before saving the cursor past block %s", newest.number)
            os.kill(os.getpid(), signal.SIGKILL)
        await original(self, cursor)

    RedisCursorStore.save = save  # type: ignore[method-assign]


if KILL_AFTER_S and KILL_MARK:
    _install_kill(float(KILL_AFTER_S), KILL_MARK)


# 3. Kafka slow to take the tables' changes. With ``PAYSTREAM_FAULT_SLOW_CHANGELOG``
# set to ``DELAY_S``, every changelog record leaves Faust's producer buffer
# ``DELAY_S`` after it was queued (records flow at the same rate, each one
# late): what a busy event loop or a full aiokafka batch does for a moment.
# The handled records' other writes (their topic records) are not delayed.
SLOW_CHANGELOG_S = os.environ.get("PAYSTREAM_FAULT_SLOW_CHANGELOG")


def _install_slow_changelog(delay_s: float) -> None:
    import asyncio
    import logging
    import time
    from typing import Any

    from faust.transport.producer import ProducerBuffer

    put, send_pending = ProducerBuffer.put, ProducerBuffer._send_pending
    log = logging.getLogger("paystream.faults")
    queued: dict[int, float] = {}  # id of the future -> when it was queued

    def put_late(self: Any, fut: Any) -> None:
        if not queued:
            log.warning("FAULT: changelog records leave the buffer %.1f s late", delay_s)
        queued[id(fut)] = time.monotonic()
        put(self, fut)

    async def send_late(self: Any, fut: Any) -> None:
        at = queued.pop(id(fut), None)
        if at is not None:
            await asyncio.sleep(max(0.0, at + delay_s - time.monotonic()))
        await send_pending(self, fut)

    ProducerBuffer.put = put_late  # type: ignore[method-assign]
    ProducerBuffer._send_pending = send_late  # type: ignore[method-assign]


if SLOW_CHANGELOG_S:
    _install_slow_changelog(float(SLOW_CHANGELOG_S))
