"""In-memory indexes over the worker's tables, so that periodic work reads
what it needs without scanning whole tables (see ``streams/retention.py``).

``TableIndex`` follows a table's writes (``ModelTable`` notes each one): the
keys in the statuses the timers look for, and per partition a heap of the
entries that expire. It is rebuilt by one scan after the worker's partitions
change (a restart or a rebalance restores tables from their changelogs
without passing through it), never periodically: a step at a time in the
background (``begin``, then ``ModelTable.rebuild_step``), the rest at once
when a reader cannot wait.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.partitioning import partition_for
from services.settings import Settings
from streams.state import TERMINAL, Status

Raw = Mapping[str, Any]
Expiry = Callable[[Raw], float | None]  # epoch seconds when an entry expires (None: never)


@dataclass
class TableIndex:
    """The keys of a table by watched status, and its expiring entries."""

    partitions: int
    expiry: Expiry
    watched: frozenset[str] = frozenset()
    by_status: dict[str, set[str]] = field(default_factory=dict)
    due: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    fresh: bool = False
    pending: list[str] | None = None  # the keys a rebuild under way has still to scan

    def __post_init__(self) -> None:
        self.by_status = {s: set() for s in self.watched}

    def note(self, key: str, raw: Raw | None) -> None:
        """``key`` was written (``raw`` None: deleted)."""
        status = raw.get("status") if raw is not None else None
        for watched, keys in self.by_status.items():
            if watched == status:
                keys.add(key)
            else:
                keys.discard(key)
        if raw is not None and (expires := self.expiry(raw)) is not None:
            home = partition_for(key.split(":", 1)[0], self.partitions)  # payer:payment id
            heapq.heappush(self.due.setdefault(home, []), (expires, key))

    def invalidate(self) -> None:
        self.fresh = False
        self.pending = None

    def begin(self, keys: list[str]) -> None:
        """Start a rebuild over ``keys`` (the table's keys now). The writes
        noted while it goes on count; each key left is read when its turn
        comes, as it is then."""
        self.__post_init__()
        self.due = {}
        self.pending = keys

    def keys(self, status: str) -> set[str]:
        return set(self.by_status[status])

    def expired(self, partition: int, now_s: float, limit: int) -> list[str]:
        """Up to ``limit`` keys of ``partition`` noted as expired by ``now_s``
        (the caller checks each one's current value: a key may have been
        written again, or deleted, since)."""
        heap = self.due.get(partition)
        out: list[str] = []
        while heap and heap[0][0] <= now_s and len(out) < limit:
            out.append(heapq.heappop(heap)[1])
        return out


def _epoch_s(text: object) -> float:
    return datetime.fromisoformat(str(text)).timestamp()


def payment_expiry(settings: Settings) -> Expiry:
    terminal = {s.value for s in TERMINAL}

    def expiry(raw: Raw) -> float | None:
        if raw.get("status") not in terminal:
            return None
        return _epoch_s(raw["requested_at"]) + settings.payment_retention_s

    return expiry


def retired_expiry(settings: Settings) -> Expiry:
    def expiry(raw: Raw) -> float | None:
        return _epoch_s(raw["requested_at"]) + settings.payment_id_memory_s

    return expiry


# The payment statuses the timers look for (held payments): the sweeper's
# SCORED and SUBMITTED, the review expiry's REVIEW.
WATCHED_STATUSES = (Status.SCORED.value, Status.SUBMITTED.value, Status.REVIEW.value)


def payments_index(settings: Settings) -> TableIndex:
    watched = frozenset(WATCHED_STATUSES)
    return TableIndex(settings.kafka_partitions, payment_expiry(settings), watched)


def retired_index(settings: Settings) -> TableIndex:
    return TableIndex(settings.kafka_partitions, retired_expiry(settings))
