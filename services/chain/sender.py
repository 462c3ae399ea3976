"""Sign, send, replace when stuck, and wait for the receipt of a transaction."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, Web3Exception

from services.chain import rpc
from services.chain.fees import Fees, bumped, initial_fees
from services.chain.nonces import NonceManager
from services.chain.reverts import RevertDecoder
from services.errors import ChainUnavailable
from services.settings import Settings

Receipt = dict[str, Any]


class TxSender:
    """The one way paystream sends transactions: EIP-1559, gap-free nonces,
    bounded waiting, and fee-bumped replacement of transactions that hang."""

    def __init__(self, w3: AsyncWeb3[Any], settings: Settings, decoder: RevertDecoder) -> None:
        self.w3 = w3
        self.settings = settings
        self.decoder = decoder
        self.nonces = NonceManager(self._pending_count)

    async def _pending_count(self, address: str) -> int:
        return int(await self.w3.eth.get_transaction_count(address, "pending"))  # type: ignore[arg-type]

    async def base_fee(self) -> int:
        block = await self.w3.eth.get_block("pending")
        return int(block.get("baseFeePerGas", 0))

    async def estimate_gas(self, tx: dict[str, Any]) -> int:
        try:
            estimate = int(await self.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise self.decoder.from_exception(exc) from exc
        return estimate * (10_000 + self.settings.chain_gas_margin_bps) // 10_000

    async def send(self, account: LocalAccount, tx: dict[str, Any]) -> Receipt:
        """Send ``tx`` (``to``, ``data``, optional ``value``/``gas``) from ``account``.

        Raises ContractReverted (decoded) if it would revert or did revert,
        FeeCapExceeded when fees are above the cap, ChainUnavailable on timeout.
        """
        s = self.settings
        tx = {"from": account.address, "chainId": s.chain_id, "type": 2, "value": 0, **tx}
        if "gas" not in tx:
            tx["gas"] = await self.estimate_gas(tx)
        fees = initial_fees(await self.base_fee(), s.chain_priority_fee_wei, s.chain_max_fee_wei)
        async with self.nonces.reserve(account.address) as nonce:
            hashes = [await self._sign_and_send(account, {**tx, "nonce": nonce}, fees)]
        return await self._await_receipt(account, {**tx, "nonce": nonce}, fees, hashes)

    async def _sign_and_send(self, account: LocalAccount, tx: dict[str, Any], fees: Fees) -> bytes:
        signed = account.sign_transaction({**tx, **fees.as_tx()})
        try:
            return bytes(await self.w3.eth.send_raw_transaction(signed.raw_transaction))
        except (Web3Exception, OSError, ValueError) as exc:
            raise ChainUnavailable(f"sending nonce {tx['nonce']} failed: {exc}") from exc

    async def _receipt(self, tx_hash: bytes) -> Receipt | None:
        return await rpc.receipt(self.w3, tx_hash)

    async def _await_receipt(
        self, account: LocalAccount, tx: dict[str, Any], fees: Fees, hashes: list[bytes]
    ) -> Receipt:
        s = self.settings
        now = time.monotonic()
        deadline, replace_at = now + s.chain_receipt_timeout_s, now + s.chain_replace_after_s
        while time.monotonic() < deadline:
            for tx_hash in hashes:
                receipt = await self._receipt(tx_hash)
                if receipt is not None:
                    return await self._checked(tx, receipt)
            if time.monotonic() >= replace_at and len(hashes) <= s.chain_max_replacements:
                if await self._pending_count(account.address) < tx["nonce"]:
                    # An earlier transaction vanished (a reorg dropped it): this one can
                    # never be mined. Resynchronise and let the caller retry.
                    self.nonces.forget(account.address)
                    raise ChainUnavailable(f"nonce gap before {tx['nonce']} of {account.address}")
                base_fee = await self.base_fee()
                fees = bumped(fees, base_fee, s.chain_max_fee_wei, s.chain_fee_bump_bps)
                # A refused replacement (e.g. "nonce too low": an earlier version was
                # mined) is not an error: keep polling the versions already sent.
                with contextlib.suppress(ChainUnavailable):
                    hashes.append(await self._sign_and_send(account, tx, fees))
                replace_at = time.monotonic() + s.chain_replace_after_s
            await asyncio.sleep(s.chain_receipt_poll_s)
        raise ChainUnavailable(
            f"no receipt for nonce {tx['nonce']} of {account.address} "
            f"within {s.chain_receipt_timeout_s:.0f} s ({len(hashes)} versions sent)"
        )

    async def _checked(self, tx: dict[str, Any], receipt: Receipt) -> Receipt:
        if int(receipt["status"]) == 1:
            return receipt
        # Replay the call at the block to learn the revert data.
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            await self.w3.eth.call(call, block_identifier=receipt["blockNumber"])  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise self.decoder.from_exception(exc) from exc
        raise self.decoder.decode(b"")
