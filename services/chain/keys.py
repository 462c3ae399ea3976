"""The chain accounts paystream uses, one per role, and EIP-712 batch approvals.

Each process is given only the key of its role:
- the operator (sends batches): the stream workers, ``PAYSTREAM_CHAIN_OPERATOR_KEY``;
- the approval signers: ``paystream signer`` only, ``PAYSTREAM_SIGNER_MNEMONIC``;
- the admin (policy, signers, cap, withdrawals, unpause): admin commands,
  ``PAYSTREAM_CHAIN_ADMIN_KEY``;
- the pauser (stops the contract at once): the on-call, ``PAYSTREAM_CHAIN_PAUSER_KEY``.

On the local chain a key that is not set is derived from the mnemonic (anvil's
public one by default, which funds them): index 0 admin, 1 operator, 2.. the
approval signers, ``PAUSER_INDEX`` the pauser, ``FEES_INDEX`` the platform's fee
account (the contract's fee recipient) and ``FUNDER_INDEX`` the account that
makes demo and test deposits. On any other chain nothing falls back to anvil's
mnemonic, and a worker refuses to start with any key but the operator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr

from services.errors import ConfigError
from services.settings import LOCAL_CHAIN_ID, LOCAL_MNEMONIC, Settings

Account.enable_unaudited_hdwallet_features()

ADMIN_INDEX = 0
OPERATOR_INDEX = 1
FIRST_SIGNER_INDEX = 2
PAUSER_INDEX = 17
FEES_INDEX = 18
FUNDER_INDEX = 19


def _from_mnemonic(mnemonic: SecretStr | None, settings: Settings, index: int) -> LocalAccount:
    if mnemonic is None:
        if settings.chain_id != LOCAL_CHAIN_ID:
            raise ConfigError(
                f"chain id {settings.chain_id} is not the local chain: set this process's "
                "own key (PAYSTREAM_CHAIN_OPERATOR_KEY for a worker, PAYSTREAM_SIGNER_MNEMONIC "
                "for the signer, PAYSTREAM_CHAIN_ADMIN_KEY for admin commands)"
            )
        mnemonic = SecretStr(LOCAL_MNEMONIC)
    account: LocalAccount = Account.from_mnemonic(
        mnemonic.get_secret_value(), account_path=f"m/44'/60'/0'/0/{index}"
    )
    return account


def derive(settings: Settings, index: int) -> LocalAccount:
    """Key ``index`` of the chain mnemonic."""
    return _from_mnemonic(settings.chain_mnemonic, settings, index)


def _role(key: SecretStr | None, settings: Settings, index: int) -> LocalAccount:
    if key is not None:
        account: LocalAccount = Account.from_key(key.get_secret_value())
        return account
    return derive(settings, index)


def operator_key(settings: Settings) -> LocalAccount:
    return _role(settings.chain_operator_key, settings, OPERATOR_INDEX)


def optional_operator_key(settings: Settings) -> LocalAccount | None:
    """The operator key, or None for a command off the local chain without it."""
    try:
        return operator_key(settings)
    except ConfigError:
        return None


def admin_key(settings: Settings) -> LocalAccount:
    return _role(settings.chain_admin_key, settings, ADMIN_INDEX)


def pauser_key(settings: Settings) -> LocalAccount:
    return _role(settings.chain_pauser_key, settings, PAUSER_INDEX)


def signer_keys(settings: Settings) -> tuple[LocalAccount, ...]:
    """The approval signers' keys (``paystream signer``'s alone)."""
    mnemonic = settings.signer_mnemonic or settings.chain_mnemonic
    return tuple(
        _from_mnemonic(mnemonic, settings, FIRST_SIGNER_INDEX + i)
        for i in range(settings.chain_signer_count)
    )


def worker_key(settings: Settings) -> LocalAccount:
    """The operator key, the only one a worker holds. Off the local chain a
    worker given any other key (or a mnemonic that derives them) refuses to
    start: one compromised worker must not hold the admin's or the signers' keys."""
    if settings.chain_id != LOCAL_CHAIN_ID:
        extra = [
            name
            for name, value in (
                ("PAYSTREAM_CHAIN_MNEMONIC", settings.chain_mnemonic),
                ("PAYSTREAM_CHAIN_ADMIN_KEY", settings.chain_admin_key),
                ("PAYSTREAM_CHAIN_PAUSER_KEY", settings.chain_pauser_key),
                ("PAYSTREAM_SIGNER_MNEMONIC", settings.signer_mnemonic),
            )
            if value is not None
        ]
        if extra:
            raise ConfigError(
                f"a worker holds the operator key only: remove {', '.join(extra)} from its "
                "environment (PAYSTREAM_CHAIN_OPERATOR_KEY is its key)"
            )
    return operator_key(settings)


@dataclass(frozen=True)
class ChainKeys:
    """Every role's key, for deploying and for the local demo and tests."""

    admin: LocalAccount
    operator: LocalAccount
    pauser: LocalAccount
    signers: tuple[LocalAccount, ...]
    fees: LocalAccount
    funder: LocalAccount

    @classmethod
    def from_settings(cls, settings: Settings) -> ChainKeys:
        return cls(
            admin=admin_key(settings),
            operator=operator_key(settings),
            pauser=pauser_key(settings),
            signers=signer_keys(settings),
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
