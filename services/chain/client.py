"""The async web3.py chain client: batches, deposits, events, blocks."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import AsyncWeb3
from web3.exceptions import BlockNotFound, ContractLogicError

from schemas.onchain import BatchReceipt, BlockLink, ChainEvent, PaymentRecord, SettledEvent
from services.chain import artifacts, rpc
from services.chain.approvals import SignerClient
from services.chain.events import TRANSFER_TOPIC, decode_logs
from services.chain.packing import pack_batch
from services.chain.reverts import RevertDecoder
from services.chain.sender import Receipt, TxSender
from services.errors import ConfigError
from services.settings import Settings


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    token: str
    settlement: str
    signers: tuple[str, ...]


def decoder_for_contracts() -> RevertDecoder:
    return RevertDecoder(artifacts.load(n).abi for n in ("PaymentSettlement", "TestStablecoin"))


class Web3ChainClient:
    """Talks to the deployed PaymentSettlement and its token."""

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        settings: Settings,
        operator: LocalAccount | None,
        deployment: Deployment,
        sender: TxSender,
        signer: SignerClient,
    ) -> None:
        self.w3 = w3
        self.settings = settings
        self._operator = operator  # the only key a worker holds (None: a tool without it)
        self.signer = signer
        self.deployment = deployment
        self.sender = sender
        self.settlement = w3.eth.contract(
            address=w3.to_checksum_address(deployment.settlement),
            abi=artifacts.load("PaymentSettlement").abi,
        )
        self.token = w3.eth.contract(
            address=w3.to_checksum_address(deployment.token),
            abi=artifacts.load("TestStablecoin").abi,
        )

    @property
    def operator(self) -> LocalAccount:
        if self._operator is None:
            raise ConfigError("this process has no operator key (PAYSTREAM_CHAIN_OPERATOR_KEY)")
        return self._operator

    async def call_settlement(self, account: LocalAccount, fn: str, *args: Any) -> Receipt:
        data = self.settlement.encode_abi(fn, args=list(args))
        return await self.sender.send(account, {"to": self.settlement.address, "data": data})

    async def call_token(self, account: LocalAccount, fn: str, *args: Any) -> Receipt:
        data = self.token.encode_abi(fn, args=list(args))
        return await self.sender.send(account, {"to": self.token.address, "data": data})

    async def settle_batch(self, batch_id: int, payments: Sequence[PaymentRecord]) -> BatchReceipt:
        """Pay a batch; payments paid before are skipped by the contract.

        Above the approval threshold the approval signer approves it (M of N
        signatures) or refuses it (``ApprovalRefused``).
        """
        packed = pack_batch(payments)
        total = sum(p.amount for p in payments)
        if total <= self.settings.chain_approval_threshold:
            receipt = await self.call_settlement(self.operator, "settleBatch", batch_id, packed)
        else:
            nonce, deadline = secrets.randbits(256), await self._deadline()
            signatures = await self.signer.approve(
                self.settlement.address, batch_id, packed, nonce, deadline
            )
            receipt = await self.call_settlement(
                self.operator, "settleBatchApproved", batch_id, packed, nonce, deadline, signatures
            )
        settled = tuple(
            e.payment for e in self.decode(receipt["logs"]) if isinstance(e, SettledEvent)
        )
        return BatchReceipt(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            block_hash="0x" + bytes(receipt["blockHash"]).hex(),
            gas_used=int(receipt["gasUsed"]),
            settled=settled,
        )

    async def close(self) -> None:
        """Close the node's and the signer's HTTP sessions."""
        await self.signer.close()
        await self.w3.provider.disconnect()

    async def _deadline(self) -> int:
        latest = await self.w3.eth.get_block("latest")
        return int(latest["timestamp"]) + self.settings.chain_approval_ttl_s

    async def deposit(self, depositor: LocalAccount, account: str, amount: int) -> Receipt:
        """Approve the treasury if needed, then deposit for the engine's ``account``."""
        allowance = await self.token.functions.allowance(
            depositor.address, self.settlement.address
        ).call()
        if int(allowance) < amount:
            await self.call_token(depositor, "approve", self.settlement.address, 2**256 - 1)
        return await self.call_settlement(depositor, "deposit", account, amount)

    async def token_identity(self) -> tuple[str, int]:
        """The token's symbol and decimals."""
        symbol = await self.token.functions.symbol().call()
        return str(symbol), int(await self.token.functions.decimals().call())

    async def token_balance(self, address: str) -> int:
        return int(await self.token.functions.balanceOf(address).call())

    async def is_settled(self, sequence: int) -> bool:
        return bool(await self.settlement.functions.isSettled(sequence).call())

    async def treasury_balance(self) -> int:
        return await self.token_balance(self.settlement.address)

    async def payee_accepts(self, payee: str) -> bool:
        transfer = self.token.functions.transfer(self.w3.to_checksum_address(payee), 1)
        try:
            return bool(await transfer.call({"from": self.settlement.address}))
        except ContractLogicError:
            return False

    async def fees_collected(self) -> int:
        recipient = await self.settlement.functions.feeRecipient().call()
        return await self.token_balance(str(recipient))

    async def unmined_sends(self) -> int:
        operator = self.operator.address
        pending = await self.w3.eth.get_transaction_count(operator, "pending")
        return int(pending) - int(await self.w3.eth.get_transaction_count(operator, "latest"))

    async def block_number(self) -> int:
        return int(await self.w3.eth.block_number)

    async def block(self, number: int) -> BlockLink | None:
        """Block ``number`` on the node's current chain: its hash and its
        parent's (None if absent)."""
        try:
            block = await self.w3.eth.get_block(number)
        except BlockNotFound:
            return None
        return BlockLink("0x" + bytes(block["hash"]).hex(), "0x" + bytes(block["parentHash"]).hex())

    def decode(self, logs: list[Any]) -> list[ChainEvent]:
        return decode_logs(logs, self.settlement.address, self.token.address)

    async def events(self, from_block: int, to_block: int) -> list[ChainEvent]:
        """Settlement and deposit events in a block range, in chain order."""
        own = await rpc.logs(
            self.w3,
            {"address": self.settlement.address, "fromBlock": from_block, "toBlock": to_block},
        )
        treasury = HexStr("0x" + bytes(12).hex() + self.settlement.address[2:].lower())
        transfers = await rpc.logs(
            self.w3,
            {
                "address": self.token.address,
                "topics": [HexStr("0x" + TRANSFER_TOPIC.hex()), treasury],
                "fromBlock": from_block,
                "toBlock": to_block,
            },
        )
        return self.decode([*own, *transfers])
