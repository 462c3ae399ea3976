"""``paystream bench ...``: benchmarks whose numbers go to docs/performance.md.

The baselines and the pipeline bench sample processes (psutil), plot (matplotlib)
and decode fast (orjson): the ``bench`` extra, which a plain ``pip install
paystream`` leaves out. Those commands check for it first and name the fix.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from services.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from devtools.bench.run import Outputs


BENCH_EXTRA = ("psutil", "matplotlib", "orjson")


def _require_bench_extra() -> None:
    """MissingDependency (one line, exit 1) when the ``bench`` extra is not installed."""
    from devtools.stack.errors import MissingDependency

    missing = [name for name in BENCH_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependency(
            f"this benchmark needs {', '.join(missing)}: install paystream's bench extra "
            "(`make setup`, or `pip install -e '.[bench]'`)"
        )


@click.group()
def bench() -> None:
    """Benchmarks (numbers go to docs/performance.md)."""
    # SIGTERM unwinds like Ctrl-C, so a run still stops the processes it started
    # (worker, sink, its own anvil) and deletes its topics.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


@bench.command("store")
@click.option("--payments", default=50_000, show_default=True)
@click.option("--batch", default=2_000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def bench_store(settings: Settings, payments: int, batch: int, as_json: bool) -> None:
    """Batched, idempotent ledger writes per second on a scratch database."""
    from rich.console import Console
    from rich.progress import Progress

    from devtools.bench.store import run_store_bench

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("ledger writes", total=payments)
        result = run_store_bench(settings, payments, batch, lambda n: bar.advance(task, n))
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(
            f"{result['payments_per_s']:,.0f} settled payments/s = "
            f"{result['rows_per_s']:,.0f} rows/s (batches of {batch}, "
            f"{result['seconds']:.1f} s for {payments:,})"
        )


@bench.command("restart")
@click.option(
    "--history", default=1_000_000, show_default=True, help="Settled payments in history."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def bench_restart(settings: Settings, history: int, as_json: bool) -> None:
    """Seconds from starting a worker to its first answer, with HISTORY settled
    payments in its tables against none (each on a pipeline of its own), and
    its RSS; against issue 16's targets for 1,000,000 payments."""
    from rich.console import Console

    from devtools.bench.restart import run_restart_bench

    result = run_restart_bench(settings, history, Console(stderr=True))
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(
            f"first answer after start: {result['empty']['first_answer_s']} s with no history, "
            f"{result['history']['first_answer_s']} s with {history:,} payments "
            f"(x{result['ratio']})"
        )
        for name, t in result["targets"].items():
            met = "met" if t["met"] else "NOT met"
            click.echo(f"  {name}: {t['measured']} (target {t['target']}): {met}")


