"""Bounded state: what the periodic work reads without scanning whole tables,
and terminal payments leaving the ``payments`` table.

The sweeper (SCORED payments) and the review expiry (REVIEW) read the
``payments`` table's index (``streams/indexes.py``), never the whole table.

``Retention.tidy`` runs in the fraud agent after each request, in that
request's partition (table writes go to the changelog partition of the record
being handled): a few terminal payments whose ``requested_at`` is older than
``payment_retention_s`` are replaced by a ``RetiredPayment`` in the ``retired``
table (their id and request digest), and retired ids older than
``payment_id_memory_s`` are deleted. Each deletion is a tombstone that the
compacted changelog drops, so a restart replays what is retained, not the
history. Each request retires at most ``TIDY_PER_EVENT`` entries of each
table: more than one request adds, so the tables shrink to the horizon
whenever requests flow, and a partition nobody writes to does not grow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.settings import Settings
from streams.indexes import payment_expiry, retired_expiry
from streams.state import PaymentState, RetiredPayment
from streams.tables import ModelTable

TIDY_PER_EVENT = 16


@dataclass
class Retention:
    """Retires terminal payments past ``payment_retention_s`` and forgets retired
    ids past ``payment_id_memory_s``, a few per request (see the module)."""

    settings: Settings
    payments: ModelTable[PaymentState]
    retired: ModelTable[RetiredPayment]
    clock: Callable[[], datetime]
    retired_total: int = 0  # payments retired by this worker
    forgotten_total: int = 0  # retired ids deleted by this worker

    def tidy(self, partition: int) -> None:
        now_s = self.clock().timestamp()
        payment_expires = payment_expiry(self.settings)
        for key in self.payments.expired(partition, now_s, TIDY_PER_EVENT):
            raw = self.payments.raw(key)
            expires = payment_expires(raw) if raw is not None else None
            if raw is None or expires is None or expires > now_s:
                continue  # written again, or deleted, since it was noted
            self.retired[key] = RetiredPayment(
                request_digest=raw.get("request_digest"), requested_at=raw["requested_at"]
            )
            del self.payments[key]
            self.retired_total += 1
        id_expires = retired_expiry(self.settings)
        for key in self.retired.expired(partition, now_s, TIDY_PER_EVENT):
            raw = self.retired.raw(key)
            forget_at = id_expires(raw) if raw is not None else None
            if forget_at is None or forget_at > now_s:
                continue
            del self.retired[key]
            self.forgotten_total += 1
