"""``paystream bench ...``: benchmarks whose numbers go to docs/performance.md."""

from __future__ import annotations

import click

from services.settings import Settings


@click.group()
def bench() -> None:
    """Benchmarks (numbers go to docs/performance.md)."""


@bench.command("store")
@click.option("--payments", default=50_000, show_default=True)
@click.option("--batch", default=2_000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def bench_store(settings: Settings, payments: int, batch: int, as_json: bool) -> None:
    """Batched, idempotent ledger writes per second on a scratch database."""
    import json

    from rich.console import Console
    from rich.progress import Progress

    from services.store.bench import run_store_bench

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
