"""The chain accounts paystream uses, and EIP-712 batch approvals.

Locally every key is derived from the configured mnemonic (anvil funds them):
index 0 admin, 1 operator (sends batches), 2.. the N approval signers,
``FEES_INDEX`` the platform's fee account (the contract's fee recipient) and
``FUNDER_INDEX`` the account that makes demo and test deposits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from services.settings import Settings

Account.enable_unaudited_hdwallet_features()

ADMIN_INDEX = 0
OPERATOR_INDEX = 1
FIRST_SIGNER_INDEX = 2
FEES_INDEX = 18
FUNDER_INDEX = 19


def derive(settings: Settings, index: int) -> LocalAccount:
    account: LocalAccount = Account.from_mnemonic(
        settings.chain_mnemonic.get_secret_value(), account_path=f"m/44'/60'/0'/0/{index}"
    )
    return account


@dataclass(frozen=True)
class ChainKeys:
    admin: LocalAccount
    operator: LocalAccount
    signers: tuple[LocalAccount, ...]
    fees: LocalAccount
    funder: LocalAccount

    @classmethod
    def from_settings(cls, settings: Settings) -> ChainKeys:
        return cls(
            admin=derive(settings, ADMIN_INDEX),
            operator=derive(settings, OPERATOR_INDEX),
            signers=tuple(
                derive(settings, FIRST_SIGNER_INDEX + i) for i in range(settings.chain_signer_count)
            ),
            fees=derive(settings, FEES_INDEX),
            funder=derive(settings, FUNDER_INDEX),
        )


def approval_message(
    chain_id: int, contract: str, batch_id: int, payments_hash: bytes, nonce: int, deadline: int
) -> dict[str, Any]:
    """The EIP-712 typed data of a batch approval (domain binds chain and contract)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "BatchApproval": [
                {"name": "batchId", "type": "uint64"},
                {"name": "paymentsHash", "type": "bytes32"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "BatchApproval",
        "domain": {
            "name": "PaymentSettlement",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": contract,
        },
        "message": {
            "batchId": batch_id,
            "paymentsHash": payments_hash,
            "nonce": nonce,
            "deadline": deadline,
        },
    }


def sign_approvals(signers: list[LocalAccount], message: dict[str, Any]) -> list[bytes]:
    """65-byte (r, s, v) signatures, ordered by ascending signer address as the
    contract requires; eth_account produces canonical low-s signatures."""
    signable = encode_typed_data(full_message=message)
    ordered = sorted(signers, key=lambda a: int(a.address, 16))
    return [bytes(a.sign_message(signable).signature) for a in ordered]
