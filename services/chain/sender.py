"""Sign, send, replace when stuck, and wait for the receipt of a transaction."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, Web3Exception

from services.chain import rpc
from services.chain.fees import FeeCapExceeded, Fees, bumped, initial_fees
from services.chain.nonces import NonceManager, SharedLock
from services.chain.reverts import ContractReverted, RevertDecoder
from services.errors import ChainUnavailable, TransactionCancelled
from services.settings import Settings

Receipt = dict[str, Any]
log = logging.getLogger("paystream.chain")

NONCE_TAKEN_AFTER_S = 2.0  # the confirmed nonce past ours this long, and still no receipt


class NonceTaken(ChainUnavailable):
    """The account's confirmed nonce passed ours and none of our versions was
    mined: another transaction used the nonce, so this one can never be mined."""


@dataclass
class _Sent:
    """What was sent at one nonce: the transaction, what is followed now (the
    transaction, or its cancel), and every version's hash, newest last."""

    tx: dict[str, Any]
    following: dict[str, Any]
    fees: Fees  # of the newest version
    hashes: list[bytes] = field(default_factory=list)
    cancels: set[bytes] = field(default_factory=set)
    newest_raw: bytes = b""

    @property
    def nonce(self) -> int:
        return int(self.tx["nonce"])

    def add(self, tx_hash: bytes, raw: bytes, fees: Fees, cancel: bool) -> None:
        self.hashes.append(tx_hash)
        if cancel:
            self.cancels.add(tx_hash)
        self.fees, self.newest_raw = fees, raw


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
        FeeCapExceeded when fees are above the cap, NonceTaken when another
        transaction used its nonce, TransactionCancelled when it was not mined
        within ``chain_cancel_after_s`` and its cancel was.
        """
        s = self.settings
        tx = {"from": account.address, "chainId": s.chain_id, "type": 2, "value": 0, **tx}
        if "gas" not in tx:
            tx["gas"] = await self.estimate_gas(tx)
        fees = initial_fees(await self.base_fee(), s.chain_priority_fee_wei, s.chain_max_fee_wei)
        async with self.nonces.reserve(account.address) as nonce:
            tx["nonce"] = nonce
            sent = _Sent(tx, tx, fees)
            await self._sign_and_send(account, sent, tx, fees)
        return await self._await_receipt(account, sent)

    async def _sign_and_send(
        self, account: LocalAccount, sent: _Sent | None, tx: dict[str, Any], fees: Fees
    ) -> bytes:
        """Sign and send one version of ``tx``; recorded in ``sent`` (if given)
        before the node is asked, so that a version the node took without
        answering is still followed."""
        signed = account.sign_transaction({**tx, **fees.as_tx()})
        raw = bytes(signed.raw_transaction)
        if sent is not None:
            sent.add(bytes(signed.hash), raw, fees, cancel=tx is not sent.tx)
        return await self._broadcast(raw, tx["nonce"])

    async def _broadcast(self, raw: bytes, nonce: int) -> bytes:
        try:
            return bytes(await self.w3.eth.send_raw_transaction(raw))
        except (Web3Exception, OSError, ValueError) as exc:
            raise ChainUnavailable(f"sending nonce {nonce} failed: {exc}") from exc

    async def _receipt(self, tx_hash: bytes) -> Receipt | None:
        return await rpc.receipt(self.w3, tx_hash)

    async def _await_receipt(self, account: LocalAccount, sent: _Sent) -> Receipt:
        """Follow every version of nonce ``sent.nonce`` until one is mined, or
        until the account's confirmed nonce passes it without any of them.

        A sent nonce is never abandoned: whatever the fees or the node's
        answers, a version in the pool may still be mined and pay. Past
        ``chain_receipt_timeout_s`` the wait is logged; a version the node
        forgot is sent again; past ``chain_cancel_after_s`` the transaction is
        cancelled, and only a mined cancel ends the wait without a receipt.
        """
        s = self.settings
        nonce, started = sent.nonce, time.monotonic()
        replace_at, warn_at = started + s.chain_replace_after_s, started + s.chain_receipt_timeout_s
        cancel_at = started + s.chain_cancel_after_s
        taken_at: float | None = None  # when the confirmed nonce was first seen past ours
        while True:
            try:
                receipt = await self._first_receipt(sent.hashes)
                if receipt is not None:
                    return await self._mined(sent, receipt, time.monotonic() - started)
                if await self._confirmed_count(account.address) > nonce:
                    # A node may count a mined nonce before it serves the
                    # receipt: only a receipt absent for a while proves the
                    # nonce another transaction's.
                    taken_at = taken_at or time.monotonic()
                    if time.monotonic() - taken_at >= NONCE_TAKEN_AFTER_S:
                        ours = ", ".join("0x" + h.hex() for h in sent.hashes)
                        raise NonceTaken(
                            f"nonce {nonce} of {account.address} was used by another tx "
                            f"(ours: {ours})"
                        )
                    await asyncio.sleep(s.chain_receipt_poll_s)
                    continue
                if time.monotonic() >= replace_at:
                    await self._fill_gap(account, nonce, sent.fees)
                    await self._resend_if_forgotten(sent)
                    if time.monotonic() >= cancel_at:
                        await self._cancel(account, sent, time.monotonic() - started)
                    else:
                        await self._replace(account, sent)
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
                    "is mined or replaced (cancelled after %.0f s)",
                    nonce,
                    account.address,
                    time.monotonic() - started,
                    len(sent.hashes),
                    s.chain_cancel_after_s,
                )
                warn_at = time.monotonic() + s.chain_receipt_timeout_s
            await asyncio.sleep(s.chain_receipt_poll_s)

    async def _mined(self, sent: _Sent, receipt: Receipt, waited_s: float) -> Receipt:
        if bytes(receipt["transactionHash"]) in sent.cancels:
            raise TransactionCancelled(
                f"nonce {sent.nonce}: not mined in {waited_s:.0f} s; the empty transaction "
                f"that cancelled it was mined in block {receipt['blockNumber']}"
            )
        return await self._checked(sent.tx, receipt)

    async def _first_receipt(self, hashes: list[bytes]) -> Receipt | None:
        for tx_hash in hashes:
            receipt = await self._receipt(tx_hash)
            if receipt is not None:
                return receipt
        return None

    async def _confirmed_count(self, address: str) -> int:
        return int(await self.w3.eth.get_transaction_count(address, "latest"))  # type: ignore[arg-type]

    async def _resend_if_forgotten(self, sent: _Sent) -> None:
        """The node dropped the newest version from its pool (evicted, restarted,
        a reorg): send those same bytes again, whatever the replacement limit."""
        newest = sent.hashes[-1]
        if await rpc.call(self.w3, "eth_getTransactionByHash", ["0x" + newest.hex()]):
            return
        log.warning("nonce %s: the node forgot 0x%s; sending it again", sent.nonce, newest.hex())
        await self._broadcast(sent.newest_raw, sent.nonce)

    async def _fill_gap(self, account: LocalAccount, nonce: int, fees: Fees) -> None:
        """If an earlier nonce left the pool (a reorg dropped its transaction),
        ours can never be mined: fill the gap with an empty self-transfer."""
        async with self.nonces.reserve(account.address) as next_nonce:
            if next_nonce >= nonce:
                return
            log.warning("nonce %s of %s: filling the gap at %s", nonce, account.address, next_nonce)
            await self._sign_and_send(account, None, self._empty(account, next_nonce), fees)

    def _empty(self, account: LocalAccount, nonce: int) -> dict[str, Any]:
        """A zero-value transfer to oneself: it only uses up the nonce."""
        return {
            "from": account.address,
            "to": account.address,
            "value": 0,
            "gas": 21_000,
            "chainId": self.settings.chain_id,
            "type": 2,
            "nonce": nonce,
        }

    async def _replace(self, account: LocalAccount, sent: _Sent) -> None:
        """Send a fee-bumped version (while replacements are allowed and the fees
        stay under the cap)."""
        s = self.settings
        if len(sent.hashes) > s.chain_max_replacements:
            return
        try:
            higher = bumped(
                sent.fees, await self.base_fee(), s.chain_max_fee_wei, s.chain_fee_bump_bps
            )
        except FeeCapExceeded:
            return  # wait at the fees already sent
        # A refused replacement (e.g. "nonce too low": an earlier version was
        # mined) is not an error: the versions already sent are still followed.
        with suppress(ChainUnavailable):
            await self._sign_and_send(account, sent, sent.following, higher)

    async def _cancel(self, account: LocalAccount, sent: _Sent, waited_s: float) -> None:
        """Replace the transaction with an empty one at its nonce (fees bumped,
        under the cap): once that is mined, no version of it can ever be.
        Sent again, bumped, each round the cancel is not mined."""
        s = self.settings
        if sent.following is sent.tx:
            log.warning(
                "nonce %s of %s: not mined after %.0f s; cancelling it",
                sent.nonce,
                account.address,
                waited_s,
            )
            sent.following = self._empty(account, sent.nonce)
        try:
            higher = bumped(
                sent.fees, await self.base_fee(), s.chain_max_fee_wei, s.chain_fee_bump_bps
            )
        except FeeCapExceeded:
            return  # the cancel waits for fees under the cap too
        with suppress(ChainUnavailable):
            await self._sign_and_send(account, sent, sent.following, higher)

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
