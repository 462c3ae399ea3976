"""Nonces under concurrency and after a restart; a stuck transaction replaced
with a proper fee bump."""

from __future__ import annotations

import asyncio

import pytest
from eth_account import Account

from services.bootstrap import tx_sender
from services.chain.client import Web3ChainClient
from services.chain.fees import BPS
from services.chain.sender import NonceTaken
from services.errors import TransactionCancelled
from tests.integration.chain.conftest import rpc
from tests.support.keys import keys_of

pytestmark = pytest.mark.integration


async def test_concurrent_submissions_get_distinct_gap_free_nonces(
    chain: Web3ChainClient,
) -> None:
    admin = keys_of(chain).admin
    start = await chain.w3.eth.get_transaction_count(admin.address, "pending")
    payees = [Account.create().address for _ in range(15)]

    receipts = await asyncio.gather(
        *(chain.call_token(admin, "mint", payee, 1 + i) for i, payee in enumerate(payees))
    )

    assert all(r["status"] == 1 for r in receipts)
    nonces = sorted(
        [(await chain.w3.eth.get_transaction(r["transactionHash"]))["nonce"] for r in receipts]
    )
    assert nonces == list(range(start, start + len(payees)))
    assert [await chain.token_balance(p) for p in payees] == [1 + i for i in range(15)]


async def test_a_new_sender_resumes_from_the_nodes_nonce(chain: Web3ChainClient) -> None:
    await chain.call_token(keys_of(chain).admin, "mint", keys_of(chain).funder.address, 1)
    restarted = tx_sender(chain.w3, chain.settings)  # as after a process restart
    chain.sender = restarted
    receipt = await chain.call_token(keys_of(chain).admin, "mint", keys_of(chain).funder.address, 1)
    assert receipt["status"] == 1


async def test_stuck_transaction_is_replaced_with_a_bumped_fee_and_mined(
    chain: Web3ChainClient,
) -> None:
    payee = Account.create().address
    base_before = int((await chain.w3.eth.get_block("pending"))["baseFeePerGas"])
    first_tip = chain.settings.chain_priority_fee_wei
    first_max = 2 * base_before + first_tip
    await rpc(chain, "evm_setAutomine", False)
    try:
        sending = asyncio.create_task(chain.call_token(keys_of(chain).admin, "mint", payee, 77))
        await asyncio.sleep(0.2)  # the first version is in the pool now
        # The base fee jumps above what the first version offers: it is stuck.
        await rpc(chain, "anvil_setNextBlockBaseFeePerGas", hex(first_max + 1))
        await asyncio.sleep(3 * chain.settings.chain_replace_after_s)
        await rpc(chain, "evm_mine")
        receipt = await asyncio.wait_for(sending, timeout=30)
    finally:
        await rpc(chain, "evm_setAutomine", True)

    mined = await chain.w3.eth.get_transaction(receipt["transactionHash"])
    assert receipt["status"] == 1
    assert mined["maxPriorityFeePerGas"] * BPS >= first_tip * (BPS + 1_250)
    assert mined["maxFeePerGas"] * BPS >= first_max * (BPS + 1_250)
    assert mined["maxFeePerGas"] > first_max + 1
    assert await chain.token_balance(payee) == 77


async def test_a_transaction_stuck_past_the_timeout_is_followed_until_mined(
    chain: Web3ChainClient,
) -> None:
    """A sent nonce is never abandoned: with fees above the cap and the receipt
    timeout long past, ``send`` keeps following the transaction and returns
    its receipt once it is mined (audit finding 1)."""
    settings = chain.settings.model_copy(
        update={"chain_receipt_timeout_s": 0.5, "chain_replace_after_s": 0.3}
    )
    chain.sender = tx_sender(chain.w3, settings)
    payee = Account.create().address
    base_before = int((await chain.w3.eth.get_block("pending"))["baseFeePerGas"])
    await rpc(chain, "evm_setAutomine", False)
    try:
        sending = asyncio.create_task(chain.call_token(keys_of(chain).admin, "mint", payee, 5))
        await asyncio.sleep(0.2)
        await rpc(chain, "anvil_setNextBlockBaseFeePerGas", hex(2 * settings.chain_max_fee_wei))
        await asyncio.sleep(6 * settings.chain_receipt_timeout_s)
        assert not sending.done()  # still following, long past the timeout
        await rpc(chain, "anvil_setNextBlockBaseFeePerGas", hex(base_before))
        await rpc(chain, "evm_mine")
        receipt = await asyncio.wait_for(sending, timeout=30)
    finally:
        await rpc(chain, "evm_setAutomine", True)
    assert receipt["status"] == 1
    assert await chain.token_balance(payee) == 5


