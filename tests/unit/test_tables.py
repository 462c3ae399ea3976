"""ModelTable (streams/tables.py): a read of the value last written through it
returns the model written, without decoding; a value that came another way
(the changelog) is decoded; the models kept are bounded."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from streams.state import Balance
from streams.tables import ModelTable


class CountingBalance(Balance):
    decoded: ClassVar[int] = 0

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> CountingBalance:
        cls.decoded += 1
        return super().model_validate(obj, **kwargs)


@pytest.fixture(autouse=True)
def _zero() -> None:
    CountingBalance.decoded = 0


def test_the_model_written_is_read_back_without_decoding() -> None:
    table = ModelTable({}, CountingBalance)
    written = CountingBalance(available=10)
    table["alice"] = written
    assert table["alice"] is written
    assert CountingBalance.decoded == 0


def test_a_value_from_the_changelog_is_decoded() -> None:
    stored: dict[str, Any] = {}
    table = ModelTable(stored, CountingBalance)
    table["alice"] = CountingBalance(available=10)
    stored["alice"] = {**stored["alice"], "available": 7}  # recovered: another object
    assert table["alice"].available == 7
    assert CountingBalance.decoded == 1
    assert table["alice"].available == 7  # remembered now
    assert CountingBalance.decoded == 1


def test_a_deleted_value_is_gone() -> None:
    table = ModelTable({}, CountingBalance)
    table["alice"] = CountingBalance(available=10)
    del table["alice"]
    assert "alice" not in table
    with pytest.raises(KeyError):
        table["alice"]


def test_the_models_kept_are_bounded() -> None:
    table = ModelTable({}, CountingBalance, decoded_kept=2)
    for name in ("a", "b", "c"):
        table[name] = CountingBalance(available=1)
    assert [table[name].available for name in ("b", "c")] == [1, 1]
    assert CountingBalance.decoded == 0
    assert table["a"].available == 1  # forgotten, decoded again
    assert CountingBalance.decoded == 1
