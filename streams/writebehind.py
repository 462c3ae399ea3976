"""A table seen through the writes of one record's decisions.

A record that carries several payments (a ``chain.submitted`` or
``chain.events`` record: one per partition-batch) is decided payment by
payment; a payer with several of them would have its balance written to the
table, and so to its changelog, once per payment. Through a ``WriteBehind``
each decision reads what the ones before it wrote, and the table gets each key
once, at ``flush()``: the stage flushes after the record's last decision, or
after the last that completed when one raises (what was decided is written,
as it was when each payment came in a record of its own).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Generic, TypeVar

V = TypeVar("V")
_GONE = object()  # a pending deletion


class WriteBehind(MutableMapping[str, V], Generic[V]):
    def __init__(self, table: MutableMapping[str, V]) -> None:
        self.table = table
        self.pending: dict[str, object] = {}

    def __getitem__(self, key: str) -> V:
        if key in self.pending:
            value = self.pending[key]
            if value is _GONE:
                raise KeyError(key)
            return value  # type: ignore[return-value]
        return self.table[key]

    def get(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        if key in self.pending:
            value = self.pending[key]
            return default if value is _GONE else value  # type: ignore[return-value]
        return self.table.get(key, default)

    def __setitem__(self, key: str, value: V) -> None:
        self.pending[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.pending[key] = _GONE

    def __contains__(self, key: object) -> bool:
        if key in self.pending:
            return self.pending[key] is not _GONE
        return key in self.table

    def __iter__(self) -> Iterator[str]:
        for key in self.table:
            if key not in self.pending:
                yield key
        for key, value in self.pending.items():
            if value is not _GONE:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> None:
        """Write each pending key to the table once, and forget it."""
        pending, self.pending = self.pending, {}
        for key, value in pending.items():
            if value is _GONE:
                self.table.pop(key, None)
            else:
                self.table[key] = value  # type: ignore[assignment]
