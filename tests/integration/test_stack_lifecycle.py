"""The local stack's life cycle on private instances (own state dir and ports):
up, status, down by pid, data kept across down/up, reset, and a clear error
when a service cannot start. Redis and anvil start in well under a second;
Kafka and PostgreSQL go through the same code paths in the session's stack."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devtools.harness.isolated import free_port
from devtools.stack.anvil import rpc
from devtools.stack.errors import StackError
from devtools.stack.manager import LocalStack
from devtools.stack.process import pid_alive
from services.settings import Settings

pytestmark = pytest.mark.integration

SERVICES = ["redis", "anvil"]


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Settings]:
    settings = Settings().model_copy(
        update={
            "state_dir": tmp_path / "state",
            "redis_port": free_port(),
            "anvil_port": free_port(),
            "anvil_block_time_s": 0.0,  # automine: one block per transaction
            "stack_start_timeout_s": 60.0,
        }
    )
    yield settings
    LocalStack(settings).down(SERVICES)


def _mine_one(settings: Settings) -> int:
    rpc(settings.chain_rpc_url, "evm_mine", [], timeout_s=5)
    return int(str(rpc(settings.chain_rpc_url, "eth_blockNumber", [], timeout_s=5)), 16)


def test_up_down_up_keeps_data_and_stops_by_pid(private: Settings) -> None:
    stack = LocalStack(private)
    stack.up(SERVICES)
    first = {s.name: s for s in stack.status(SERVICES)}
    assert all(s.healthy and s.managed and s.pid for s in first.values())

    redis.Redis(host=private.host, port=private.redis_port).set("survives", b"yes")
    height = _mine_one(private)
    assert height >= 1

    stack.up(SERVICES)  # idempotent: nothing new starts
    assert {s.name: s.pid for s in stack.status(SERVICES)} == {n: s.pid for n, s in first.items()}

    stack.down(SERVICES)
    for status in first.values():
        assert status.pid is not None and not pid_alive(status.pid)
    assert not any(s.healthy for s in stack.status(SERVICES))

    stack.up(SERVICES)
    assert redis.Redis(host=private.host, port=private.redis_port).get("survives") == b"yes"
    assert _mine_one(private) == height + 1

    stack.reset(SERVICES)
    assert not (private.state_dir / "redis").exists()
    assert not (private.state_dir / "anvil").exists()


def test_status_json_from_the_cli(private: Settings) -> None:
    LocalStack(private).up(["redis"])
    env = {
        **os.environ,
        "PAYSTREAM_STATE_DIR": str(private.state_dir),
        "PAYSTREAM_REDIS_PORT": str(private.redis_port),
        "PAYSTREAM_ANVIL_PORT": str(private.anvil_port),
    }
    cli = [sys.executable, "-c", "from paystream.cli import main; main()"]
    done = subprocess.run(
        [*cli, "stack", "status", "--json", "redis"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["name"] == "redis"
    assert row["url"] == f"redis://127.0.0.1:{private.redis_port}/0"
    assert row["healthy"] is True

    anvil_down = subprocess.run(
        [*cli, "stack", "status", "--json", "anvil"], env=env, capture_output=True, timeout=60
    )
    assert anvil_down.returncode == 1
    assert json.loads(anvil_down.stdout)[0]["healthy"] is False


def test_a_service_that_cannot_start_says_why(private: Settings) -> None:
    # Something that is not an EVM node holds anvil's port.
    with socket.socket() as squatter:
        squatter.bind((private.host, private.anvil_port))
        squatter.listen()
        with pytest.raises(StackError) as info:
            LocalStack(private).up(["anvil"])
    message = str(info.value)
    assert "anvil" in message
    assert "anvil.log" in message
    assert "in use" in message.lower()
