"""Pure parts of the chain client: packing, fees, nonces, log decoding, reverts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from schemas.onchain import DepositEvent, PaymentRecord, SettledEvent, account_ref
from services.chain import rpc
from services.chain.events import (
    BATCH_SETTLED_TOPIC,
    DEPOSITED_TOPIC,
    TRANSFER_TOPIC,
    decode_logs,
)
from services.chain.fees import FeeCapExceeded, bumped, initial_fees
from services.chain.nonces import NonceManager
from services.chain.packing import pack_batch
from services.chain.reverts import RevertDecoder
from services.errors import InvariantViolation

PAYEE = "0x" + "ab" * 20
SETTLEMENT = "0x" + "5e" * 20
TOKEN = "0x" + "70" * 20


def test_pack_batch_layout_is_56_bytes_big_endian() -> None:
    packed = pack_batch([PaymentRecord(PAYEE, 1_000_000, 7, 2**64 - 1, 2_500)])
    assert len(packed) == 56
    assert packed[:20] == bytes.fromhex("ab" * 20)
    assert int.from_bytes(packed[20:32], "big") == 1_000_000
    assert int.from_bytes(packed[32:40], "big") == 7
    assert packed[40:48] == b"\xff" * 8
    assert int.from_bytes(packed[48:56], "big") == 2_500


@pytest.mark.parametrize("fee", [-1, 1_000])
def test_pack_batch_refuses_a_fee_not_below_the_amount(fee: int) -> None:
    with pytest.raises(InvariantViolation):
        pack_batch([PaymentRecord(PAYEE, 1_000, 1, 1, fee)])


@pytest.mark.parametrize("amount", [0, -1, 2**96])
def test_pack_batch_refuses_amounts_out_of_range(amount: int) -> None:
    with pytest.raises(InvariantViolation):
        pack_batch([PaymentRecord(PAYEE, amount, 1, 1)])


def test_account_ref_is_stable_and_64_bit() -> None:
    assert account_ref("alice") == int.from_bytes(keccak(text="alice")[:8], "big")
    assert account_ref("alice") != account_ref("bob")
    assert 0 <= account_ref("x" * 64) < 2**64


def test_fees_leave_room_for_the_base_fee_and_respect_the_cap() -> None:
    fees = initial_fees(base_fee=10, priority_fee=2, max_fee_cap=1_000)
    assert (fees.max_fee_per_gas, fees.max_priority_fee_per_gas) == (22, 2)
    with pytest.raises(FeeCapExceeded):
        initial_fees(base_fee=999, priority_fee=2, max_fee_cap=1_000)


def test_replacement_bumps_both_fields_by_at_least_12_5_percent() -> None:
    first = initial_fees(base_fee=1_000, priority_fee=1_000, max_fee_cap=10**9)
    again = bumped(first, base_fee=1_000, max_fee_cap=10**9)
    assert again.max_priority_fee_per_gas * 8 >= first.max_priority_fee_per_gas * 9
    assert again.max_fee_per_gas * 8 >= first.max_fee_per_gas * 9
    spiked = bumped(first, base_fee=50_000, max_fee_cap=10**9)
    assert spiked.max_fee_per_gas >= 2 * 50_000 + spiked.max_priority_fee_per_gas
    with pytest.raises(FeeCapExceeded):
        bumped(first, base_fee=10**9, max_fee_cap=10**9)
    with pytest.raises(InvariantViolation):
        bumped(first, base_fee=1_000, max_fee_cap=10**9, bump_bps=1_000)


async def test_two_senders_sharing_a_key_take_gap_free_nonces_one_at_a_time() -> None:
    """Two processes (two managers) on one account: each nonce is the node's
    pending count, read under the shared lock, so none is shared or skipped."""
    node = {"pending": 5}
    holders: list[str] = []
    overlaps: list[int] = []
    shared = asyncio.Lock()  # stands in for the PostgreSQL advisory lock

    @asynccontextmanager
    async def shared_lock(_: str) -> AsyncIterator[None]:
        async with shared:
            yield

    async def pending(_: str) -> int:
        return node["pending"]

    managers = [NonceManager(pending, shared_lock), NonceManager(pending, shared_lock)]
    taken: list[int] = []

    async def send(manager: NonceManager, name: str) -> None:
        async with manager.reserve("0xA") as nonce:
            holders.append(name)
            overlaps.append(len(holders))
            await asyncio.sleep(0.001)
            taken.append(nonce)
            node["pending"] += 1  # the node accepted the transaction
            holders.remove(name)

    await asyncio.gather(*(send(managers[i % 2], f"w{i % 2}") for i in range(20)))
    assert sorted(taken) == list(range(5, 25))
    assert max(overlaps) == 1

    with pytest.raises(RuntimeError):
        async with managers[0].reserve("0xA"):
            raise RuntimeError("node refused")
    async with managers[1].reserve("0xA") as nonce:
        assert nonce == 25  # a refused send consumed nothing


def _log(address: str, index: int, topics: list[bytes], data: bytes, tx: str = "aa") -> Any:
    return {
        "address": address,
        "blockNumber": 10,
        "blockHash": bytes.fromhex("bb" * 32),
        "transactionHash": bytes.fromhex(tx * 32),
        "logIndex": index,
        "topics": topics,
        "data": data,
    }


def _word(value: int | str) -> bytes:
    if isinstance(value, str):
        return bytes(12) + bytes.fromhex(value[2:])
    return value.to_bytes(32, "big")


def test_decode_pairs_payment_logs_with_transfers_and_the_batch() -> None:
    logs = [
        _log(TOKEN, 0, [TRANSFER_TOPIC, _word(SETTLEMENT), _word(PAYEE)], _word(480)),
        _log(
            SETTLEMENT,
            1,
            [],
            (3).to_bytes(8, "big") + (9).to_bytes(8, "big") + (20).to_bytes(8, "big"),
        ),
        _log(TOKEN, 2, [TRANSFER_TOPIC, _word(SETTLEMENT), _word(TOKEN)], _word(20)),  # the fees
        _log(
            SETTLEMENT,
            3,
            [BATCH_SETTLED_TOPIC, _word(42)],
            encode(["uint256"] * 4, [1, 0, 500, 20]),
        ),
        _log(
            SETTLEMENT,
            4,
            [DEPOSITED_TOPIC, _word(77), _word(PAYEE)],
            encode(["uint256", "string"], [1_000, "alice"]),
            tx="cc",
        ),
    ]
    settled, deposit = decode_logs(reversed(logs), SETTLEMENT, TOKEN)
    assert isinstance(settled, SettledEvent) and isinstance(deposit, DepositEvent)
    p = settled.payment
    assert (p.payee.lower(), p.amount, p.sequence, p.payer_ref, p.batch_id, p.fee) == (
        PAYEE,
        500,
        3,
        9,
        42,
        20,
    )
    assert settled.at.log_index == 1
    assert (deposit.account, deposit.account_ref, deposit.amount) == ("alice", 77, 1_000)


def test_decode_refuses_a_payment_log_without_its_transfer() -> None:
    orphan = _log(SETTLEMENT, 1, [], bytes(24))
    with pytest.raises(InvariantViolation):
        decode_logs([orphan], SETTLEMENT, TOKEN)


def test_revert_decoder_names_custom_errors() -> None:
    abi = [{"type": "error", "name": "BatchTooLarge", "inputs": [{"type": "uint256"}]}]
    decoder = RevertDecoder([abi])
    data = keccak(text="BatchTooLarge(uint256)")[:4] + encode(["uint256"], [2000])
    reverted = decoder.decode(data)
    assert (reverted.name, reverted.args_decoded) == ("BatchTooLarge", (2000,))
    assert decoder.decode(b"\x00\x01\x02\x03").name == "UnknownRevert"


def test_raw_json_rpc_receipts_convert_only_what_paystream_reads() -> None:
    raw = {
        "status": "0x1",
        "blockNumber": "0x1a",
        "gasUsed": "0x5208",
        "transactionHash": "0x" + "ab" * 32,
        "blockHash": "0x" + "cd" * 32,
        "contractAddress": None,
        "logs": [
            {
                "address": "0x" + "11" * 20,
                "topics": ["0x" + "22" * 32],
                "data": "0x0102",
                "blockNumber": "0x1a",
                "logIndex": "0x3",
                "transactionHash": "0x" + "ab" * 32,
                "blockHash": "0x" + "cd" * 32,
            }
        ],
    }
    receipt = rpc.receipt_of(raw)
    assert (receipt["status"], receipt["blockNumber"], receipt["gasUsed"]) == (1, 26, 21_000)
    assert receipt["transactionHash"] == bytes.fromhex("ab" * 32)
    assert receipt["contractAddress"] is None
    (log,) = receipt["logs"]
    assert log["topics"] == [bytes.fromhex("22" * 32)] and log["data"] == b"\x01\x02"
    assert (log["logIndex"], log["address"]) == (3, "0x" + "11" * 20)
    assert raw["status"] == "0x1"  # the answer itself is left as it was
