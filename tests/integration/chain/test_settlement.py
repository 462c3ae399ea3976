"""PaymentSettlement on anvil: batches, events, deposits, the double-payment
guard, pause, roles and the admin withdrawal."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3.logs import DISCARD

from schemas.onchain import DepositEvent, PaymentRecord, SettledEvent, SettledPayment, account_ref
from services.chain.client import Web3ChainClient
from services.chain.packing import pack_batch
from services.chain.reverts import ContractReverted
from tests.support.keys import keys_of

pytestmark = pytest.mark.integration


def _payments(first_sequence: int, count: int, payer: str = "payer-1") -> list[PaymentRecord]:
    return [
        PaymentRecord(Account.create().address, 1_000 + i, first_sequence + i, account_ref(payer))
        for i in range(count)
    ]


def _as_settled(payments: list[PaymentRecord], batch_id: int) -> set[SettledPayment]:
    return {SettledPayment(p.payee, p.amount, p.sequence, p.payer_ref, batch_id) for p in payments}


async def test_batch_pays_every_payee_and_emits_one_event_each(chain: Web3ChainClient) -> None:
    payments = _payments(0, 25)
    receipt = await chain.settle_batch(7, payments)

    assert set(receipt.settled) == _as_settled(payments, 7)
    for p in payments:
        assert await chain.token_balance(p.payee) == p.amount
        assert await chain.is_settled(p.sequence)
    events = await chain.events(receipt.block_number, receipt.block_number)
    assert {e.payment for e in events if isinstance(e, SettledEvent)} == set(receipt.settled)
    assert all(e.at.tx_hash == receipt.tx_hash for e in events)


async def test_deposit_moves_tokens_into_the_treasury_and_is_decoded(
    chain: Web3ChainClient,
) -> None:
    funder = keys_of(chain).funder
    await chain.call_token(keys_of(chain).admin, "mint", funder.address, 5_000_000)
    before = await chain.token_balance(chain.settlement.address)

    receipt = await chain.deposit(funder, "alice", 5_000_000)

    assert await chain.token_balance(chain.settlement.address) == before + 5_000_000
    (event,) = await chain.events(receipt["blockNumber"], receipt["blockNumber"])
    assert isinstance(event, DepositEvent)
    assert (event.account, event.account_ref, event.depositor, event.amount) == (
        "alice",
        account_ref("alice"),
        funder.address,
        5_000_000,
    )


@pytest.mark.parametrize("account", ["", "x" * 65, "bad account", "ünï"])
async def test_deposit_refuses_malformed_account_ids(chain: Web3ChainClient, account: str) -> None:
    with pytest.raises(ContractReverted) as info:
        await chain.deposit(keys_of(chain).funder, account, 1)
    assert info.value.name == "InvalidAccount"


async def test_deposit_refuses_amounts_the_engine_cannot_represent(
    chain: Web3ChainClient,
) -> None:
    funder = keys_of(chain).funder
    await chain.call_token(keys_of(chain).admin, "mint", funder.address, 2**96)
    with pytest.raises(ContractReverted) as info:
        await chain.deposit(funder, "alice", 2**96)
    assert info.value.name == "AmountTooLarge"


async def test_replayed_batch_moves_no_funds(chain: Web3ChainClient) -> None:
    payments = _payments(100, 10)
    await chain.settle_batch(1, payments)
    treasury = await chain.token_balance(chain.settlement.address)

    replay = await chain.settle_batch(1, payments)

    assert replay.settled == ()
    assert await chain.token_balance(chain.settlement.address) == treasury
    for p in payments:
        assert await chain.token_balance(p.payee) == p.amount


async def test_overlapping_batch_pays_only_the_new_payments(chain: Web3ChainClient) -> None:
    first = _payments(300, 10)
    await chain.settle_batch(1, first)
    fresh = _payments(310, 5)
    treasury = await chain.token_balance(chain.settlement.address)

    receipt = await chain.settle_batch(2, first[5:] + fresh)

    assert set(receipt.settled) == _as_settled(fresh, 2)
    assert await chain.token_balance(chain.settlement.address) == treasury - sum(
        p.amount for p in fresh
    )
    for p in first:
        assert await chain.token_balance(p.payee) == p.amount


async def test_duplicate_inside_one_batch_is_paid_once(chain: Web3ChainClient) -> None:
    (payment,) = _payments(500, 1)
    receipt = await chain.settle_batch(3, [payment, payment])
    assert receipt.settled == tuple(_as_settled([payment], 3))
    assert await chain.token_balance(payment.payee) == payment.amount


async def test_malformed_batch_is_refused(chain: Web3ChainClient) -> None:
    packed = pack_batch(_payments(600, 2))[:-1]
    with pytest.raises(ContractReverted) as info:
        await chain.call_settlement(chain.operator, "settleBatch", 4, packed)
    assert info.value.name == "EmptyOrMalformedBatch"


async def test_pause_stops_settlement_and_deposits(chain: Web3ChainClient) -> None:
    await chain.call_settlement(keys_of(chain).pauser, "pause")
    with pytest.raises(ContractReverted) as info:
        await chain.settle_batch(5, _payments(700, 1))
    assert info.value.name == "EnforcedPause"
    with pytest.raises(ContractReverted):
        await chain.deposit(keys_of(chain).funder, "bob", 1)

    await chain.call_settlement(keys_of(chain).admin, "unpause")
    assert len((await chain.settle_batch(5, _payments(700, 1))).settled) == 1


async def test_only_the_operator_settles_and_only_the_admin_pauses(
    chain: Web3ChainClient,
) -> None:
    packed = pack_batch(_payments(800, 1))
    with pytest.raises(ContractReverted) as info:
        await chain.call_settlement(keys_of(chain).funder, "settleBatch", 6, packed)
    assert info.value.name == "AccessControlUnauthorizedAccount"
    with pytest.raises(ContractReverted) as info:
        await chain.call_settlement(chain.operator, "pause")
    assert info.value.name == "AccessControlUnauthorizedAccount"


async def test_admin_withdrawal_moves_funds_and_is_logged(chain: Web3ChainClient) -> None:
    to = Account.create().address
    treasury = await chain.token_balance(chain.settlement.address)

    receipt = await chain.call_settlement(keys_of(chain).admin, "withdraw", to, 12_345)

    assert await chain.token_balance(to) == 12_345
    assert await chain.token_balance(chain.settlement.address) == treasury - 12_345
    withdrawn = chain.settlement.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
    assert [(e["args"]["to"], e["args"]["amount"]) for e in withdrawn] == [(to, 12_345)]
    with pytest.raises(ContractReverted) as info:
        await chain.call_settlement(chain.operator, "withdraw", to, 1)
    assert info.value.name == "AccessControlUnauthorizedAccount"
