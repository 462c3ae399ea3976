"""What reached each agent, fed by the agent shell and read by the
stalled-partition watchdog (``streams/watchdog.py``, which states the rule)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

Partition = tuple[str, int]


@dataclass
class Progress:
    """What reached each agent: per partition the last offset and when, per topic
    the last record and how many are in hand. Fed by the agent shell."""

    clock: Callable[[], float] = time.monotonic
    seen: dict[Partition, tuple[int, float]] = field(default_factory=dict)
    last_event: dict[str, float] = field(default_factory=dict)
    in_hand: dict[str, int] = field(default_factory=dict)
    busy_since: dict[str, float] = field(default_factory=dict)  # topic -> first in hand
    stall_s: float = 60.0

    @contextmanager
    def handling(self, topic: str, partition: int, offset: int) -> Iterator[None]:
        now = self.clock()
        self.seen[(topic, partition)] = (offset, now)
        self.last_event[topic] = now
        self.in_hand[topic] = self.in_hand.get(topic, 0) + 1
        self.busy_since.setdefault(topic, now)
        try:
            yield
        finally:
            self.in_hand[topic] -= 1
            self.last_event[topic] = self.clock()
            if not self.in_hand[topic]:
                del self.busy_since[topic]

    def agent_state(self, topic: str) -> str:
        """How the agent of ``topic`` is doing, for a log line."""
        now = self.clock()
        if self.in_hand.get(topic, 0):
            busy_s = now - self.busy_since.get(topic, now)
            return f"{self.in_hand[topic]} record(s) in hand for {busy_s:.0f} s"
        last = self.last_event.get(topic)
        return "no record yet" if last is None else f"idle for {now - last:.0f} s"

    def idle(self, topic: str, since: float, idle_s: float) -> bool:
        """No record of ``topic`` in hand, and none reached its agent for ``idle_s``."""
        if self.in_hand.get(topic, 0):
            return False
        return self.clock() - max(self.last_event.get(topic, 0.0), since) >= idle_s

    def stalled(
        self,
        ends: Mapping[Partition, int],
        committed: Mapping[Partition, int],
        since: float,
        idle_s: float,
    ) -> list[Partition]:
        """The partitions of ``ends`` that are stalled now (the rule is in
        ``streams/watchdog.py``); ``since``: when the last rebalance ended;
        ``committed``: the group's committed offsets."""
        lagging = self.lagging(ends, committed, since)
        return [tp for tp in lagging if self.idle(tp[0], since, idle_s)]

    def lagging(
        self, ends: Mapping[Partition, int], committed: Mapping[Partition, int], since: float
    ) -> dict[Partition, int]:
        """The partitions with records after the group's committed offset, none
        of which reached their agent for ``stall_s`` (since ``since`` at the
        earliest), busy agent or not: how many records wait on each.

        The committed offset, not what reached the agent: a record Faust skips
        around a rebalance (``streams/commits.py``) holds the commit back while
        later ones reach the agent, and only a restart reads it again."""
        now, out = self.clock(), {}
        for tp, end in ends.items():
            position = committed.get(tp)
            quiet_since = max(self.seen.get(tp, (0, 0.0))[1], since)
            if position is not None and end > position and now - quiet_since >= self.stall_s:
                out[tp] = end - position
        return out
