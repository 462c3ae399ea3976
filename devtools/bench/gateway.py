"""``paystream bench gateway``: the merchant API on a pipeline of its own
(``isolated_run``: its own chain, scratch database and topics) with a worker,
a ledger sink and ``paystream gateway --workers N`` (one per core by default).

It measures:

- ``POST /v1/payments``: the time to answer (the request published and
  confirmed by Kafka), at a paced rate;
- how long a stage change takes to appear in the API: the merchant's list is
  read again and again, and the first time a payment shows a stage is compared
  with that stage's recorded time (the sink's batch, its lag and the polling
  interval, which is reported);
- then saturation: ``saturate`` POSTs as fast as the gateway answers them, from
  32 connections of a load generator in its own process, with admission on
  (the merchant's key limit lifted): payments accepted per second and the
  answer times of those accepted. The worker keeps running; when it falls
  more than ``admission_lag_max_s`` (120 s here) behind, the gateway answers
  429, which the result counts;
- the same with the worker stopped: the gateway alone (with the sink, Kafka,
  PostgreSQL and Redis), the requests left on the topic;
- then, still alone, ``target`` POSTs offered at issue 18's 1,000/s in an open
  loop: whether the gateway carries that rate, and its answer times then.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from devtools.bench.gateway_load import run_load
from devtools.bench.run import isolated_run
from devtools.harness.chain import fund_payers
from devtools.harness.isolated import free_port
from devtools.harness.merchant import MerchantClient, register_merchant
from devtools.harness.process import GatewayProcess, SinkProcess, WorkerProcess
from services.metrics.stats import percentile

ENDED = ("finalized", "failed", "rejected")
CONCURRENCY = 32
OPEN_LOOP_CONNECTIONS = 256  # at most; more than the gateway keeps busy at the target rate
TARGET_PER_S = 1_000.0  # issue 18: accepted payments/s with POST p99 <= 50 ms
ALONE_LAG_MAX_S = 120.0
DEPOSIT = 10_000_000_000


def _post_all(
    merchant: MerchantClient,
    payers: list[str],
    count: int,
    rate_per_s: float,
    progress: Callable[[int], None],
) -> tuple[list[str], list[float], float]:
    ids, answer_ms = [], []
    started = time.monotonic()
    for i in range(count):
        due = started + i / rate_per_s
        time.sleep(max(0.0, due - time.monotonic()))
        began = time.perf_counter()
        ids.append(merchant.create(payers[i % len(payers)], 1_000 + i)["id"])
        answer_ms.append((time.perf_counter() - began) * 1000)
        progress(1)
    return ids, answer_ms, time.monotonic() - started


def _watch(
    merchant: MerchantClient,
    posting: Future[tuple[list[str], list[float], float]],
    timeout_s: float,
    progress: Callable[[int], None],
) -> tuple[dict[str, list[float]], list[float], int]:
    """Read the list while payments are posted and until every one ended: per
    stage, the ms from the stage's time to the first read showing it; the time
    each read took; the payments not ended."""
    seen: set[tuple[str, str]] = set()
    delays: dict[str, list[float]] = {}
    reads_ms: list[float] = []
    ended: set[str] = set()
    ids: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while not posting.done() or (ended != ids and time.monotonic() < deadline):
        if posting.done():
            ids = set(posting.result()[0])
        began = time.perf_counter()
        payments = merchant.all_payments()
        now = datetime.now(UTC)
        reads_ms.append((time.perf_counter() - began) * 1000)
        for p in payments:
            for stage, at in p["stages"].items():
                if stage == "requested" or (p["id"], stage) in seen:
                    continue
                seen.add((p["id"], stage))
                shown = (now - datetime.fromisoformat(at)).total_seconds() * 1000
                delays.setdefault(stage, []).append(shown)
            if p["status"] in ENDED and p["id"] not in ended:
                ended.add(p["id"])
                progress(1)
    return delays, reads_ms, len(ids - ended)


def _quantiles(values: list[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        **{
            f"p{q}": round(v, 1) if (v := percentile(values, q)) is not None else None
            for q in (50, 95, 99)
        },
    }


def _load(
    merchant: MerchantClient, payers: list[str], count: int, rate_per_s: float | None = None
) -> dict[str, Any]:
    """``count`` POSTs from a process of its own: as fast as the gateway
    answers them from ``CONCURRENCY`` connections, or offered at ``rate_per_s``
    (open loop: each answer's time counted from when its request was due)."""
    url = f"http://{merchant.settings.host}:{merchant.settings.gateway_port}/v1/payments"
    currency = merchant.settings.currency[0]
    bodies = [
        {"payer_account": payers[i % len(payers)], "amount": 1_000 + i, "currency": currency}
        for i in range(count)
    ]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        connections = CONCURRENCY if rate_per_s is None else OPEN_LOOP_CONNECTIONS
        done = pool.submit(
            run_load, url, merchant.api_key, bodies, connections, rate_per_s
        ).result()
    statuses = Counter(status for status, _ in done["answers"])
    accepted_ms = [ms for status, ms in done["answers"] if status == 202]
    return {
        "requests": count,
        "offered_per_s": rate_per_s,
        "concurrency": connections,
        "by_status": {str(k): v for k, v in sorted(statuses.items())},
        "accepted_per_s": round(statuses[202] / done["elapsed_s"], 1),
        "post_answer_ms": _quantiles(accepted_ms),
    }


def run_gateway_bench(
    base: Any,
    payments: int,
    rate_per_s: float,
    saturate: int,
    target: int,
    workers: int,
    console: Console,
    bar: Callable[[str, int], Callable[[int], None]],
) -> dict[str, Any]:
    with isolated_run(base, console) as run:
        # Admission stays on; its lag limit is above the few seconds the gateway-alone
        # phase runs with the worker stopped.
        update = {"gateway_port": free_port(base.host), "admission_lag_max_s": ALONE_LAG_MAX_S}
        settings = run.settings.model_copy(update=update)
        env = {
            **run.env,
            "PAYSTREAM_GATEWAY_PORT": str(settings.gateway_port),
            "PAYSTREAM_ADMISSION_LAG_MAX_S": str(ALONE_LAG_MAX_S),
            "PAYSTREAM_GATEWAY_WORKERS": str(workers),
        }
        logs = settings.state_dir / "logs"
        payers = [f"{settings.app_id}-payer-{i}" for i in range(10)]
        with (
            WorkerProcess(settings, logs / "worker.log", env) as worker,
            SinkProcess(settings, logs / "sink.log", env),
            GatewayProcess(settings, logs / "gateway.log", env),
        ):
            asyncio.run(fund_payers(settings, payers, DEPOSIT))
            worker.wait_credited(payers, DEPOSIT, 180)
            # The bench measures the gateway, not a key's rate limit.
            merchant = register_merchant(settings, payers, "Bench Shop", limit=(1e9, 10**9))
            with ThreadPoolExecutor(1) as pool:
                posting = pool.submit(
                    _post_all, merchant, payers, payments, rate_per_s, bar("POST", payments)
                )
                delays, reads_ms, not_ended = _watch(
                    merchant, posting, 300, bar("following them to their end", payments)
                )
            _, answer_ms, took_s = posting.result()
            saturation = _load(merchant, payers, saturate)
            worker.stop()  # the gateway alone: nothing else takes the CPU
            alone = _load(merchant, payers, saturate)
            at_target = _load(merchant, payers, target, TARGET_PER_S)
    return {
        "payments": payments,
        "offered_per_s": rate_per_s,
        "posted_per_s": round(payments / took_s, 1),
        "post_answer_ms": _quantiles(answer_ms),
        "stage_visible_after_ms": {stage: _quantiles(v) for stage, v in sorted(delays.items())},
        "list_read_ms": _quantiles(reads_ms),
        "not_ended": not_ended,
        "saturation": saturation,
        "saturation_gateway_alone": alone,
        "gateway_alone_at_target": at_target,
        "admission_lag_max_s": settings.admission_lag_max_s,
        "gateway_workers": workers,
    }
