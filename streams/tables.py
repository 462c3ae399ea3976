"""Every Faust table of the app, declared once, and typed views over them.

Values are stored as JSON (pydantic ``model_dump``) and read back as models;
handlers see plain ``MutableMapping``s, so unit tests pass dicts instead.
Tables are changelog-backed: a restarted worker rebuilds them from Kafka.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from streams.state import Balance, PaymentState, VelocityWindow

M = TypeVar("M", bound=BaseModel)


class ModelTable(MutableMapping[str, M], Generic[M]):
    def __init__(self, table: Any, model: type[M]) -> None:
        self._table = table
        self._model = model

    def __getitem__(self, key: str) -> M:
        raw = self._table[key]
        if raw is None:
            raise KeyError(key)
        return self._model.model_validate(raw)

    def __setitem__(self, key: str, value: M) -> None:
        self._table[key] = value.model_dump(mode="json")

    def __delitem__(self, key: str) -> None:
        del self._table[key]

    def __contains__(self, key: object) -> bool:
        return key in self._table and self._table[key] is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def where(self, field: str, value: object) -> Iterator[M]:
        """The values whose stored ``field`` equals ``value``, filtered before
        decoding (a scan of a large table decodes only what it keeps)."""
        for raw in self._table.values():
            if raw is not None and raw.get(field) == value:
                yield self._model.model_validate(raw)


@dataclass
class Tables:
    payments: ModelTable[PaymentState]
    balances: ModelTable[Balance]
    velocity: ModelTable[VelocityWindow]


TABLE_NAMES = (
    "payments",
    "balances",
    "velocity",
)


def changelog_topic(app_id: str, table: str) -> str:
    """Faust's name for a table's changelog topic."""
    return f"{app_id}-{table}-changelog"


def declare_tables(app: Any, partitions: int) -> Tables:
    def table(name: str, help_: str) -> Any:
        return app.Table(name, partitions=partitions, key_type=str, help=help_)

    return Tables(
        payments=ModelTable(table("payments", "payer:payment id -> PaymentState"), PaymentState),
        balances=ModelTable(table("balances", "payer account -> Balance"), Balance),
        velocity=ModelTable(table("velocity", "payer -> recent requests"), VelocityWindow),
    )
