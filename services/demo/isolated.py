"""An isolated pipeline on the shared local stack: its own app id (consumer
group and tables), topic prefix, state directory, web port and contract
deployment, so runs (tests, benchmarks) never see each other's records."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from pathlib import Path

from services.bootstrap import tx_sender, web3_client
from services.chain.deployment import deploy
from services.chain.keys import ChainKeys
from services.settings import Settings
from services.topics import create_topics


@dataclass(frozen=True)
class Isolated:
    settings: Settings
    env: dict[str, str]  # the same settings for child processes (PAYSTREAM_*)
    base: Settings  # the shared stack's settings (its pid files)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def isolated(base: Settings, name: str, state_dir: Path, **overrides: object) -> Isolated:
    """Settings for a pipeline called ``name``, its contracts deployed and its
    topics created. Every topic it uses starts with ``name``."""
    values: dict[str, object] = {
        "state_dir": state_dir,
        "app_id": name,
        "topic_prefix": f"{name}-",
        "worker_web_port": free_port(base.host),
        **overrides,
    }
    settings = base.model_copy(update=values)
    env = {
        f"PAYSTREAM_{k.upper()}": json.dumps(sorted(v)) if isinstance(v, frozenset) else str(v)
        for k, v in values.items()
    }
    asyncio.run(_deploy(settings))
    create_topics(settings)
    return Isolated(settings, env, base)


async def _deploy(settings: Settings) -> None:
    w3 = web3_client(settings)
    try:
        await deploy(w3, settings, ChainKeys.from_settings(settings), tx_sender(w3, settings))
    finally:
        await w3.provider.disconnect()
