"""``paystream chain deploy``: the token and the settlement contract, once per chain.

The addresses are written to ``<state>/chain/deployment-<chain id>.json``; run
again against the same chain, nothing is deployed and the file is reused as long
as code still exists at both addresses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import ClientError
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from web3 import AsyncWeb3
from web3.exceptions import Web3Exception

from services.chain import artifacts
from services.chain.client import Deployment
from services.chain.keys import ChainKeys
from services.chain.sender import TxSender
from services.errors import ChainUnavailable, ConfigError
from services.settings import Settings


def deployment_file(settings: Settings) -> Path:
    return settings.state_dir / "chain" / f"deployment-{settings.chain_id}.json"


async def _has_code(w3: AsyncWeb3[Any], address: str) -> bool:
    return len(await w3.eth.get_code(to_checksum_address(address))) > 0


async def require_node(w3: AsyncWeb3[Any], settings: Settings) -> int:
    """The node's chain id; a node that does not answer is ``ChainUnavailable``
    with the fix in its message."""
    try:
        return int(await w3.eth.chain_id)
    except (OSError, TimeoutError, ClientError, Web3Exception) as exc:
        raise ChainUnavailable(
            f"the EVM node at {settings.chain_rpc_shown} does not answer ({type(exc).__name__}): "
            "start the stack with `paystream stack up`, or check PAYSTREAM_ANVIL_PORT"
        ) from exc


async def load_deployment(w3: AsyncWeb3[Any], settings: Settings) -> Deployment | None:
    """The recorded deployment, if its contracts still exist on this chain."""
    chain_id = await require_node(w3, settings)
    path = deployment_file(settings)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    deployment = Deployment(
        chain_id=int(data["chain_id"]),
        token=data["token"],
        settlement=data["settlement"],
        signers=tuple(data["signers"]),
    )
    if deployment.chain_id != chain_id:
        return None
    if data.get("code_version") != code_version():
        return None  # deployed from other sources: deploy the current contracts
    if not (await _has_code(w3, deployment.token) and await _has_code(w3, deployment.settlement)):
        return None
    return deployment


async def require_deployment(w3: AsyncWeb3[Any], settings: Settings) -> Deployment:
    deployment = await load_deployment(w3, settings)
    if deployment is None:
        raise ConfigError("no settlement contract on this chain: run `paystream chain deploy`")
    return deployment


async def _deploy(sender: TxSender, keys: ChainKeys, name: str, *args: Any) -> str:
    artifact = artifacts.load(name)
    (constructor,) = [item for item in artifact.abi if item["type"] == "constructor"]
    types = [str(i["type"]) for i in constructor["inputs"]]
    data = artifact.bytecode + encode(types, list(args)).hex()
    receipt = await sender.send(keys.admin, {"data": data})
    return to_checksum_address(receipt["contractAddress"])


async def deploy_contracts(settings: Settings, keys: ChainKeys, sender: TxSender) -> Deployment:
    """Deploy a new token and settlement contract (no state file is written)."""
    token = await _deploy(sender, keys, "TestStablecoin", keys.admin.address)
    signers = [a.address for a in keys.signers]
    settlement = await _deploy(
        sender,
        keys,
        "PaymentSettlement",
        token,
        keys.admin.address,
        keys.operator.address,
        keys.pauser.address,
        keys.fees.address,
        signers,
        settings.chain_required_approvals,
        settings.chain_approval_threshold,
        settings.chain_daily_cap,
    )
    return Deployment(
        chain_id=settings.chain_id, token=token, settlement=settlement, signers=tuple(signers)
    )


async def deploy(
    w3: AsyncWeb3[Any], settings: Settings, keys: ChainKeys, sender: TxSender
) -> tuple[Deployment, bool]:
    """Deploy unless already deployed; returns the deployment and whether it is new."""
    existing = await load_deployment(w3, settings)
    if existing is not None:
        return existing, False
    deployment = await deploy_contracts(settings, keys, sender)
    record_deployment(settings, deployment)
    return deployment, True


def record_deployment(settings: Settings, deployment: Deployment) -> None:
    """Write the deployment file the workers and the approval signer read."""
    path = deployment_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**deployment_json(deployment), "code_version": code_version()}
    path.write_text(json.dumps(record, indent=2) + "\n")


def code_version() -> str:
    """A digest of the contracts' bytecode this engine was built with."""
    digest = hashlib.sha256()
    for name in ("TestStablecoin", "PaymentSettlement"):
        digest.update(artifacts.load(name).bytecode.encode())
    return digest.hexdigest()[:16]


def deployment_json(deployment: Deployment) -> dict[str, Any]:
    data = asdict(deployment)
    data["signers"] = list(deployment.signers)
    return data
