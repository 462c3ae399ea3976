"""web3's AsyncWeb3 against anvil: chain id and a signed EIP-1559 transfer."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from web3 import AsyncWeb3

from services.bootstrap import web3_client
from services.chain.keys import FUNDER_INDEX, derive
from services.settings import Settings

pytestmark = pytest.mark.integration

Account.enable_unaudited_hdwallet_features()


async def test_chain_id_matches_settings(stack_healthy: Settings) -> None:
    w3 = web3_client(stack_healthy)
    assert await w3.eth.chain_id == stack_healthy.chain_id


async def test_signed_eip1559_transfer_is_mined(stack_healthy: Settings) -> None:
    w3: AsyncWeb3[Any] = web3_client(stack_healthy)
    sender = derive(stack_healthy, FUNDER_INDEX)
    receiver = Account.create()
    value = 12_345_678_901_234

    latest = await w3.eth.get_block("latest")
    base_fee = int(latest["baseFeePerGas"])
    tip = 1_000_000_000
    tx = {
        "type": 2,
        "chainId": stack_healthy.chain_id,
        "nonce": await w3.eth.get_transaction_count(sender.address, "pending"),
        "to": receiver.address,
        "value": value,
        "gas": 21_000,
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": 2 * base_fee + tip,
    }
    signed = sender.sign_transaction(tx)
    tx_hash = await w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = await w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)

    assert receipt["status"] == 1
    assert receipt["type"] == 2
    assert await w3.eth.get_balance(receiver.address) == value
