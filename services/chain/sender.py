"""Sign, send, replace when stuck, and wait for the receipt of a transaction."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, Web3Exception

from services.chain import rpc
from services.chain.fees import FeeCapExceeded, Fees, bumped, initial_fees
from services.chain.nonces import NonceManager, SharedLock
from services.chain.reverts import ContractReverted, RevertDecoder
from services.errors import ChainUnavailable
from services.settings import Settings

Receipt = dict[str, Any]
log = logging.getLogger("paystream.chain")


class NonceTaken(ChainUnavailable):
    """The account's confirmed nonce passed ours and none of our versions was
    mined: another transaction used the nonce, so this one can never be mined."""


class TxSender:
    """The one way paystream sends transactions: EIP-1559, gap-free nonces,
    bounded waiting, and fee-bumped replacement of transactions that hang."""

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        settings: Settings,
        decoder: RevertDecoder,
        shared_lock: SharedLock | None = None,
    ) -> None:
        self.w3 = w3
        self.settings = settings
        self.decoder = decoder
        self.nonces = NonceManager(self._pending_count, shared_lock)

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
        """Follow every version of nonce ``tx['nonce']`` until one is mined, or
        until the account's confirmed nonce passes it without any of them.

        A sent nonce is never abandoned: whatever the fees or the node's
        answers, a version in the pool may still be mined and pay. Past
        ``chain_receipt_timeout_s`` the wait is logged, not given up.
        """
        s = self.settings
        nonce, started = tx["nonce"], time.monotonic()
        replace_at, warn_at = started + s.chain_replace_after_s, started + s.chain_receipt_timeout_s
        while True:
            try:
                receipt = await self._first_receipt(hashes)
                if receipt is not None:
                    return await self._checked(tx, receipt)
                if await self._confirmed_count(account.address) > nonce:
                    receipt = await self._first_receipt(hashes)  # mined since the poll above?
                    if receipt is not None:
                        return await self._checked(tx, receipt)
                    raise NonceTaken(f"nonce {nonce} of {account.address} was used by another tx")
                if time.monotonic() >= replace_at:
                    await self._fill_gap(account, nonce, fees)
                    fees = await self._replace(account, tx, fees, hashes)
                    replace_at = time.monotonic() + s.chain_replace_after_s
            except NonceTaken:
                raise
            except (ChainUnavailable, Web3Exception, OSError, TimeoutError, ValueError) as exc:
                log.warning(
                    "nonce %s of %s: node did not answer (%s); still following",
                    nonce,
                    account.address,
                    exc,
                )
            if time.monotonic() >= warn_at:
                log.warning(
                    "nonce %s of %s: not mined after %.0f s (%d versions); following until it "
                    "is mined or replaced",
                    nonce,
                    account.address,
                    time.monotonic() - started,
                    len(hashes),
                )
                warn_at = time.monotonic() + s.chain_receipt_timeout_s
            await asyncio.sleep(s.chain_receipt_poll_s)

    async def _first_receipt(self, hashes: list[bytes]) -> Receipt | None:
        for tx_hash in hashes:
            receipt = await self._receipt(tx_hash)
            if receipt is not None:
                return receipt
        return None

    async def _confirmed_count(self, address: str) -> int:
        return int(await self.w3.eth.get_transaction_count(address, "latest"))  # type: ignore[arg-type]

    async def _fill_gap(self, account: LocalAccount, nonce: int, fees: Fees) -> None:
        """If an earlier nonce left the pool (a reorg dropped its transaction),
        ours can never be mined: fill the gap with an empty self-transfer."""
        async with self.nonces.reserve(account.address) as next_nonce:
            if next_nonce >= nonce:
                return
            log.warning("nonce %s of %s: filling the gap at %s", nonce, account.address, next_nonce)
            filler = {
                "from": account.address,
                "to": account.address,
                "value": 0,
                "gas": 21_000,
                "chainId": self.settings.chain_id,
                "type": 2,
                "nonce": next_nonce,
            }
            await self._sign_and_send(account, filler, fees)

    async def _replace(
        self, account: LocalAccount, tx: dict[str, Any], fees: Fees, hashes: list[bytes]
    ) -> Fees:
        """Send a fee-bumped version (while replacements are allowed and the fees
        stay under the cap); the fees of the newest version sent."""
        s = self.settings
        if len(hashes) > s.chain_max_replacements:
            return fees
        try:
            higher = bumped(fees, await self.base_fee(), s.chain_max_fee_wei, s.chain_fee_bump_bps)
        except FeeCapExceeded:
            return fees  # wait at the fees already sent
        # A refused replacement (e.g. "nonce too low": an earlier version was
        # mined) is not an error: the versions already sent are still followed.
        try:
            hashes.append(await self._sign_and_send(account, tx, higher))
        except ChainUnavailable:
            return fees
        return higher

    async def _checked(self, tx: dict[str, Any], receipt: Receipt) -> Receipt:
        if int(receipt["status"]) == 1:
            return receipt
        # Replay the call at the block to learn the revert data.
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            await self.w3.eth.call(call, block_identifier=receipt["blockNumber"])  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise self.decoder.from_exception(exc) from exc
        if "gas" in tx and int(receipt["gasUsed"]) >= int(tx["gas"]):
            # The call succeeds with all the gas it wants: this one ran out.
            raise ContractReverted("OutOfGas", (int(receipt["gasUsed"]),), b"")
        raise self.decoder.decode(b"")
