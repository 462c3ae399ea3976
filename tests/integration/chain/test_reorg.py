"""The chain listener on a real node: with confirmations_min=2, a reorg of depth
1 settles nothing that only the orphaned block contained."""

from __future__ import annotations

import pytest
from eth_account import Account

from schemas.chain import CHAIN_EVENT, SettlementConfirmed
from schemas.onchain import PaymentRecord, account_ref
from services.chain.client import Web3ChainClient
from services.errors import ChainUnavailable
from streams.listener import ChainListener
from streams.outcomes import Emit
from tests.integration.chain.conftest import rpc
from tests.support.fakes import MemoryClaimStore

pytestmark = pytest.mark.integration


def _sequences(emits: list[Emit]) -> set[int]:
    out = set()
    for emit in emits:
        record = CHAIN_EVENT.validate_json(emit.payload())
        if isinstance(record, SettlementConfirmed):
            out.add(record.sequence)
    return out


async def test_reorg_of_depth_one_settles_nothing_from_the_orphaned_block(
    chain: Web3ChainClient,
) -> None:
    settings = chain.settings.model_copy(update={"confirmations_min": 2})
    start = await chain.block_number() + 1
    listener = ChainListener(chain, MemoryClaimStore(), settings, start_block=start)
    cursor = (await listener.poll(None)).cursor

    orphaned = [
        PaymentRecord(Account.create().address, 10, 900 + i, account_ref("r")) for i in range(3)
    ]
    receipt = await chain.settle_batch(77, orphaned)
    assert await chain.is_settled(900)
    poll = await listener.poll(cursor)
    assert _sequences(poll.emits) == set()  # one confirmation only

    await rpc(chain, "anvil_reorg", 1, [])  # the block with the batch is replaced
    replaced = await chain.block(receipt.block_number)
    assert replaced is not None and replaced.hash != receipt.block_hash
    assert not await chain.is_settled(900)
    kept = [PaymentRecord(Account.create().address, 10, 950, account_ref("r"))]
    try:  # the reorg dropped the operator's transaction: its nonce is free again
        await chain.settle_batch(78, kept)
    except ChainUnavailable:  # the sender saw the nonce gap; the engine retries the same way
        await chain.settle_batch(78, kept)
    await rpc(chain, "evm_mine")
    await rpc(chain, "evm_mine")

    emitted: set[int] = set()
    for _ in range(3):
        poll = await listener.poll(poll.cursor)
        emitted |= _sequences(poll.emits)
    assert emitted == {950}
