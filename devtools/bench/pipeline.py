"""The whole engine under load: an isolated pipeline (worker and ledger sink as
child processes, its own topics and contracts) on the local stack, funded
payers, then three phases of load:

1. **saturation**: ``saturation_count`` requests as fast as possible; its
   throughput is the most the pipeline can do.
2. **capacity search**: open-loop steps at falling offered rates, starting at
   the saturation throughput; the first rate that is sustained (everything
   finishes, the pipeline keeps up, p99 requested->settled within the target)
   is the capacity.
3. **70 % load**: ``final_s`` seconds at 70 % of the capacity: the latencies to
   compare with the targets.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import orjson
import psutil

from devtools.bench.measure import Phase, measure
from devtools.bench.procstat import ProcessSampler
from devtools.harness.chain import fund_payers, gas_used
from devtools.harness.collect import Collector
from devtools.harness.isolated import Isolated, free_port
from devtools.harness.load import LoadGenerator, new_payees
from devtools.harness.process import SinkProcess, WorkerProcess
from devtools.stack.manager import LocalStack

Say = Callable[[str], None]
Bar = Callable[[str, int], Callable[[int], None]]  # (description, total) -> advance


@dataclass(frozen=True)
class BenchPlan:
    """Sizes of a run. Payers must cover the fraud rule's velocity limit (120
    requests a minute each by default) at the rates offered."""

    payers: int = 300
    payees: int = 200
    saturation_count: int = 5_000
    step_s: float = 10.0
    max_steps: int = 6
    step_factor: float = 0.75  # each step offers this much of the previous rate
    final_s: float = 30.0
    p99_target_ms: float = 1_500.0
    max_amount: int = 1_000_000  # minor units (1 PTUSD)
    deposit_each: int = 10**12
    drain_timeout_s: float = 600.0
    warmup_count: int = 200
    workers: int = 1  # Faust worker processes sharing the partitions
    # Each baseline runs baseline_repeats times, each run 10-20 s on this
    # machine (raw: 50,000-100,000 records/s; no-op Faust: about 1,500).
    raw_records: int = 1_000_000
    faust_records: int = 30_000
    baseline_repeats: int = 3


QUICK = BenchPlan(
    payers=60,
    payees=20,
    saturation_count=1_500,
    step_s=3.0,
    max_steps=2,
    final_s=4.0,
    drain_timeout_s=120.0,
    warmup_count=50,
    raw_records=5_000,
    faust_records=2_000,
    baseline_repeats=1,
)


@dataclass
class PipelineRun:
    saturation: Phase
    steps: list[Phase]
    final: Phase
    capacity_per_s: float | None
    dead_letters: int
    gas_per_payment: int
    onchain_transactions: int
    processes: dict[str, dict[str, dict[str, float]]]  # phase -> process -> usage
    record_bytes: int
    elapsed_s: float = 0.0
    timeline: list[tuple[float, str]] = field(default_factory=list, repr=False)


def stack_pids(run: Isolated) -> dict[str, int]:
    """The processes serving this run: whatever listens on its Kafka, PostgreSQL,
    Redis and anvil ports (its anvil is its own), else the stack's pid files."""
    s, base = run.settings, run.base
    ports = {"kafka": s.kafka_port, "postgres": s.pg_port, "redis": s.redis_port}
    ports["anvil"] = s.anvil_port
    try:
        listening = {
            c.laddr.port: c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid is not None and c.laddr
        }
    except psutil.Error:
        listening = {}
    pids = {name: int(listening[port]) for name, port in ports.items() if port in listening}
    shared = {name for name in ports if name != "anvil" or s.anvil_port == base.anvil_port}
    missing = shared - set(pids)
    for status in LocalStack(base).status(sorted(missing)) if missing else []:
        if status.name in missing and status.pid is not None:
            pids[status.name] = status.pid
    return pids


