"""Every role's key on the local chain, for tests that act as admin, pauser,
funder or signer (a worker's client holds the operator key only)."""

from __future__ import annotations

from services.chain.client import Web3ChainClient
from services.chain.keys import ChainKeys


def keys_of(client: Web3ChainClient) -> ChainKeys:
    return ChainKeys.from_settings(client.settings)
