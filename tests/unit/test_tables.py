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
    def model_validate_json(cls, json_data: Any, **kwargs: Any) -> CountingBalance:
        cls.decoded += 1
        return super().model_validate_json(json_data, **kwargs)


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
    stored["alice"] = CountingBalance(available=7).model_dump_json().encode()  # recovered
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


def test_the_store_holds_each_value_as_its_json_bytes() -> None:
    """What Faust keeps and writes to the changelog: the model's JSON, as bytes."""
    stored: dict[str, Any] = {}
    table = ModelTable(stored, Balance)
    table["alice"] = Balance(available=10, holds={"p1": 5})
    assert stored["alice"] == Balance(available=10, holds={"p1": 5}).model_dump_json().encode()
    assert table.raw("alice") == {
        **Balance().model_dump(mode="json"),
        "available": 10,
        "holds": {"p1": 5},
    }
