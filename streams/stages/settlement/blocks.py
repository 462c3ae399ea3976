"""When the chain's next block is due, learnt from the receipts of the
engine's own transactions. Pure: no asyncio and no chain here.

On a chain with a fixed block interval (anvil's ``--block-time``, most L2
sequencers) a transaction waits in the node's pool until the next block
however early it arrives. Sending each batch as soon as it is due only makes
more transactions for the same block, and once ``settle_inflight_max`` of them
are on their way a due batch waits for a block to free one, then for the block
after it: a whole block more. Sent together just before the block is due, the
same payments go as one fuller transaction into the same block.

A receipt naming block ``b`` that arrives at time ``t`` says block ``b`` was
mined at ``t`` or a little earlier (the receipt is polled). With the interval
``i``, the earliest ``t - b * i`` among the recent receipts is the best guess
of when block 0 would have been mined; block ``n`` is then due at that plus
``n * i``. A guess that is too early only sends a batch early; a block that
came earlier than guessed corrects the guess with its first receipt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

KEPT = 16  # blocks whose first receipt times are kept


@dataclass
class BlockClock:
    """The next block's due time, from the blocks the engine's receipts named.

    ``interval_s`` 0: the chain has no fixed interval (or mines on demand), and
    ``near`` always answers None: batches go when they are due, as they would
    without it. With no receipt within ``stale_s`` it answers None too, until
    the next receipt."""

    interval_s: float
    lead_s: float
    stale_s: float = 30.0
    seen: dict[int, float] = field(default_factory=dict)  # block -> first time a receipt named it

    def mined(self, block: int, at_s: float) -> None:
        """A receipt named ``block`` at ``at_s`` (monotonic seconds)."""
        if self.interval_s <= 0:
            return
        first = self.seen.get(block)
        if first is None or at_s < first:
            self.seen[block] = at_s
        if len(self.seen) > KEPT:
            del self.seen[min(self.seen)]

    def due_at(self, now_s: float) -> float | None:
        """When the first block after ``now_s`` is due (None: not known)."""
        if self.interval_s <= 0 or not self.seen:
            return None
        if now_s - max(self.seen.values()) > self.stale_s:
            return None
        zero = min(at - block * self.interval_s for block, at in self.seen.items())
        after = math.floor((now_s - zero) / self.interval_s) + 1
        return zero + after * self.interval_s

    def near(self, now_s: float) -> bool | None:
        """True within ``lead_s`` of the next block's due time, False before
        it, None when that time is not known."""
        due = self.due_at(now_s)
        return None if due is None else due - now_s <= self.lead_s