async def test_a_nonce_used_by_another_transaction_is_reported_not_awaited_forever(
    chain: Web3ChainClient,
) -> None:
    """Another process sends a different transaction with our nonce and it is
    mined first: ours can never be mined, and the sender says so (NonceTaken)."""
    settings = chain.settings.model_copy(update={"chain_max_replacements": 0})
    chain.sender = tx_sender(chain.w3, settings)
    admin = keys_of(chain).admin
    await rpc(chain, "evm_setAutomine", False)
    try:
        nonce = await chain.w3.eth.get_transaction_count(admin.address, "pending")
        sending = asyncio.create_task(chain.call_token(admin, "mint", admin.address, 1))
        await asyncio.sleep(0.3)
        base = int((await chain.w3.eth.get_block("pending"))["baseFeePerGas"])
        other = admin.sign_transaction(
            {
                "to": admin.address,
                "value": 0,
                "gas": 21_000,
                "nonce": nonce,
                "chainId": settings.chain_id,
                "maxFeePerGas": 10 * base + 10 * settings.chain_priority_fee_wei,
                "maxPriorityFeePerGas": 10 * settings.chain_priority_fee_wei,
            }
        )
        await chain.w3.eth.send_raw_transaction(other.raw_transaction)
        await rpc(chain, "evm_mine")
        with pytest.raises(NonceTaken):
            await asyncio.wait_for(sending, timeout=30)
    finally:
        await rpc(chain, "evm_setAutomine", True)


async def test_a_transaction_the_node_forgot_is_sent_again(chain: Web3ChainClient) -> None:
    """The node drops our transaction from its pool (evicted, restarted): past
    the replacement limit, the sender still sends the same bytes again."""
    settings = chain.settings.model_copy(
        update={"chain_max_replacements": 0, "chain_replace_after_s": 0.3}
    )
    chain.sender = tx_sender(chain.w3, settings)
    payee = Account.create().address
    await rpc(chain, "evm_setAutomine", False)
    try:
        sending = asyncio.create_task(chain.call_token(keys_of(chain).admin, "mint", payee, 9))
        await asyncio.sleep(0.2)
        await rpc(chain, "anvil_dropAllTransactions")
        assert await _pool_size(chain) == 0
        await asyncio.sleep(4 * settings.chain_replace_after_s)
        assert await _pool_size(chain) == 1  # sent again
        await rpc(chain, "evm_mine")
        receipt = await asyncio.wait_for(sending, timeout=30)
    finally:
        await rpc(chain, "evm_setAutomine", True)
    assert receipt["status"] == 1
    assert await chain.token_balance(payee) == 9


async def test_a_transaction_not_mined_in_time_is_cancelled(chain: Web3ChainClient) -> None:
    """Past ``chain_cancel_after_s`` an empty transaction takes the nonce; once
    it is mined, the sender says so (TransactionCancelled) and the original
    can never be mined."""
    settings = chain.settings.model_copy(
        update={"chain_replace_after_s": 0.3, "chain_cancel_after_s": 1.0}
    )
    chain.sender = tx_sender(chain.w3, settings)
    admin, payee = keys_of(chain).admin, Account.create().address
    await rpc(chain, "evm_setAutomine", False)
    try:
        nonce = await chain.w3.eth.get_transaction_count(admin.address, "pending")
        sending = asyncio.create_task(chain.call_token(admin, "mint", payee, 3))
        await asyncio.sleep(3 * settings.chain_cancel_after_s)
        await rpc(chain, "evm_mine")
        with pytest.raises(TransactionCancelled, match=f"nonce {nonce}"):
            await asyncio.wait_for(sending, timeout=30)
    finally:
        await rpc(chain, "evm_setAutomine", True)
    assert await chain.w3.eth.get_transaction_count(admin.address, "latest") == nonce + 1
    assert await chain.token_balance(payee) == 0


async def _pool_size(chain: Web3ChainClient) -> int:
    status = await rpc(chain, "txpool_status")
    return int(status["pending"], 16) + int(status["queued"], 16)
