"""The rolling windows (``/windows/``) live in a Faust windowed table: two
workers each see every partition's counts (their own and, through the
table's standby replica, the other's), and a worker started after both
stopped restores them from the changelog."""

from __future__ import annotations

import urllib.error
import uuid
from pathlib import Path
from typing import Any

import pytest

from devtools.harness.isolated import free_port
from devtools.harness.load import LoadGenerator, new_payees
from devtools.harness.process import WorkerProcess
from schemas.partitioning import partition_for
from services.settings import Settings
from tests.integration.pipeline.conftest import make_pipeline
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

REQUESTS = 200


def refused(worker: WorkerProcess) -> int:
    """The refused requests in the worker's 60-s window (0 if it does not answer)."""
    windows: dict[str, Any] | None = worker.get_json("/windows/")
    if not windows:
        return 0
    settled = windows["stages"].get("settled")
    return int(settled["60s"]["rejected"]) if settled else 0


def owned(worker: WorkerProcess, accounts: dict[int, str]) -> set[int]:
    """The partitions the worker actively owns (its balance view answers for
    their accounts with ``?owned=1``)."""
    found = set()
    for partition, account in accounts.items():
        try:
            worker.get_text(f"/balances/{account}/?owned=1")
        except (OSError, urllib.error.URLError):
            continue  # 404: not its partition (or it does not answer yet)
        found.add(partition)
    return found


def one_account_per_partition(partitions: int) -> dict[int, str]:
    accounts: dict[int, str] = {}
    i = 0
    while len(accounts) < partitions:
        accounts.setdefault(partition_for(f"probe-{i}", partitions), f"probe-{i}")
        i += 1
    return accounts


def test_windows_combine_across_workers_and_survive_a_restart(
    stack_healthy: Settings, tmp_path: Path
) -> None:
    pipeline = make_pipeline(stack_healthy, tmp_path)
    s = pipeline.settings
    other = s.model_copy(update={"worker_web_port": free_port()})
    payers = [f"win-{uuid.uuid4().hex[:6]}-{i}" for i in range(40)]  # no deposits: refused
    load = LoadGenerator(s, payers, new_payees(5), max_amount=1_000)
    with (
        pipeline.worker() as first,
        WorkerProcess(other, tmp_path / "w2.log", pipeline.env) as second,
    ):
        accounts = one_account_per_partition(s.kafka_partitions)

        def shared() -> bool:
            mine, theirs = owned(first, accounts), owned(second, accounts)
            return bool(mine) and bool(theirs) and len(mine | theirs) == len(accounts)

        wait_for(shared, 60, "the partitions shared by both workers")
        load.publish(None, count=REQUESTS)
        wait_for(lambda: refused(first) == refused(second) == REQUESTS, 30, "both see all")
        partitions = [w.get_json("/windows/")["partitions"] for w in (first, second)]
        assert partitions[0] == partitions[1] and len(partitions[0]) == 2  # one per worker
    with pipeline.worker() as restarted:  # both stopped; the counts are in the changelog only
        wait_for(lambda: refused(restarted) == REQUESTS, 30, "the counts restored")
