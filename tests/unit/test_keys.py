"""Each process holds its role's key only (services/chain/keys.py)."""

from __future__ import annotations

import pytest
from eth_account import Account
from pydantic import SecretStr

from services.chain.keys import (
    ChainKeys,
    admin_key,
    operator_key,
    optional_operator_key,
    signer_keys,
    worker_key,
)
from services.errors import ConfigError
from services.settings import Settings

OPERATOR = "0x" + "11" * 32


def remote(**keys: str) -> Settings:
    base = {
        "chain_id": 8453,
        "confirmations_min": 10,
        "finality_depth": 10,
        "pg_password": "own",
        "signer_token": "own-token",
        "ops_token": "own-ops",
    }
    return Settings.model_validate({**base, **keys})


def test_the_local_chain_derives_every_role_apart() -> None:
    keys = ChainKeys.from_settings(Settings())
    addresses = [keys.admin, keys.operator, keys.pauser, *keys.signers, keys.fees, keys.funder]
    assert len({a.address for a in addresses}) == len(addresses)


def test_a_worker_off_the_local_chain_holds_the_operator_key_only() -> None:
    settings = remote(chain_operator_key=OPERATOR)
    assert worker_key(settings).address == Account.from_key(OPERATOR).address
    for extra in ("chain_admin_key", "chain_pauser_key"):
        with pytest.raises(ConfigError, match=f"PAYSTREAM_{extra.upper()}"):
            worker_key(remote(chain_operator_key=OPERATOR, **{extra: "0x" + "22" * 32}))
    with pytest.raises(ConfigError, match="PAYSTREAM_CHAIN_MNEMONIC"):
        worker_key(remote(chain_operator_key=OPERATOR, chain_mnemonic="own words here"))


def test_nothing_falls_back_to_the_public_mnemonic_off_the_local_chain() -> None:
    settings = remote()
    for role in (operator_key, admin_key, signer_keys):
        with pytest.raises(ConfigError, match="not the local chain"):
            role(settings)
    assert optional_operator_key(settings) is None


def test_a_key_that_is_set_wins_over_the_mnemonic() -> None:
    settings = Settings(chain_admin_key=SecretStr("0x" + "33" * 32))
    assert admin_key(settings).address == Account.from_key("0x" + "33" * 32).address
    assert operator_key(settings).address != admin_key(settings).address