@bench.command("gateway")
@click.option("--payments", default=300, show_default=True)
@click.option("--rate", default=30.0, show_default=True, help="POSTs offered per second.")
@click.option(
    "--saturate", default=5_000, show_default=True, help="Then this many POSTs as fast as possible."
)
@click.option(
    "--target",
    default=15_000,
    show_default=True,
    help="Then this many POSTs offered at 1,000/s, the gateway alone.",
)
@click.option(
    "--gateway-workers",
    "workers",
    type=click.IntRange(min=1),
    default=None,
    help="The gateway's processes [default: PAYSTREAM_GATEWAY_WORKERS, as paystream gateway].",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def bench_gateway(
    settings: Settings,
    payments: int,
    rate: float,
    saturate: int,
    target: int,
    workers: int | None,
    as_json: bool,
) -> None:
    """The merchant API on a pipeline of its own: the time to answer a POST, and
    how long each stage change takes to appear in the API."""
    from rich.console import Console
    from rich.progress import Progress

    from devtools.bench.gateway import run_gateway_bench

    console = Console(stderr=True)
    with Progress(console=console, transient=True) as progress:

        def bar(label: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(label, total=total)
            return lambda n: progress.advance(task, n)

        result = run_gateway_bench(
            settings,
            payments,
            rate,
            saturate,
            target,
            workers or settings.gateway_workers,
            console,
            bar,
        )
    if as_json:
        click.echo(json.dumps(result))
        return
    post = result["post_answer_ms"]
    click.echo(
        f"POST answered in p50 {post['p50']} ms, p99 {post['p99']} ms "
        f"({result['posted_per_s']}/s offered {rate}/s)"
    )
    for stage, q in result["stage_visible_after_ms"].items():
        click.echo(f"  {stage:<10} visible after p50 {q['p50']} ms, p99 {q['p99']} ms")
    click.echo(f"  (one read of the list: p50 {result['list_read_ms']['p50']} ms)")
    phases = (
        ("saturation, with the worker", "saturation"),
        ("saturation, alone", "saturation_gateway_alone"),
        ("1,000/s offered, alone", "gateway_alone_at_target"),
    )
    for label, key in phases:
        top = result[key]
        click.echo(
            f"{label}: {top['accepted_per_s']} payments/s accepted, POST p50 "
            f"{top['post_answer_ms']['p50']} ms, p99 {top['post_answer_ms']['p99']} ms "
            f"({top['by_status']})"
        )


@bench.command("hop", hidden=True)
@click.option("--source", required=True, help="Topic to consume.")
@click.option("--sink", required=True, help="Topic to produce every record to.")
@click.option("--group", required=True, help="Consumer group id.")
@click.option("--batch", default=1_000, show_default=True, help="Records per consume() call.")
@click.pass_obj
def bench_hop(settings: Settings, source: str, sink: str, group: str, batch: int) -> None:
    """One hop of the raw baseline, until SIGTERM (started by `bench raw`)."""
    from devtools.bench.hops import HopPlan, run_hop

    passed = run_hop(settings, HopPlan(source, sink, group, batch_max=batch))
    click.echo(f"{source} -> {sink}: {passed} records", err=True)


@bench.command("noop-worker", hidden=True)
@click.option("--app-id", required=True)
@click.option("--datadir", required=True, type=click.Path(path_type=Path))
@click.option("--topic", "topics", multiple=True, required=True, help="T0 ... Tn, in order.")
@click.option(
    "-l",
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["crit", "error", "warn", "info"]),
)
@click.pass_obj
def bench_noop_worker(
    settings: Settings, app_id: str, datadir: Path, topics: tuple[str, ...], loglevel: str
) -> None:
    """The Faust worker of the no-op baseline (started by `bench faust-noop`)."""
    from devtools.bench.noop_app import create_noop_app
    from paystream.cli.pipeline import run_faust_worker, use_event_loop

    use_event_loop(settings)
    datadir.mkdir(parents=True, exist_ok=True)
    app = create_noop_app(settings, app_id, topics, datadir)
    run_faust_worker(app, loglevel)


@bench.command("raw")
@click.option("--records", default=50_000, show_default=True)
@click.option("--record-bytes", default=300, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def bench_raw(settings: Settings, records: int, record_bytes: int, as_json: bool) -> None:
    """Baseline: records/s through 4 confluent-kafka pass-through hops (one process each)."""
    _require_bench_extra()
    from devtools.bench.baselines import run_raw_4hop

    _run_baseline(run_raw_4hop, settings, records, record_bytes, as_json)


@bench.command("faust-noop")
@click.option("--records", default=50_000, show_default=True)
@click.option("--record-bytes", default=300, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def bench_faust_noop(settings: Settings, records: int, record_bytes: int, as_json: bool) -> None:
    """Baseline: records/s through 4 no-op agents of one Faust worker."""
    _require_bench_extra()
    from devtools.bench.baselines import run_faust_noop

    _run_baseline(run_faust_noop, settings, records, record_bytes, as_json)


def _run_baseline(
    run: Callable[..., Any], settings: Settings, records: int, record_bytes: int, as_json: bool
) -> None:
    import dataclasses

    from rich.console import Console
    from rich.progress import Progress

    from services.errors import PaystreamError

    try:
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("records on T4", total=records)
            result = run(settings, records, record_bytes, lambda n: bar.advance(task, n))
    except PaystreamError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from exc
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(result)))
        return
    cpu = ", ".join(
        f"{name} {u['cpu_percent']:.0f}% CPU {u['rss_mib']:.0f} MiB"
        for name, u in result.processes.items()
    )
    click.echo(
        f"{result.name}: {result.per_s:,.0f} records/s ({result.records:,} records of "
        f"{record_bytes} B in {result.seconds:.2f} s); {cpu}"
    )


@bench.command("run")
@click.option("--quick", is_flag=True, help="A short run (smoke size); not recorded by default.")
@click.option("--json", "as_json", is_flag=True, help="Also print the result as JSON on stdout.")
@click.option(
    "--record/--no-record",
    default=None,
    help="Append a section to docs/performance.md (default: yes, unless --quick).",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Result directory.")
@click.option("--p99-target-ms", default=1_500.0, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Faust worker processes.")
@click.pass_obj
def bench_run(
    settings: Settings,
    quick: bool,
    as_json: bool,
    record: bool | None,
    out: Path | None,
    p99_target_ms: float,
    workers: int,
) -> None:
    """Baselines (raw 4-hop Kafka, no-op Faust), then the pipeline: saturation,
    capacity search, 70 % load. Writes a JSON result and a PNG."""
    _require_bench_extra()
    from dataclasses import replace

    from rich.console import Console

    from devtools.bench.pipeline import QUICK, BenchPlan
    from devtools.bench.run import Outputs, run_bench

    plan = replace(QUICK if quick else BenchPlan(), p99_target_ms=p99_target_ms, workers=workers)
    directory = out or settings.state_dir / "bench"
    keep = record if record is not None else not quick
    outputs = Outputs(directory / "result.json", directory / "result.png", keep)
    command = "paystream " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    console = Console(stderr=True)
    result = run_bench(settings, plan, command, outputs, console)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    _summary(result, outputs, console)


def _summary(result: dict[str, Any], outputs: Outputs, console: Console) -> None:
    from devtools.bench.report import markdown

    console.print(markdown(result, None))
    console.print(f"result: {outputs.json_path}  plot: {outputs.png_path}")


@bench.command("load")
@click.option(
    "--rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Offered payments/s (0: as fast as possible).",
)
@click.option("--duration", "duration_s", type=float, default=None, help="Seconds of load.")
@click.option("--count", type=int, default=None, help="Requests to send.")
@click.option("--payers", default=200, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Faust worker processes.")
@click.pass_obj
def bench_load(
    settings: Settings,
    rate: float,
    duration_s: float | None,
    count: int | None,
    payers: int,
    workers: int,
) -> None:
    """One phase of load on a fresh pipeline; prints its numbers as JSON."""
    _require_bench_extra()
    from dataclasses import replace

    from rich.console import Console

    from devtools.bench.pipeline import BenchPlan
    from devtools.bench.run import run_load

    if (duration_s is None) == (count is None):
        raise click.UsageError("give --duration or --count")
    if not rate and count is None:
        raise click.UsageError("as fast as possible (--rate 0) needs --count")
    plan = replace(BenchPlan(), payers=payers, workers=workers)
    result = run_load(settings, plan, rate or None, duration_s, count, Console(stderr=True))
    click.echo(json.dumps(result, indent=2))
