"""The rolling windows of ``/windows/``, kept in a Faust windowed table.

The table (``windows``: tumbling 1-s windows, expiring after ``EXPIRES_S``)
holds one ``Counts`` (``services/metrics/windows.py``) per stage, partition
and second under the key ``<stage>:<partition>``. A stage's outputs are
counted in memory first (``record``, from ``Runtime.observe``: agents and
timers alike); a timer merges them into the table every ``FLUSH_EVERY_S``:
one write per key and second, not one per payment.

A flush writes under ``<stage>:<p>`` to changelog partition ``p``, ``p``
being a partition of the table this worker actively owns: that worker is the
only one that writes the key, and a restarted worker, or the next owner of
``p``, restores it from the changelog (Faust's recovery) and goes on adding
to it. ``snapshot`` merges every key the worker holds (its active partitions
and its standby replicas of the others, applied as they come: with two
workers and Faust's one standby, all of them) and what it counted and has
not written yet. What was counted since the last flush is lost if the worker
dies: at most ``FLUSH_EVERY_S`` of counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import faust

from services.metrics.windows import WINDOWS_S, Counts, Result, summarize
from streams.scheduler import active_partitions, guarded
from streams.tables import changelog_topic

FLUSH_EVERY_S = 0.5
EXPIRES_S = max(WINDOWS_S) + 10  # a window older than this is dropped
PRUNE_EVERY_S = 10.0


class WindowStore(Protocol):
    """Where the per-second counts live: the Faust windowed table, or a dict in
    unit tests."""

    def get(self, key: str, second: int) -> bytes | None: ...

    def put(self, key: str, second: int, value: bytes, partition: int) -> None: ...

    def entries(self) -> Iterator[tuple[str, int, bytes]]: ...

    def drop_before(self, second: int) -> int: ...


class FaustWindowStore:
    """A Faust windowed table (``table.tumbling(1, expires=EXPIRES_S)``) of
    JSON bytes. Its entries are ``(key, (window start, window end))`` as
    Faust keeps them; ``put`` writes one to the worker's store and to the
    changelog partition it is given (Faust's item assignment would take the
    partition of a record being handled, and a timer handles none)."""

    def __init__(self, windowed: Any) -> None:
        self._table = windowed.table
        self._window = self._table.window

    def _entry(self, key: str, second: int) -> tuple[str, tuple[float, float]]:
        start, end = self._window.current(float(second))
        return key, (start, end)

    def get(self, key: str, second: int) -> bytes | None:
        value: bytes | None = self._table.data.get(self._entry(key, second))
        return value

    def put(self, key: str, second: int, value: bytes, partition: int) -> None:
        entry = self._entry(key, second)
        self._table.data[entry] = value
        self._table.send_changelog(partition, entry, value)

    def entries(self) -> Iterator[tuple[str, int, bytes]]:
        for stored_key, value in list(self._table.data.items()):
            key, (start, _end) = stored_key
            if value is not None:
                yield key, int(start), value

    def drop_before(self, second: int) -> int:
        """Forget the windows before ``second`` on this worker. Faust expires
        the windows this worker wrote itself; the ones restored from the
        changelog (which Kafka deletes after its retention) only this way."""
        data = self._table.data
        stale = [k for k in list(data.keys()) if k[1][0] < second]
        for stored_key in stale:
            data.pop(stored_key, None)
        return len(stale)


class StageWindows:
    def __init__(self, store: WindowStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._pending: dict[tuple[str, int], Counts] = {}  # (stage, second) -> not yet written
        self._pruned_at = clock()

    def record(self, stage: str, outcome: Result, latency_ms: float | None) -> None:
        slot = (stage, int(self._clock()))
        counts = self._pending.get(slot)
        if counts is None:
            counts = self._pending[slot] = Counts()
        counts.add(outcome, latency_ms)

    def flush(self, partition: int) -> None:
        """Merge what was counted since the last flush into the table under
        ``<stage>:<partition>`` (``partition``: one this worker actively owns)."""
        now = self._clock()
        pending, self._pending = self._pending, {}
        oldest = int(now) - EXPIRES_S
        for (stage, second), counts in pending.items():
            if second < oldest:
                continue  # its window has expired
            key = f"{stage}:{partition}"
            stored = self._store.get(key, second)
            if stored is not None:
                counts.merge(Counts.from_json(stored))
            self._store.put(key, second, counts.to_json(), partition)
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            self._store.drop_before(oldest)

    def snapshot(self) -> dict[str, Any]:
        """The windows per stage (``summarize``), from every partition this
        worker holds and what it has not written yet; ``partitions``: the
        partitions the table had counts of."""
        stored = [
            (key.rpartition(":")[0], int(key.rpartition(":")[2]), second, Counts.from_json(raw))
            for key, second, raw in self._store.entries()
        ]
        seconds = [(stage, second, counts) for stage, _, second, counts in stored]
        seconds += [(stage, second, counts) for (stage, second), counts in self._pending.items()]
        return {
            "stages": summarize(seconds, self._clock()),
            "partitions": sorted({partition for _, partition, _, _ in stored}),
        }


WINDOWS_TABLE = "windows"


def declare(app: Any, partitions: int, clock: Callable[[], float] = time.time) -> StageWindows:
    """The worker's windows, in its Faust windowed table ``windows``."""
    table = app.Table(
        WINDOWS_TABLE,
        partitions=partitions,
        value_type=bytes,  # Counts as JSON bytes; keys (<stage>:<partition>, window) as JSON
        standby_buffer_size=1,  # a standby applies each write at once (Faust's default: by 1,000)
        help="<stage>:<partition> per 1-s window -> Counts",
    )
    return StageWindows(FaustWindowStore(table.tumbling(1.0, expires=float(EXPIRES_S))), clock)


def register(app: faust.App, windows: StageWindows) -> None:
    """The flush, as a Faust timer, to the lowest partition of the table this
    worker actively owns (none while it owns none: the counts wait)."""
    owned = active_partitions(app, changelog_topic(app.conf.id, WINDOWS_TABLE))

    @app.timer(interval=FLUSH_EVERY_S)
    async def flush_windows() -> None:
        partitions = owned()
        if partitions:
            guarded("windows flush", lambda: windows.flush(min(partitions)))
