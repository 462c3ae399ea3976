"""``paystream bench run``: the baselines and the pipeline in one run, then the
JSON result, the PNG and (for full runs) a section in docs/performance.md."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from devtools.bench.baselines import repeated, run_faust_noop, run_raw_4hop
from devtools.bench.pipeline import BenchPlan, loaded, new_run_name, run_pipeline
from devtools.bench.report import markdown, plot, result_of
from devtools.harness.chain import gas_used
from devtools.harness.database import scratch_database
from devtools.harness.isolated import Isolated, isolated, private_chain
from devtools.stack.manager import LocalStack
from services.settings import PROJECT_ROOT, Settings
from streams.ops.topics import delete_topics

PERFORMANCE_DOC = PROJECT_ROOT / "docs" / "performance.md"


@dataclass(frozen=True)
class Outputs:
    json_path: Path
    png_path: Path
    record: bool  # append to docs/performance.md and keep the PNG in docs/bench/


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _bar(progress: Progress) -> Callable[[str, int], Callable[[int], None]]:
    def bar(description: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(description, total=total)
        return lambda n: progress.advance(task, n)

    return bar


@contextmanager
def isolated_run(base: Settings, console: Console) -> Iterator[Isolated]:
    """A pipeline of its own on the stack's Kafka and Redis, with its own anvil
    (a fresh chain: no state from earlier runs, none left in the stack's) and a
    scratch database (nothing written into the system of record)."""
    LocalStack(base).up(report=lambda m: console.print(f"  {m}", highlight=False))
    name = new_run_name()
    console.print(f"bench run [bold]{name}[/]")
    where = base.state_dir / "bench" / name
    with (
        private_chain(base.model_copy(update={"state_dir": where})) as chain,
        scratch_database(base, "bench") as db,
    ):
        run = isolated(base, name, where, anvil_port=chain.anvil_port, pg_database=db.pg_database)
        try:
            yield run
        finally:
            delete_topics(run.settings, f"{name}-")


def run_bench(
    base: Settings, plan: BenchPlan, command: str, outputs: Outputs, console: Console
) -> dict[str, Any]:
    with isolated_run(base, console) as run, _progress(console) as progress:
        bar = _bar(progress)
        times = plan.baseline_repeats
        raw, noop = (
            repeated(baseline, run.settings, n, times, bar(f"{label} x{times}", n * times))
            for baseline, n, label in (
                (run_raw_4hop, plan.raw_records, "baseline: raw 4-hop"),
                (run_faust_noop, plan.faust_records, "baseline: no-op Faust"),
            )
        )
        pipeline = run_pipeline(run, plan, console.print, bar)
    result = result_of(run.settings.app_id, command, plan, pipeline, raw, noop)
    outputs.json_path.parent.mkdir(parents=True, exist_ok=True)
    outputs.json_path.write_text(json.dumps(result, indent=2) + "\n")
    plot(pipeline, outputs.png_path)
    if outputs.record:
        kept = PERFORMANCE_DOC.parent / "bench" / f"{run.settings.app_id}.png"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(outputs.png_path, kept)
        with PERFORMANCE_DOC.open("a") as doc:
            doc.write("\n" + markdown(result, kept.relative_to(PERFORMANCE_DOC.parent)))
    return result


def run_load(
    base: Settings,
    plan: BenchPlan,
    rate: float | None,
    duration_s: float | None,
    count: int | None,
    console: Console,
) -> dict[str, Any]:
    """One phase of load at a fixed offered rate (None: as fast as possible)."""
    with (
        isolated_run(base, console) as run,
        _progress(console) as progress,
        loaded(run, plan, console.print, _bar(progress)) as p,
    ):
        phase = p.run("load", rate, count=count, duration_s=duration_s, sample=True)
        txs, gas = asyncio.run(gas_used(run.settings, set(phase.tx_hashes)))
    dead_letters = p.collector.outcomes.dead_letters
    chain = {"onchain_transactions": txs, "gas_per_payment": gas // max(phase.settled, 1)}
    return {**phase.summary(), **chain, "dlq_count": dead_letters, "processes": p.usage}
