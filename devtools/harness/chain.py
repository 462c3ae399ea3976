"""The chain side of a run: payers funded with real on-chain deposits (the
engine credits them when it sees the ``Deposited`` events, as it would for
anyone), and the gas the run's settlement transactions used."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from services.bootstrap import chain_client, web3_client
from services.chain.keys import ChainKeys
from services.settings import Settings

Progress = Callable[[int], None]


def _quiet(_: int) -> None:
    return None


async def fund_payers(
    settings: Settings,
    payers: Sequence[str],
    amount_each: int,
    progress: Progress = _quiet,
    concurrency: int = 32,
) -> None:
    """One real on-chain deposit per payer, sent concurrently (the nonce manager
    keeps the funder's nonces gap-free)."""
    client = await chain_client(settings)
    keys = ChainKeys.from_settings(settings)
    funder = keys.funder
    await client.call_token(keys.admin, "mint", funder.address, amount_each * len(payers))
    await client.call_token(funder, "approve", client.settlement.address, 2**256 - 1)
    slots = asyncio.Semaphore(concurrency)

    async def one(payer: str) -> None:
        async with slots:
            await client.call_settlement(funder, "deposit", payer, amount_each)
            progress(1)

    try:
        await asyncio.gather(*(one(p) for p in payers))
    finally:
        await client.close()


async def gas_used(settings: Settings, tx_hashes: set[str]) -> tuple[int, int]:
    """(transactions, total gas used) of these transactions."""
    w3 = web3_client(settings)
    try:
        receipts = [await w3.eth.get_transaction_receipt(h) for h in tx_hashes]  # type: ignore[arg-type]
    finally:
        await w3.provider.disconnect()
    return len(tx_hashes), sum(int(r["gasUsed"]) for r in receipts)
