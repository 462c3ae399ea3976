"""What a stage's ``handle`` returns: records to publish, or a dead letter.

``handle`` functions never raise for bad input: a business rejection is a
``payments.failed`` record in ``emits``; an undecodable record is a
``dead_letter`` reason (the agent sends the original bytes to the DLQ). Only a
broken invariant raises, which stops the worker without acking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.base import Record


@dataclass(frozen=True)
class Emit:
    topic: str
    key: str
    value: Record
    partition: int | None = None  # None: by key (murmur2, as Kafka's Java clients)


@dataclass(frozen=True)
class Outcome:
    emits: tuple[Emit, ...] = ()
    dead_letter: str | None = None
    note: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def dead(reason: str) -> Outcome:
    return Outcome(dead_letter=reason, note="dead-letter")


def ignored(reason: str) -> Outcome:
    return Outcome(note=reason)
