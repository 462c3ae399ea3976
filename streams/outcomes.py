"""What a stage's ``handle`` returns: records to publish, or a dead letter.

``handle`` functions never raise for bad input: a business rejection is a
``payments.failed`` record in ``emits``; an undecodable record is a
``dead_letter`` reason (the agent sends the original bytes to the DLQ). Only a
broken invariant raises, which stops the worker without acking.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from schemas.base import Record


@dataclass(frozen=True)
class Emit:
    topic: str
    key: str
    value: Record | str  # a record, or a record's exact JSON when re-published
    partition: int | None = None  # None: by key (murmur2, as Kafka's Java clients)

    def payload(self) -> bytes:
        text = self.value if isinstance(self.value, str) else self.value.model_dump_json()
        return text.encode()


@dataclass(frozen=True)
class Outcome:
    emits: tuple[Emit, ...] = ()
    dead_letter: str | None = None
    note: str = ""


def dead(reason: str) -> Outcome:
    return Outcome(dead_letter=reason, note="dead-letter")


def ignored(reason: str) -> Outcome:
    return Outcome(note=reason)


def merged(outcomes: list[Outcome]) -> Outcome:
    """The outcomes of one record's decisions (one per payment or event it
    carries) as the record's: their records in order, their notes counted."""
    if len(outcomes) == 1:
        return outcomes[0]
    notes = Counter(o.note for o in outcomes)
    note = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in sorted(notes.items()))
    dead_letters = [o.dead_letter for o in outcomes if o.dead_letter is not None]
    return Outcome(
        emits=tuple(e for o in outcomes for e in o.emits),
        dead_letter="; ".join(dead_letters) if dead_letters else None,
        note=note,
    )


def republish(outputs: dict[str, str], topics: tuple[str, ...], key: str, note: str) -> Outcome:
    """A replayed input: publish again what was published for it (identical records)."""
    emits = tuple(Emit(t, key, outputs[t]) for t in topics if t in outputs)
    return Outcome(emits=emits, note=note)
