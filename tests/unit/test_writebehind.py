"""A table seen through one record's writes: each key reaches the table once."""

from __future__ import annotations

import pytest

from streams.writebehind import WriteBehind


class Table(dict[str, int]):
    def __init__(self, **values: int) -> None:
        super().__init__(values)
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: int) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def test_reads_see_the_pending_writes_and_the_table_gets_each_key_once() -> None:
    table = Table(a=1, b=2)
    view = WriteBehind(table)
    view["a"] = view["a"] + 10
    view["a"] = view["a"] + 10
    view["c"] = 3
    del view["b"]
    assert (view["a"], view.get("b"), view.get("c"), "b" in view, "c" in view) == (
        21,
        None,
        3,
        False,
        True,
    )
    assert sorted(view) == ["a", "c"] and len(view) == 2
    with pytest.raises(KeyError):
        view["b"]
    assert table == {"a": 1, "b": 2} and table.writes == []  # nothing yet
    view.flush()
    assert table == {"a": 21, "c": 3} and table.writes == ["a", "c"]
    assert view.pending == {} and view["a"] == 21


def test_deleting_what_is_not_there_is_a_key_error() -> None:
    view = WriteBehind(Table())
    with pytest.raises(KeyError):
        del view["x"]
