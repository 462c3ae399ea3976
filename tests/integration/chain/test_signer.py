"""The approval signer over HTTP (a real aiohttp server on this host) and the
contract's own limits: the rolling daily cap and the pauser role."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import SecretStr

from schemas.onchain import PaymentRecord, account_ref
from services.chain.approvals import ApprovalRefused, SignerClient, SignerUnavailable
from services.chain.client import Web3ChainClient
from services.chain.deployment import record_deployment
from services.chain.packing import pack_batch
from services.chain.reverts import ContractReverted
from services.signer.journal import ApprovalJournal
from services.signer.policy import SignerPolicy
from services.signer.server import Signer
from tests.integration.chain.conftest import rpc, serving
from tests.support.keys import keys_of

pytestmark = pytest.mark.integration

UNIT = 10**12  # the chain tests' approval threshold: every batch here needs approvals


def _records(first: int, *amounts: int, payee: str | None = None) -> list[PaymentRecord]:
    return [
        PaymentRecord(payee or Account.create().address, amount, first + i, account_ref("big"))
        for i, amount in enumerate(amounts)
    ]


def _signer(chain: Web3ChainClient, tmp_path: Path, **policy: object) -> Signer:
    settings = chain.settings.model_copy(update={"state_dir": tmp_path})
    record_deployment(settings, chain.deployment)
    path = tmp_path / "policy.json"
    base = {"max_batch_amount": 10 * UNIT, "max_daily_amount": 100 * UNIT, "allowed_payees": None}
    path.write_text(json.dumps({**base, **policy}))
    journal = ApprovalJournal(tmp_path / "journal.jsonl", time.time)
    return Signer(settings, SignerPolicy.load(path), journal)


async def _fund(chain: Web3ChainClient, amount: int) -> None:
    await chain.call_token(keys_of(chain).admin, "mint", chain.settlement.address, amount)


async def test_a_batch_over_the_signers_cap_is_refused(
    chain: Web3ChainClient, tmp_path: Path
) -> None:
    async with serving(_signer(chain, tmp_path, max_batch_amount=3 * UNIT)):
        with pytest.raises(ApprovalRefused) as info:
            await chain.settle_batch(1, _records(1, 2 * UNIT, 2 * UNIT))
    assert info.value.code == "BATCH_OVER_CAP"


async def test_only_allowed_payees_are_approved(chain: Web3ChainClient, tmp_path: Path) -> None:
    allowed = Account.create().address
    await _fund(chain, 10 * UNIT)
    async with serving(_signer(chain, tmp_path, allowed_payees=[allowed])):
        stranger = _records(2, 2 * UNIT)
        with pytest.raises(ApprovalRefused) as info:
            await chain.settle_batch(1, _records(1, 2 * UNIT, payee=allowed) + stranger)
        assert info.value.code == "PAYEE_NOT_ALLOWED"
        assert info.value.payees == (stranger[0].payee.lower(),)
        receipt = await chain.settle_batch(1, _records(1, 2 * UNIT, payee=allowed))
    assert [p.sequence for p in receipt.settled] == [1]


async def test_the_daily_cap_counts_each_batch_once_and_survives_a_restart(
    chain: Web3ChainClient, tmp_path: Path
) -> None:
    await _fund(chain, 10 * UNIT)
    first = _records(1, 3 * UNIT)
    async with serving(_signer(chain, tmp_path, max_daily_amount=5 * UNIT)):
        await chain.settle_batch(1, first)
        with pytest.raises(ApprovalRefused) as info:
            await chain.settle_batch(2, _records(2, 3 * UNIT))
        assert info.value.code == "DAILY_CAP_REACHED"
    async with serving(_signer(chain, tmp_path, max_daily_amount=5 * UNIT)) as restarted:
        assert restarted.journal.spent() == 3 * UNIT
        again = await chain.settle_batch(1, first)  # approved again, counted once, paid once
        assert again.settled == ()
        with pytest.raises(ApprovalRefused):
            await chain.settle_batch(2, _records(2, 3 * UNIT))


async def test_a_worker_with_another_token_or_no_signer_waits(
    chain: Web3ChainClient, tmp_path: Path
) -> None:
    with pytest.raises(SignerUnavailable, match="does not answer"):
        await chain.settle_batch(1, _records(1, 2 * UNIT))
    async with serving(_signer(chain, tmp_path)):
        wrong = chain.settings.model_copy(update={"signer_token": SecretStr("not-the-token")})
        client = SignerClient(wrong)
        try:
            with pytest.raises(SignerUnavailable, match="PAYSTREAM_SIGNER_TOKEN"):
                await client.approve(chain.settlement.address, 1, b"\0" * 56, 1, 1)
        finally:
            await client.close()


async def test_the_signer_signs_for_its_own_contract_only(
    chain: Web3ChainClient, tmp_path: Path
) -> None:
    async with serving(_signer(chain, tmp_path)) as signer:
        other = Account.create().address
        with pytest.raises(ApprovalRefused) as info:
            await chain.signer.approve(other, 1, b"\1" * 56, 1, 1)
    assert info.value.code == "WRONG_CONTRACT"
    assert signer.journal.spent() == 0


async def test_the_contracts_daily_cap_refills_with_time(chain: Web3ChainClient) -> None:
    admin = keys_of(chain).admin
    await _fund(chain, 10 * UNIT)
    await chain.call_settlement(admin, "setDailyCap", UNIT // 2)
    await chain.settle_batch(1, _records(1, UNIT // 4))
    with pytest.raises(ContractReverted) as info:
        await chain.settle_batch(2, _records(2, UNIT // 2))
    assert info.value.name == "DailyCapExceeded"
    await rpc(chain, "evm_increaseTime", 12 * 3600)  # half a day: half the cap flows back
    await rpc(chain, "evm_mine")
    receipt = await chain.settle_batch(2, _records(2, UNIT // 2))
    assert [p.sequence for p in receipt.settled] == [2]


async def test_pausing_is_the_pausers_and_unpausing_the_admins(chain: Web3ChainClient) -> None:
    keys = keys_of(chain)
    for who, fn in ((keys.admin, "pause"), (keys.operator, "pause"), (keys.pauser, "unpause")):
        with pytest.raises(ContractReverted) as info:
            await chain.call_settlement(who, fn)
        assert info.value.name == "AccessControlUnauthorizedAccount"
    await chain.call_settlement(keys.pauser, "pause")
    await chain.call_settlement(keys.admin, "unpause")


async def test_a_simulation_before_the_last_blocks_time_is_not_refused(
    chain: Web3ChainClient,
) -> None:
    """A node may simulate a settlement at a time before the last block (an
    anvil gas estimate did, in CI): the cap's refill must count no time then,
    not underflow (a Panic that once failed two payments as
    SETTLEMENT_REJECTED)."""
    await _fund(chain, 10 * UNIT)
    receipt = await chain.settle_batch(1, _records(1, UNIT // 4))
    mined = await rpc(chain, "eth_getBlockByNumber", hex(receipt.block_number), False)
    call = {
        "from": chain.operator.address,
        "to": chain.settlement.address,
        "data": chain.settlement.encode_abi(
            "settleBatch", args=[2, pack_batch(_records(2, UNIT // 4))]
        ),
    }
    earlier = {"time": hex(int(mined["timestamp"], 16) - 5)}
    response = await chain.w3.provider.make_request("eth_call", [call, "latest", {}, earlier])
    assert "error" not in response, response
