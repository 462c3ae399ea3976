"""The ChainClient port's contract, run against the in-memory fake and the real
web3 client on anvil: what one does, the other must do."""

from __future__ import annotations

import pytest
from eth_account import Account

from schemas.onchain import PaymentRecord, SettledEvent, account_ref
from services.ports import ChainClient
from tests.support.fakes import FakeChain


@pytest.fixture(params=["fake", "web3"])
def port(request: pytest.FixtureRequest) -> ChainClient:
    if request.param == "fake":
        return FakeChain()
    real: ChainClient = request.getfixturevalue("chain")
    return real


def _payments(first: int, count: int) -> list[PaymentRecord]:
    return [
        PaymentRecord(Account.create().address, 10 + i, first + i, account_ref("p"))
        for i in range(count)
    ]


async def test_settle_pays_each_payment_once_and_reports_it(port: ChainClient) -> None:
    payments = _payments(1, 3)
    receipt = await port.settle_batch(11, payments)
    assert [(s.sequence, s.amount, s.batch_id) for s in receipt.settled] == [
        (p.sequence, p.amount, 11) for p in payments
    ]
    assert all([await port.is_settled(p.sequence) for p in payments])
    assert not await port.is_settled(99)

    replay = await port.settle_batch(11, payments)
    assert replay.settled == ()
    overlap = await port.settle_batch(12, payments[1:] + _payments(4, 1))
    assert [s.sequence for s in overlap.settled] == [4]


async def test_events_and_blocks_agree_with_receipts(port: ChainClient) -> None:
    receipt = await port.settle_batch(13, _payments(20, 2))
    assert await port.block_number() >= receipt.block_number
    assert await port.block_hash(receipt.block_number) == receipt.block_hash
    assert await port.block_hash(receipt.block_number + 10_000) is None
    events = await port.events(receipt.block_number, receipt.block_number)
    settled = [e for e in events if isinstance(e, SettledEvent)]
    assert [e.payment for e in settled] == list(receipt.settled)
    assert {e.at.block_hash for e in settled} == {receipt.block_hash}


async def test_nothing_is_unmined_once_a_settlement_returns(port: ChainClient) -> None:
    await port.settle_batch(15, _payments(40, 1))
    assert await port.unmined_sends() == 0
