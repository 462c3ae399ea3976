"""``paystream bench restart``: how long a worker takes to serve after a
(re)start with a large history in its tables, against the same with none.

Each case gets a pipeline of its own (``isolated_run``). The history is
written into the ``payments`` changelog as workers would have left it
(``devtools/harness/history.py``: settled payments requested a day ago, within
the retention, so all of it is restored), and the payers' balances, each with
its last finished payment ids. The time is from starting
``paystream worker`` to the answer to one request (a payer without funds:
``INSUFFICIENT_FUNDS``): start-up, table recovery and the first decision;
the worker's resident memory is read then, and again once the worker has
rebuilt its table indexes in the background (``paystream_oldest_hold_seconds``
is a number again, not NaN).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from confluent_kafka import Producer
from eth_account import Account
from rich.console import Console

from devtools.bench.report import targets
from devtools.bench.run import isolated_run
from devtools.harness.collect import collect
from devtools.harness.history import seed_balances, seed_history
from devtools.harness.isolated import Isolated
from devtools.harness.load import encode, request
from devtools.harness.process import WorkerProcess
from schemas.topics import PAYMENTS_REQUESTED
from services.bootstrap import kafka_producer_config
from services.settings import Settings

START_TIMEOUT_S = 900.0
# issue 16: after 1,000,000 payments (name -> (JSON path, comparison, target))
TARGETS: dict[str, tuple[str, str, float]] = {
    "first answer after a restart with the history (s)": ("history.first_answer_s", "<=", 10),
    "worker RSS with the history, indexes rebuilt (MiB)": (
        "history.worker_rss_indexed_mib",
        "<=",
        1024,
    ),
}
INDEX_TIMEOUT_S = 300.0
INDEXED = re.compile(r'^paystream_oldest_hold_seconds\{status="SCORED"\} (\S+)$', re.M)


def _indexed_s(worker: WorkerProcess, began: float) -> float | None:
    """Seconds from ``began`` until the worker's indexes are rebuilt (None: not in time)."""
    while time.monotonic() - began < INDEX_TIMEOUT_S:
        found = INDEXED.search(worker.get_text("/metrics"))
        if found and found.group(1) != "NaN":
            return time.monotonic() - began
        time.sleep(0.5)
    return None


def _rss_mib(worker: WorkerProcess) -> int:
    rss = psutil.Process(worker.process.pid).memory_info().rss if worker.process else 0
    return round(rss / 2**20)


def _serve_time(run: Isolated) -> dict[str, Any]:
    """Seconds from starting a worker to its answer to one request."""
    log = run.settings.state_dir / "logs" / "worker-restart.log"
    worker = WorkerProcess(run.settings, log, run.env)
    began = time.monotonic()
    worker.start(timeout_s=START_TIMEOUT_S)
    try:
        ready_s = time.monotonic() - began
        probe = request(f"{run.settings.app_id}-probe", str(Account.create().address), 1)
        producer = Producer(kafka_producer_config(run.settings))
        key, value = encode(probe)
        producer.produce(run.settings.topic(PAYMENTS_REQUESTED), key=key, value=value)
        producer.flush(30)
        answer = collect(run.settings, {str(probe.payment_id)}, START_TIMEOUT_S).failed
        served_s = time.monotonic() - began
        rss = _rss_mib(worker)
        indexed_s = _indexed_s(worker, began)
        return {
            "worker_rss_mib": rss,
            "web_ready_s": round(ready_s, 1),
            "first_answer_s": round(served_s, 1),
            "answer": answer[str(probe.payment_id)]["code"],
            "payments_entries": worker.table_entries("payments"),
            "indexed_s": None if indexed_s is None else round(indexed_s, 1),
            "worker_rss_indexed_mib": _rss_mib(worker),
        }
    finally:
        worker.stop()


def run_restart_bench(base: Settings, history: int, console: Console) -> dict[str, Any]:
    now = datetime.now(UTC)
    cases: dict[str, Any] = {}
    for label, count in (("empty", 0), ("history", history)):
        with isolated_run(base, console) as run:
            if count:
                started = time.monotonic()
                keys = seed_history(run.settings, count, lambda _: now - timedelta(days=1))
                size = seed_balances(run.settings, keys)
                console.print(
                    f"  seeded {count:,} payments and their payers' balances "
                    f"({size / 2**20:.0f} MiB) in {time.monotonic() - started:.0f} s"
                )
            cases[label] = _serve_time(run)
            console.print(f"  {label}: {cases[label]}")
    ratio = cases["history"]["first_answer_s"] / max(cases["empty"]["first_answer_s"], 0.1)
    result = {"history_payments": history, **cases, "ratio": round(ratio, 2)}
    return {**result, "targets": targets(result, TARGETS)}
