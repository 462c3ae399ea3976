"""``paystream lag``: how far behind each consumer group is (streams/ops/lag.py)."""

from __future__ import annotations

import json

import click

from services.settings import Settings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the lag as JSON.")
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="A consumer group (repeatable; default: the worker's and the sink's).",
)
@click.pass_obj
def lag(settings: Settings, as_json: bool, groups: tuple[str, ...]) -> None:
    """Consumer lag per group, topic and partition: committed and end offsets,
    records not yet read, and how long ago the first of them was written."""
    from streams.ops.lag import measure

    measured = measure(settings, list(groups) or None)
    if as_json:
        click.echo(json.dumps({"groups": [g.as_json() for g in measured]}, indent=2))
        return
    for g in measured:
        click.echo(f"{g.group}: lag {g.lag} records, {g.lag_seconds:.1f} s")
        click.echo(
            f"  {'TOPIC':<40} {'PART':>4} {'COMMITTED':>10} {'END':>10} {'LAG':>8} {'LAG_S':>8}"
        )
        for p in g.partitions:
            committed = "-" if p.committed is None else str(p.committed)
            click.echo(
                f"  {p.topic:<40} {p.partition:>4} {committed:>10} {p.end:>10} "
                f"{p.lag:>8} {p.lag_seconds:>8.1f}"
            )