@contextmanager
def loaded(run: Isolated, plan: BenchPlan, say: Say, bar: Bar) -> Iterator[Phases]:
    """The isolated pipeline running (worker, ledger sink), its payers funded and
    credited, the collector reading its outputs, and a warm-up phase done."""
    payers = [f"{run.settings.app_id}-payer-{i:05d}" for i in range(plan.payers)]
    payees = new_payees(plan.payees)
    logs = run.settings.state_dir / "logs"
    collector = Collector(run.settings, decode=orjson.loads).start()
    try:
        with ExitStack() as children:
            workers = [
                children.enter_context(
                    WorkerProcess(
                        run.settings.model_copy(update={"worker_web_port": free_port()}),
                        logs / f"worker-{i + 1}.log",
                        run.env,
                    )
                )
                for i in range(plan.workers)
            ]
            sink = children.enter_context(SinkProcess(run.settings, logs / "sink.log", run.env))
            pids = {**stack_pids(run), "bench": os.getpid()}
            named = [
                (f"worker-{i + 1}" if len(workers) > 1 else "worker", w)
                for i, w in enumerate(workers)
            ]
            for name, child in [*named, ("sink", sink)]:
                if child.process is not None:
                    pids[name] = child.process.pid
            funding = bar("deposits on chain", len(payers))
            asyncio.run(
                fund_payers(run.settings, payers, plan.deposit_each, funding, concurrency=128)
            )
            workers[0].wait_credited(payers, plan.deposit_each, plan.drain_timeout_s, workers[1:])
            load = LoadGenerator(run.settings, payers, payees, plan.max_amount)
            phases = Phases(load, collector, plan, bar, say, pids)
            phases.run("warm-up", 100.0, count=plan.warmup_count)
            yield phases
    finally:
        collector.stop()


def run_pipeline(run: Isolated, plan: BenchPlan, say: Say, bar: Bar) -> PipelineRun:
    """Saturation, capacity search, then 70 % of the capacity."""
    started = time.monotonic()
    with loaded(run, plan, say, bar) as phases:
        saturation = phases.run("saturation", None, count=plan.saturation_count, sample=True)
        steps = phases.search(saturation.payments_per_s)
        capacity = capacity_of(steps, plan.p99_target_ms)
        final_rate = 0.7 * (capacity or min(s.offered_per_s or 0.0 for s in steps))
        final = phases.run("70% load", round(final_rate, 1), duration_s=plan.final_s, sample=True)
    every = [saturation, *steps, final]
    txs, gas = asyncio.run(gas_used(run.settings, {h for p in every for h in p.tx_hashes}))
    settled = sum(p.settled for p in every)
    return PipelineRun(
        saturation=saturation,
        steps=steps,
        final=final,
        capacity_per_s=capacity,
        dead_letters=phases.collector.outcomes.dead_letters,
        gas_per_payment=gas // settled if settled else 0,
        onchain_transactions=txs,
        processes=phases.usage,
        record_bytes=phases.load.record_bytes,
        elapsed_s=time.monotonic() - started,
        timeline=phases.timeline,
    )


def capacity_of(steps: list[Phase], p99_target_ms: float) -> float | None:
    """The highest offered rate that was sustained (None: none was)."""
    rates = [s.offered_per_s or 0.0 for s in steps if s.sustained(p99_target_ms)]
    return max(rates, default=None)


@dataclass
class Phases:
    load: LoadGenerator
    collector: Collector
    plan: BenchPlan
    bar: Bar
    say: Say
    pids: dict[str, int]
    timeline: list[tuple[float, str]] = field(default_factory=list)
    usage: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    origin_s: float = field(default_factory=time.time)

    def run(
        self,
        name: str,
        rate: float | None,
        count: int | None = None,
        duration_s: float | None = None,
        sample: bool = False,
    ) -> Phase:
        """Publish, wait for every outcome, measure; ``sample``: also the CPU and
        memory of every process meanwhile (in ``usage[name]``)."""
        total = count if count is not None else round((rate or 0) * (duration_s or 0))
        offered = "as fast as possible" if rate is None else f"{rate:,.0f}/s"
        with ProcessSampler(self.pids if sample else {}) as sampler:
            sent = self.load.publish(rate, duration_s, count, self.bar(f"{name}: {offered}", total))
            done = self.collector.wait_finished(sent.ids, self.plan.drain_timeout_s)
        if sample:
            self.usage[name] = sampler.usage()
        phase = measure(name, rate, sent.ids, self.collector.traces(sent.ids))
        shift = sent.started_s - self.origin_s
        self.timeline += [(t + shift, stage) for t, stage in phase.timeline]
        p99 = phase.latency_ms["settled"]["p99"]
        self.say(
            f"{name}: {done}/{len(sent.ids)} finished, {phase.payments_per_s:,.0f} payments/s, "
            f"p99 settled {p99 if p99 is not None else '-'} ms"
        )
        return phase

    def search(self, start_per_s: float) -> list[Phase]:
        """Falling offered rates until one is sustained (at most ``max_steps``)."""
        steps: list[Phase] = []
        rate = max(start_per_s, 1.0)
        for _ in range(self.plan.max_steps):
            step = self.run("step", round(rate, 1), duration_s=self.plan.step_s)
            steps.append(step)
            if step.sustained(self.plan.p99_target_ms):
                break
            rate *= self.plan.step_factor
        return steps


def new_run_name() -> str:
    return f"bench-{time.strftime('%m%d%H%M%S')}-{uuid.uuid4().hex[:4]}"
