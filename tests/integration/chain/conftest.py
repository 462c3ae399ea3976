"""Chain tests run on a private anvil (real node, own port and state, automine),
so that they are fast and can switch mining modes without touching the stack's
chain. The stack's own anvil is covered by tests/integration/test_anvil.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from devtools.harness.isolated import free_port
from devtools.stack.anvil import AnvilService, ensure_node_packages
from devtools.stack.base import StatePaths
from services.bootstrap import tx_sender, web3_client
from services.chain.approvals import SignerClient
from services.chain.client import Web3ChainClient
from services.chain.deployment import deploy_contracts, record_deployment
from services.chain.keys import ChainKeys
from services.settings import Settings
from services.signer.server import Signer, build_signer, signer_app

TREASURY = 10**15  # 1e9 tokens of 6 decimals


@pytest.fixture(scope="session")
def chain_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    state: Path = tmp_path_factory.mktemp("anvil-state")
    settings = Settings().model_copy(
        update={
            "state_dir": state,
            "anvil_port": free_port(),
            "anvil_block_time_s": 0.0,
            "chain_approval_threshold": 10**12,
            "signer_port": free_port(),
            "chain_replace_after_s": 0.5,
            "chain_receipt_timeout_s": 30.0,
        }
    )
    ensure_node_packages()
    anvil = AnvilService(settings, StatePaths(settings))
    StatePaths(settings).ensure()
    anvil.start()
    yield settings
    anvil.stop()


@pytest_asyncio.fixture
async def chain(chain_settings: Settings) -> AsyncIterator[Web3ChainClient]:
    """Fresh contracts for each test, with a funded treasury."""
    w3 = web3_client(chain_settings)
    keys = ChainKeys.from_settings(chain_settings)
    sender = tx_sender(w3, chain_settings)
    deployment = await deploy_contracts(chain_settings, keys, sender)
    client = Web3ChainClient(
        w3, chain_settings, keys.operator, deployment, sender, SignerClient(chain_settings)
    )
    await client.call_token(keys.admin, "mint", deployment.settlement, TREASURY)
    yield client
    await client.close()


async def rpc(client: Web3ChainClient, method: str, *params: Any) -> Any:
    response = await client.w3.provider.make_request(method, list(params))
    return response.get("result")


@pytest_asyncio.fixture
async def signer(chain: Web3ChainClient, tmp_path: Path) -> AsyncIterator[Signer]:
    """A real approval signer over HTTP for ``chain``'s contract, with the local
    policy and a journal of its own."""
    settings = chain.settings.model_copy(update={"state_dir": tmp_path})
    record_deployment(settings, chain.deployment)
    async with serving(build_signer(settings)) as running:
        yield running


@asynccontextmanager
async def serving(signer: Signer) -> AsyncIterator[Signer]:
    runner = web.AppRunner(signer_app(signer))
    await runner.setup()
    await web.TCPSite(runner, signer.settings.host, signer.settings.signer_port).start()
    try:
        yield signer
    finally:
        await runner.cleanup()
