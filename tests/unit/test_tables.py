"""ModelTable (streams/tables.py): a read of the value last written through it
returns the model written, without decoding; a value that came another way
(the changelog) is decoded; the models kept are bounded; a packed table's
values are packed at rest and read either way."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from devtools.harness.history import settled_state
from services.errors import InvariantViolation
from streams import packing
from streams.state import Balance, PaymentState, Status
from streams.tables import ModelTable, at_rest

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


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


def _settled(sequence: int) -> PaymentState:
    return settled_state("payer-1", "0x6CdA40fDA5F2e5767248D21255A84ada01a1b7C7", sequence, NOW)


def test_a_terminal_payment_is_stored_packed_in_a_fifth_of_its_json() -> None:
    """The payments table's terminal values, packed (streams/packing.py): a
    settled payment's state with its three published records, in the store as
    a version byte and deflate, read back (decoded, and as JSON data) equal."""
    stored: dict[str, Any] = {}
    table = ModelTable(stored, PaymentState, pack_when=at_rest)
    state = _settled(7)
    table["k"] = state
    plain = state.model_dump_json().encode()
    assert stored["k"][0] == packing.V1
    assert len(stored["k"]) * 5 < len(plain)
    assert packing.unpack(stored["k"]) == plain
    fresh = ModelTable(stored, PaymentState, pack_when=at_rest)  # nothing remembered: decoded
    assert fresh["k"] == state
    assert fresh.raw("k") == state.model_dump(mode="json")


def test_a_payment_in_flight_is_stored_plain_and_either_form_is_read() -> None:
    """A payment in flight is written again within seconds: not packed. A
    plain value (in flight, or written before packing) is read as well."""
    state = _settled(8)
    stored: dict[str, Any] = {"k": state.model_dump_json().encode()}
    table = ModelTable(stored, PaymentState, pack_when=at_rest)
    assert ModelTable(stored, PaymentState, pack_when=at_rest)["k"] == state
    table["k"] = state.model_copy(update={"final": "0xab:9"})
    assert stored["k"][0] == packing.V1
    scored = state.model_copy(update={"status": Status.SCORED})
    table["k"] = scored
    assert stored["k"] == scored.model_dump_json().encode()


@pytest.mark.parametrize(
    ("stored", "says"),
    [
        (b"\x07abc", "unknown version 7"),
        (b"\x01\xff\xff\xff", "does not unpack"),
        (packing.pack(b'{"a": 1}')[:-2], "cut short"),
    ],
)
def test_a_value_that_does_not_unpack_is_an_invariant_violation(stored: bytes, says: str) -> None:
    with pytest.raises(InvariantViolation, match=says):
        packing.unpack(stored)


def test_the_packing_dictionary_is_frozen() -> None:
    """Values packed with dictionary v1 must stay readable as long as a
    changelog keeps them: editing it is a new version, not a change to v1."""
    digest = hashlib.sha256(packing.dictionary(packing.V1)).hexdigest()
    assert digest == "3468f5c48c761e707cc71738e52d3f337719e6b177cd5197e06d9f51331e6553"
