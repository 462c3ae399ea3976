"""``paystream bench run`` and ``paystream bench load``: the whole engine under load."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from services.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from services.bench.run import Outputs


@click.command("run")
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
    from dataclasses import replace

    from rich.console import Console

    from services.bench.pipeline import QUICK, BenchPlan
    from services.bench.run import Outputs, run_bench

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
    from services.bench.report import markdown

    console.print(markdown(result, None))
    console.print(f"result: {outputs.json_path}  plot: {outputs.png_path}")


@click.command("load")
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
    from dataclasses import replace

    from rich.console import Console

    from services.bench.pipeline import BenchPlan
    from services.bench.run import run_load

    if (duration_s is None) == (count is None):
        raise click.UsageError("give --duration or --count")
    if not rate and count is None:
        raise click.UsageError("as fast as possible (--rate 0) needs --count")
    plan = replace(BenchPlan(), payers=payers, workers=workers)
    result = run_load(settings, plan, rate or None, duration_s, count, Console(stderr=True))
    click.echo(json.dumps(result, indent=2))
