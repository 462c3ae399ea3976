"""Offsets are committed only past records that were handled.

Faust commits, per partition, the end of the first run of consecutive acked
offsets, after checking that the run starts right after the committed offset.
The check (faust-streaming 0.15, ``Consumer._new_offset``) is off by one, and
skipped when the committed offset is 0, so one record never acked at the head
is committed over. Faust does skip records around a rebalance (a record of the
previous generation, or read while flow control is off, is dropped without
being acked) and the next one is then acked: the skipped record is lost. Seen
in the fault suite as ``chain.events`` records committed without reaching the
reconciler, leaving their payments SUBMITTED though paid.

Faust also acks, as a "gap", the offsets between two records it read out of
order (a prefetched record delivered before the ones a seek reads again), and
then drops the older ones when they come (``Consumer._drain_messages`` skips
offsets below the last read one).

The offsets a commit covers leave the acked list only once they are
committed (the next ``_new_offset`` drops what lies below the committed
offset): a commit the worker skips (its writes not yet in Kafka,
``streams/writes.py``) is tried again with the same offsets.

``install`` makes the head check exact (nothing is committed while the record
at the committed offset is not acked) and stops the gap filling (the engine's
topics are not compacted and carry no transaction markers: an offset jump is
never a gap). A record skipped either way holds its partition's commit back;
the partition watchdog (``streams/watchdog.py``) sees the records after the
committed offset and restarts the worker, which reads them again (handlers are
idempotent) instead of losing them.
"""

from __future__ import annotations

import bisect
import logging
from typing import Any

from faust.transport.consumer import Consumer
from faust.utils.functional import consecutive_numbers

log = logging.getLogger("paystream.streams")


def next_commit(acked: list[int], committed: int | None) -> tuple[int | None, int]:
    """The offset to commit for a partition (None: nothing yet) and how many of
    the sorted ``acked`` offsets it covers. ``committed``: the offset committed
    last, the next one to read (None: none yet this assignment)."""
    if not acked:
        return None, 0
    if committed is not None and acked[0] > committed:
        return None, 0  # the record at the committed offset was never acked
    batch = next(consecutive_numbers(acked))
    return batch[-1] + 1, len(batch)


def _new_offset(self: Any, tp: Any) -> int | None:
    acked: list[int] = self._acked[tp]
    committed: int | None = self._committed_offset[tp]
    if committed is not None and acked:  # drop what a commit covered
        acked.sort()
        done = bisect.bisect_left(acked, committed)
        if done:
            self._acked_index[tp].difference_update(acked[:done])
            acked[:done] = []
    if not acked:
        return None
    gap_for_tp = self._gap[tp]
    if gap_for_tp:  # offsets Kafka will never deliver (transactions, compaction)
        max_offset = max(acked)
        candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
        if candidates:
            filled = [o for entry in candidates for o in range(entry.begin, entry.end)]
            acked.extend(filled)
            gap_for_tp.chop(0, max(filled[-1], max_offset + 1))
    acked.sort()
    offset, _ = next_commit(acked, committed)
    return offset


async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    """Faust treats offsets it did not see between two records as a gap and
    acks them. The engine's topics have none (not compacted, no transactions):
    such a jump is records delivered out of order around a rebalance (a
    prefetched one first), and acking the ones before it would lose them."""
    log.warning(
        "%s: offsets %s to %s not delivered yet; not acking them", tp, offset_from, offset_to - 1
    )


def install() -> None:
    """Use the exact head check, and no gap filling, in every Faust consumer of
    this process."""
    Consumer._new_offset = _new_offset  # type: ignore[method-assign]
    Consumer._add_gap = _add_gap  # type: ignore[method-assign]
