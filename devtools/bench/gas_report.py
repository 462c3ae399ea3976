"""``paystream chain gas-report``: gas per payment of batched settlement.

The report deploys its own token and settlement contract (so it never touches
the engine's treasury or sequence numbers), then settles batches of each size
to payees that already hold the token ("existing": paid once by an unmeasured
warm-up batch) and to first-time payees ("new"), beside a one-by-one ERC-20
transfer baseline measured in the same run on the same chain.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from eth_account import Account
from web3 import AsyncWeb3

from schemas.onchain import PaymentRecord
from services.chain.approvals import SignerClient
from services.chain.client import Deployment, Web3ChainClient
from services.chain.deployment import deploy_contracts
from services.chain.keys import ChainKeys
from services.chain.sender import TxSender
from services.settings import Settings

BATCH_SIZES = (1, 10, 50, 100, 200, 500)
BASELINE_TRANSFERS = 3
AMOUNT = 1_000_000  # 1.00 of a 6-decimal token


@dataclass(frozen=True)
class GasRow:
    batch_size: int
    payees: str  # "existing" | "new"
    gas_per_payment: int
    baseline_gas_per_transfer: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _fresh_payees(count: int) -> list[str]:
    return [Account.create().address for _ in range(count)]


class GasReport:
    def __init__(
        self,
        w3: AsyncWeb3[Any],
        settings: Settings,
        sender: TxSender,
        batch_sizes: tuple[int, ...] = BATCH_SIZES,
        fee_bps: int = 0,
    ) -> None:
        self.w3 = w3
        self.batch_sizes = batch_sizes
        self.fee_bps = fee_bps  # each payment's fee, in basis points of its amount
        # Approvals are not what is measured here: every batch stays below the threshold;
        # nor is the daily cap reached (its bookkeeping is paid all the same).
        self.settings = settings.model_copy(
            update={"chain_approval_threshold": 2**255, "chain_daily_cap": 2**96 - 1}
        )
        self.keys = ChainKeys.from_settings(settings)
        self.sender = sender
        self._sequence = 0

    def _batch(self, payees: list[str]) -> list[PaymentRecord]:
        records = []
        for i, payee in enumerate(payees):
            amount = AMOUNT + i
            fee = amount * self.fee_bps // 10_000
            records.append(PaymentRecord(payee, amount, self._sequence, secrets.randbits(64), fee))
            self._sequence += 1
        return records

    async def _baseline(self, client: Web3ChainClient, new_payees: bool) -> int:
        holder = self.keys.funder
        targets = _fresh_payees(BASELINE_TRANSFERS)
        if not new_payees:
            for target in targets:
                await client.call_token(holder, "transfer", target, 1)
        used = 0
        for target in targets:
            receipt = await client.call_token(holder, "transfer", target, AMOUNT)
            used += int(receipt["gasUsed"])
        return used // BASELINE_TRANSFERS

    async def run(self, progress: Callable[[str], None] = lambda _: None) -> list[GasRow]:
        deployment: Deployment = await deploy_contracts(self.settings, self.keys, self.sender)
        client = Web3ChainClient(
            self.w3,
            self.settings,
            self.keys.operator,
            deployment,
            self.sender,
            SignerClient(self.settings),
        )
        total = sum(self.batch_sizes) * 3 * (AMOUNT + max(self.batch_sizes))
        await client.call_token(self.keys.admin, "mint", deployment.settlement, total)
        await client.call_token(self.keys.admin, "mint", self.keys.funder.address, total)
        baseline = {
            "existing": await self._baseline(client, new_payees=False),
            "new": await self._baseline(client, new_payees=True),
        }
        progress("baseline")
        rows = []
        for size in self.batch_sizes:
            for kind in ("existing", "new"):
                payees = _fresh_payees(size)
                if kind == "existing":
                    await client.settle_batch(self._sequence, self._batch(payees))
                measured = await client.settle_batch(self._sequence, self._batch(payees))
                if len(measured.settled) != size:
                    raise AssertionError(f"batch of {size} paid {len(measured.settled)}")
                rows.append(GasRow(size, kind, measured.gas_used // size, baseline[kind]))
                progress(f"batch {size} {kind}")
        return rows
