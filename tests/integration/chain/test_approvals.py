"""M-of-N EIP-712 approvals for batches above the threshold (2 of 3 here)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from schemas.onchain import PaymentRecord, account_ref
from services.chain.client import Web3ChainClient
from services.chain.keys import approval_message, sign_approvals
from services.chain.packing import pack_batch
from services.chain.reverts import ContractReverted
from services.signer.server import Signer
from tests.support.keys import keys_of

pytestmark = pytest.mark.integration

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _big_record(chain: Web3ChainClient, sequence: int) -> PaymentRecord:
    amount = chain.settings.chain_approval_threshold + 1
    return PaymentRecord(Account.create().address, amount, sequence, account_ref("whale"))


def _big_batch(chain: Web3ChainClient, sequence: int) -> tuple[bytes, int]:
    record = _big_record(chain, sequence)
    return pack_batch([record]), record.amount


async def _deadline(chain: Web3ChainClient, ahead_s: int = 300) -> int:
    return int((await chain.w3.eth.get_block("latest"))["timestamp"]) + ahead_s


def _message(
    chain: Web3ChainClient, packed: bytes, nonce: int, deadline: int, **override: Any
) -> Any:
    kwargs: dict[str, Any] = {
        "chain_id": chain.settings.chain_id,
        "contract": chain.settlement.address,
        "batch_id": 9,
        "payments_hash": keccak(packed),
        "nonce": nonce,
        "deadline": deadline,
    }
    kwargs.update(override)
    return approval_message(**kwargs)


async def _submit(
    chain: Web3ChainClient, packed: bytes, nonce: int, deadline: int, sigs: list[bytes]
) -> Any:
    return await chain.call_settlement(
        chain.operator, "settleBatchApproved", 9, packed, nonce, deadline, sigs
    )


async def _reverts(
    chain: Web3ChainClient, packed: bytes, nonce: int, deadline: int, sigs: list[bytes]
) -> str:
    with pytest.raises(ContractReverted) as info:
        await _submit(chain, packed, nonce, deadline, sigs)
    return info.value.name


async def test_m_valid_approvals_settle_a_large_batch(
    chain: Web3ChainClient, signer: Signer
) -> None:
    await chain.call_token(keys_of(chain).admin, "mint", chain.settlement.address, 10**13)
    record = _big_record(chain, 1)
    receipt = await chain.settle_batch(9, [record])  # the signer process approves it
    assert [p.sequence for p in receipt.settled] == [1]
    assert await chain.token_balance(record.payee) == record.amount


async def test_large_batch_without_approvals_is_refused(chain: Web3ChainClient) -> None:
    packed, _ = _big_batch(chain, 2)
    with pytest.raises(ContractReverted) as info:
        await chain.call_settlement(chain.operator, "settleBatch", 9, packed)
    assert info.value.name == "ApprovalsRequired"


async def test_m_minus_one_approvals_fail(chain: Web3ChainClient) -> None:
    packed, _ = _big_batch(chain, 3)
    deadline = await _deadline(chain)
    sigs = sign_approvals([keys_of(chain).signers[0]], _message(chain, packed, 1, deadline))
    assert await _reverts(chain, packed, 1, deadline, sigs) == "NotEnoughApprovals"


@pytest.mark.parametrize("override", [{"chain_id": 1}, {"contract": "0x" + "11" * 20}])
async def test_approvals_for_another_domain_fail(
    chain: Web3ChainClient, override: dict[str, Any]
) -> None:
    packed, _ = _big_batch(chain, 4)
    deadline = await _deadline(chain)
    message = _message(chain, packed, 2, deadline, **override)
    sigs = sign_approvals(list(keys_of(chain).signers[:2]), message)
    assert await _reverts(chain, packed, 2, deadline, sigs) == "UnknownSigner"


async def test_expired_deadline_fails(chain: Web3ChainClient) -> None:
    packed, _ = _big_batch(chain, 5)
    deadline = await _deadline(chain, ahead_s=-1)
    sigs = sign_approvals(list(keys_of(chain).signers[:2]), _message(chain, packed, 3, deadline))
    assert await _reverts(chain, packed, 3, deadline, sigs) == "ApprovalExpired"


async def test_reused_nonce_fails(chain: Web3ChainClient) -> None:
    await chain.call_token(keys_of(chain).admin, "mint", chain.settlement.address, 10**13)
    packed, _ = _big_batch(chain, 6)
    deadline = await _deadline(chain)
    sigs = sign_approvals(list(keys_of(chain).signers[:2]), _message(chain, packed, 4, deadline))
    await _submit(chain, packed, 4, deadline, sigs)

    again, _ = _big_batch(chain, 7)
    sigs = sign_approvals(list(keys_of(chain).signers[:2]), _message(chain, again, 4, deadline))
    assert await _reverts(chain, again, 4, deadline, sigs) == "ApprovalNonceUsed"


async def test_the_same_signer_twice_counts_once(chain: Web3ChainClient) -> None:
    packed, _ = _big_batch(chain, 8)
    deadline = await _deadline(chain)
    (sig,) = sign_approvals([keys_of(chain).signers[0]], _message(chain, packed, 5, deadline))
    assert await _reverts(chain, packed, 5, deadline, [sig, sig]) == "SignersNotAscending"


async def test_high_s_signature_fails(chain: Web3ChainClient) -> None:
    packed, _ = _big_batch(chain, 9)
    deadline = await _deadline(chain)
    sigs = sign_approvals(list(keys_of(chain).signers[:2]), _message(chain, packed, 6, deadline))
    r, s, v = sigs[0][:32], int.from_bytes(sigs[0][32:64], "big"), sigs[0][64]
    malleable = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    assert await _reverts(chain, packed, 6, deadline, [malleable, sigs[1]]) == (
        "ECDSAInvalidSignatureS"
    )
