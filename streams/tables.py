"""Every Faust table of the app, declared once, and typed views over them.

Values are stored as their JSON bytes (pydantic ``model_dump_json``; the
tables' value serializer is ``raw``) and read back as models: the store keeps
one bytes object per entry, not a decoded dict (about half the memory), and a
worker restoring a table from its changelog keeps the bytes as they come,
without decoding them. The ``payments`` table packs those of terminal
payments, which stay for days (``streams/packing.py``: a settled payment's
2,450 bytes of JSON in about 420), in the store and on its changelog alike;
payments in flight and the other tables keep plain JSON.
Handlers see plain ``MutableMapping``s, so unit tests pass dicts instead.
Tables are changelog-backed: a restarted worker rebuilds them from Kafka.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from pydantic_core import from_json

from services.errors import InvariantViolation
from services.settings import Settings
from streams.indexes import TableIndex, payments_index, retired_index
from streams.packing import pack, unpack
from streams.state import TERMINAL, Balance, PaymentState, RetiredPayment, VelocityWindow

log = logging.getLogger("paystream.streams")

M = TypeVar("M", bound=BaseModel)


DECODED_KEPT = 16384  # per table: the models of the values written or read last


class ModelTable(MutableMapping[str, M], Generic[M]):
    """A table of ``model`` values. With an ``index`` (``streams/indexes.py``)
    every write is noted in it, so that ``where`` on a watched status and
    ``expired`` read the index instead of scanning the table; the index is
    rebuilt by one scan when it is not fresh (after the worker's partitions
    changed: their values came from the changelog, not through here).

    The models of the last ``decoded_kept`` values written or read are kept
    beside the stored values: a read whose stored value is the very object
    remembered with a model returns that model (models are frozen), so a
    payment's next stage does not decode again what its last stage wrote. A
    value that came from the changelog is another object: it is decoded.

    The values ``pack_when`` is true for are written packed
    (``streams/packing.py``); either form is read."""

    def __init__(
        self,
        table: Any,
        model: type[M],
        index: TableIndex | None = None,
        decoded_kept: int = DECODED_KEPT,
        pack_when: Callable[[M], bool] | None = None,
    ) -> None:
        self._table = table
        self._model = model
        self.index = index
        self._pack_when = pack_when
        self._decoded: dict[str, tuple[object, M]] = {}  # key -> (stored value, its model)
        self._decoded_kept = decoded_kept

    def __getitem__(self, key: str) -> M:
        raw = self._table[key]
        if raw is None:
            raise KeyError(key)
        known = self._decoded.get(key)
        if known is not None and known[0] is raw:
            return known[1]
        model = self._model.model_validate_json(unpack(raw))
        self._remember(key, raw, model)
        return model

    def __setitem__(self, key: str, value: M) -> None:
        raw = value.model_dump_json().encode()
        if self._pack_when is not None and self._pack_when(value):
            raw = pack(raw)
        self._table[key] = raw
        self._remember(key, raw, value)
        if self.index is not None:
            self.index.note(key, indexed_fields(value))

    def __delitem__(self, key: str) -> None:
        del self._table[key]
        self._decoded.pop(key, None)
        if self.index is not None:
            self.index.note(key, None)

    def _remember(self, key: str, raw: object, model: M) -> None:
        decoded = self._decoded
        decoded.pop(key, None)  # most recent last
        decoded[key] = (raw, model)
        if len(decoded) > self._decoded_kept:
            del decoded[next(iter(decoded))]

    def raw(self, key: str) -> dict[str, Any] | None:
        """The stored value as plain JSON data, not validated into a model."""
        raw = self._table.get(key)
        return None if raw is None else _fields(raw)

    def rebuild_step(self, budget: int) -> bool:
        """Scan up to ``budget`` more entries into a stale index (the rebuild
        begins with the table's keys at its first step); True once the index
        is fresh (or the table has none)."""
        index = self.index
        if index is None or index.fresh:
            return True
        if index.pending is None:
            index.begin(list(self._table))
        pending = index.pending or []
        for _ in range(min(budget, len(pending))):
            key = pending.pop()
            raw = self._table.get(key)
            if raw is not None:
                index.note(key, _fields(raw))
        if not pending:
            index.pending = None
            index.fresh = True
            log.info("table index rebuilt: %d entries", len(self._table))
        return index.fresh

    def _fresh_index(self) -> TableIndex:
        if self.index is None:
            raise InvariantViolation("this table has no index")
        if not self.index.fresh:  # a reader that cannot wait: the rest of the rebuild at once
            self.rebuild_step(len(self._table))
        return self.index

    @property
    def stale(self) -> bool:
        """The index waits for its rebuild (``rebuild_step``): ``where`` on a
        watched status would scan the whole table now, so a timer waits."""
        return self.index is not None and not self.index.fresh

    def expired(self, partition: int, now_s: float, limit: int) -> list[str]:
        """Keys noted as expired (none while the index is stale: tidying waits)."""
        if self.stale:
            return []
        return self._fresh_index().expired(partition, now_s, limit)

    def oldest_s(self, status: str, now_s: float) -> float:
        """Seconds since the oldest entry in a watched ``status`` was requested
        (0 when there is none; NaN while the index waits for its rebuild: a
        metrics scrape never scans the table)."""
        if self.index is None or not self.index.fresh:
            return math.nan
        oldest = now_s
        for key in self.index.keys(status):
            raw = self.raw(key)
            if raw is not None and raw.get("status") == status:
                oldest = min(oldest, datetime.fromisoformat(str(raw["requested_at"])).timestamp())
        return max(0.0, now_s - oldest)

    def __contains__(self, key: object) -> bool:
        return key in self._table and self._table[key] is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def where(self, field: str, value: object) -> Iterator[M]:
        """The values whose stored ``field`` equals ``value``: from the index
        for a watched status, else by a scan; filtered on the JSON data before
        a model is validated."""
        if self.index is not None and field == "status" and str(value) in self.index.watched:
            keys: Iterator[str] = iter(self._fresh_index().keys(str(value)))
        else:
            keys = iter(list(self._table))
        for key in keys:
            raw = self.raw(key)
            if raw is not None and raw.get(field) == value:
                yield self._model.model_validate(raw)


def _fields(raw: bytes) -> dict[str, Any]:
    """A stored value's JSON data."""
    data: dict[str, Any] = from_json(unpack(raw))
    return data


INDEXED = ("status", "requested_at")  # what TableIndex reads of a value


def indexed_fields(value: BaseModel) -> dict[str, Any]:
    """The fields of ``value`` an index reads, as its JSON data has them."""
    return {name: _plain(getattr(value, name)) for name in INDEXED if hasattr(value, name)}


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return value.value if isinstance(value, Enum) else value


def at_rest(state: PaymentState) -> bool:
    """A payment state that stays (terminal: kept ``payment_retention_s``), so
    it is packed; one in flight is written again within seconds, not packed."""
    return state.status in TERMINAL


@dataclass
class Tables:
    payments: ModelTable[PaymentState]
    balances: ModelTable[Balance]
    velocity: ModelTable[VelocityWindow]
    retired: ModelTable[RetiredPayment]

    def named(self) -> dict[str, ModelTable[Any]]:
        return {name: getattr(self, name) for name in TABLE_NAMES}

    def invalidate(self) -> None:
        """The worker's partitions changed: the indexes are stale."""
        for table in (self.payments, self.retired):
            if table.index is not None:
                table.index.invalidate()

    def rebuild_step(self, budget: int) -> bool:
        """One step of rebuilding the stale indexes; True once all are fresh."""
        return self.payments.rebuild_step(budget) and self.retired.rebuild_step(budget)


TABLE_NAMES = (
    "payments",
    "balances",
    "velocity",
    "retired",
)


def changelog_topic(app_id: str, table: str) -> str:
    """Faust's name for a table's changelog topic."""
    return f"{app_id}-{table}-changelog"


def declare_tables(app: Any, settings: Settings) -> Tables:
    def table(name: str, help_: str) -> Any:
        return app.Table(
            name,
            partitions=settings.kafka_partitions,
            key_type=str,
            value_type=bytes,  # raw: ModelTable stores each value's JSON bytes
            help=help_,
        )

    return Tables(
        payments=ModelTable(
            table("payments", "payer:payment id -> PaymentState"),
            PaymentState,
            payments_index(settings),
            pack_when=at_rest,
        ),
        balances=ModelTable(table("balances", "payer account -> Balance"), Balance),
        velocity=ModelTable(table("velocity", "payer -> recent requests"), VelocityWindow),
        retired=ModelTable(
            table("retired", "payer:payment id -> RetiredPayment (an id used long ago)"),
            RetiredPayment,
            retired_index(settings),
        ),
    )
