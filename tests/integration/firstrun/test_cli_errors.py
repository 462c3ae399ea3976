"""Each command that meets a condition a user can fix (a service down, no
schema, no contract, a taken port) stops with one line naming the fix, exit 1,
and no traceback. Every case runs the real ``paystream`` command against the
real stack, with one setting pointed at the unready condition."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness.isolated import free_port
from services.settings import Settings

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "from paystream.cli import main; main()"]


def paystream(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_fix(done: subprocess.CompletedProcess[str], fix: str) -> None:
    if "Traceback" in done.stderr:
        pytest.fail(f"a traceback instead of one line:\n{done.stderr}", pytrace=False)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert fix in lines[0], lines[0]


@pytest.fixture
def closed_port() -> int:
    return free_port()  # nothing listens on it


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield int(squatter.getsockname()[1])


@pytest.fixture(scope="module")
def deployed_state(
    stack_healthy: Settings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A state directory with contracts of its own on the stack's chain."""
    env = {"PAYSTREAM_STATE_DIR": str(tmp_path_factory.mktemp("deployed") / "state")}
    done = paystream(env, "chain", "deploy")
    assert done.returncode == 0, done.stderr
    return env


@pytest.mark.parametrize(
    ("setting", "command", "fix"),
    [
        ("PAYSTREAM_PG_PORT", ["db", "migrate"], "paystream stack up"),
        ("PAYSTREAM_PG_PORT", ["audit", "verify"], "paystream stack up"),
        ("PAYSTREAM_KAFKA_PORT", ["topics", "create"], "paystream stack up"),
        ("PAYSTREAM_KAFKA_PORT", ["worker"], "paystream stack up"),
        ("PAYSTREAM_PG_PORT", ["worker"], "paystream stack up"),
        ("PAYSTREAM_ANVIL_PORT", ["chain", "deploy"], "paystream stack up"),
        ("PAYSTREAM_ANVIL_PORT", ["deposit", "payer-1", "5"], "paystream stack up"),
        ("PAYSTREAM_ANVIL_PORT", ["reconcile"], "paystream stack up"),
    ],
)
def test_a_service_down(
    stack_healthy: Settings, closed_port: int, setting: str, command: list[str], fix: str
) -> None:
    env = {setting: str(closed_port), "PAYSTREAM_CONNECT_TIMEOUT_S": "2"}
    if command == ["worker"]:
        env["PAYSTREAM_WORKER_WEB_PORT"] = str(free_port())
    assert_one_line_fix(paystream(env, *command), fix)


@pytest.mark.parametrize("command", [["audit", "verify"], ["db", "partitions"], ["reconcile"]])
def test_no_schema(fresh_db: Settings, deployed_state: dict[str, str], command: list[str]) -> None:
    env = {**deployed_state, "PAYSTREAM_PG_DATABASE": fresh_db.pg_database}
    assert_one_line_fix(paystream(env, *command), "paystream db migrate")


@pytest.mark.parametrize("command", [["deposit", "payer-1", "5"], ["worker"], ["reconcile"]])
def test_no_contracts(stack_healthy: Settings, tmp_path: Path, command: list[str]) -> None:
    env = {
        "PAYSTREAM_STATE_DIR": str(tmp_path / "empty"),
        "PAYSTREAM_WORKER_WEB_PORT": str(free_port()),
    }
    assert_one_line_fix(paystream(env, *command), "paystream chain deploy")


@pytest.mark.parametrize(
    ("currencies", "fix"),
    [
        ('{"USDC": 6}', "the deployed token is PTUSD with 6 decimals"),
        ('{"PTUSD": 6, "EURC": 6}', "PAYSTREAM_CURRENCIES names exactly"),
    ],
)
def test_a_currency_other_than_the_token(
    deployed_state: dict[str, str], currencies: str, fix: str
) -> None:
    env = {
        **deployed_state,
        "PAYSTREAM_CURRENCIES": currencies,
        "PAYSTREAM_WORKER_WEB_PORT": str(free_port()),
    }
    assert_one_line_fix(paystream(env, "worker"), fix)


def test_no_topics_is_an_empty_report(fresh_db: Settings, deployed_state: dict[str, str]) -> None:
    env = {**deployed_state, "PAYSTREAM_PG_DATABASE": fresh_db.pg_database}
    assert paystream(env, "db", "migrate").returncode == 0
    run = uuid.uuid4().hex[:8]
    env |= {"PAYSTREAM_APP_ID": f"fresh-{run}", "PAYSTREAM_TOPIC_PREFIX": f"fresh-{run}."}
    done = paystream(env, "reconcile", "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert '"payments.settled records": 0' in done.stdout


def test_a_taken_port(tmp_path: Path, taken_port: int) -> None:
    stack = paystream(
        {"PAYSTREAM_STATE_DIR": str(tmp_path / "state"), "PAYSTREAM_REDIS_PORT": str(taken_port)},
        "stack",
        "up",
        "redis",
    )
    assert stack.returncode == 1
    assert "Traceback" not in stack.stderr
    said = " ".join(stack.stderr.split())  # the console may wrap long lines
    assert f"port {taken_port} is in use" in said
    assert "PAYSTREAM_REDIS_PORT" in said
    worker = paystream({}, "worker", "--web-port", str(taken_port))
    assert_one_line_fix(worker, "--web-port")
