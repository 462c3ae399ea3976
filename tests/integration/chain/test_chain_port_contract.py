"""The ChainClient port's contract, run against the in-memory fake and the real
web3 client on anvil: what one does, the other must do."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account

from schemas.onchain import PaymentRecord, SettledEvent, account_ref
from services.chain.client import Web3ChainClient
from services.chain.reverts import ContractReverted
from services.ports import ChainClient
from tests.support.fakes import FakeChain
from tests.support.keys import keys_of


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
    earlier = await port.settle_batch(14, _payments(30, 1))
    receipt = await port.settle_batch(13, _payments(20, 2))
    assert await port.block_number() >= receipt.block_number
    block = await port.block(receipt.block_number)
    assert block is not None and block.hash == receipt.block_hash
    before = await port.block(receipt.block_number - 1)
    assert before is not None and block.parent_hash == before.hash
    assert earlier.block_number < receipt.block_number
    assert await port.block(receipt.block_number + 10_000) is None
    events = await port.events(receipt.block_number, receipt.block_number)
    settled = [e for e in events if isinstance(e, SettledEvent)]
    assert [e.payment for e in settled] == list(receipt.settled)
    assert {e.at.block_hash for e in settled} == {receipt.block_hash}


async def test_nothing_is_unmined_once_a_settlement_returns(port: ChainClient) -> None:
    await port.settle_batch(15, _payments(40, 1))
    assert await port.unmined_sends() == 0


async def pause(port: ChainClient, paused: bool) -> None:
    if isinstance(port, FakeChain):
        port.paused = paused
        return
    assert isinstance(port, Web3ChainClient)
    keys = keys_of(port)
    if paused:
        await port.call_settlement(keys.pauser, "pause")
    else:
        await port.call_settlement(keys.admin, "unpause")


async def leave_in_treasury(port: ChainClient, amount: int) -> None:
    if isinstance(port, FakeChain):
        port.treasury = amount
        return
    assert isinstance(port, Web3ChainClient)
    held = await port.treasury_balance()
    await port.call_settlement(
        keys_of(port).admin, "withdraw", keys_of(port).admin.address, held - amount
    )


async def refused(
    port: ChainClient, batch_id: int, payments: list[PaymentRecord]
) -> tuple[str, tuple[Any, ...]]:
    with pytest.raises(ContractReverted) as caught:
        await port.settle_batch(batch_id, payments)
    return caught.value.name, caught.value.args_decoded


async def test_a_paused_contract_refuses_and_pays_once_unpaused(port: ChainClient) -> None:
    payments = _payments(60, 2)
    await pause(port, True)
    assert (await refused(port, 21, payments))[0] == "EnforcedPause"
    assert not await port.is_settled(60)
    await pause(port, False)
    assert len((await port.settle_batch(21, payments)).settled) == 2


async def test_a_short_treasury_refuses_with_the_transfer_it_could_not_make(
    port: ChainClient,
) -> None:
    payments = _payments(70, 3)  # amounts 10, 11, 12
    await leave_in_treasury(port, 20)
    assert await port.treasury_balance() == 20
    name, args = await refused(port, 22, payments)
    expected = ("TransferFailed", payments[1].payee.lower(), 11)
    assert (name, str(args[0]).lower(), args[1]) == expected
    assert not await port.is_settled(70)


async def test_the_zero_address_reverts_the_whole_batch(port: ChainClient) -> None:
    payments = _payments(80, 2)
    zero = PaymentRecord("0x" + "0" * 40, 5, 82, account_ref("p"))
    name, args = await refused(port, 23, [*payments, zero])
    assert (name, str(args[0]).lower()) == ("TransferFailed", zero.payee)
    assert not await port.is_settled(80)
    assert len((await port.settle_batch(23, payments)).settled) == 2


async def blacklist(port: ChainClient, payee: str) -> None:
    if isinstance(port, FakeChain):
        port.refusing.add(payee.lower())
        return
    assert isinstance(port, Web3ChainClient)
    await port.call_token(keys_of(port).admin, "setBlacklisted", payee, True)


async def test_a_payee_the_token_blacklisted_reverts_the_batch_naming_it(
    port: ChainClient,
) -> None:
    payments = _payments(100, 3)
    await blacklist(port, payments[1].payee)
    assert not await port.payee_accepts(payments[1].payee)
    name, args = await refused(port, 25, payments)
    assert (name, str(args[0]).lower()) == ("TransferFailed", payments[1].payee.lower())
    assert not await port.is_settled(100)
    kept = [payments[0], payments[2]]
    assert len((await port.settle_batch(25, kept)).settled) == 2


async def payee_balance(port: ChainClient, payee: str) -> int:
    if isinstance(port, FakeChain):
        return port.balances.get(payee, 0)
    assert isinstance(port, Web3ChainClient)
    return await port.token_balance(payee)


async def test_fees_go_to_the_fee_recipient_and_the_rest_to_the_payee(port: ChainClient) -> None:
    before = await port.fees_collected()
    payments = [replace(p, amount=1_000, fee=25 * i) for i, p in enumerate(_payments(90, 3))]
    receipt = await port.settle_batch(24, payments)
    assert [(s.sequence, s.amount, s.fee) for s in receipt.settled] == [
        (90, 1_000, 0),
        (91, 1_000, 25),
        (92, 1_000, 50),
    ]
    assert [await payee_balance(port, p.payee) for p in payments] == [1_000, 975, 950]
    assert await port.fees_collected() == before + 75
    events = await port.events(receipt.block_number, receipt.block_number)
    assert [e.payment for e in events if isinstance(e, SettledEvent)] == list(receipt.settled)
    assert await port.settle_batch(24, payments) is not None
    assert await port.fees_collected() == before + 75  # paid once


async def test_a_payee_the_token_refuses_is_told_apart_from_a_short_treasury(
    port: ChainClient,
) -> None:
    payee = Account.create().address
    assert await port.payee_accepts(payee)
    assert not await port.payee_accepts("0x" + "0" * 40)  # the token refuses the zero address
    await leave_in_treasury(port, 0)
    assert not await port.payee_accepts(payee)
