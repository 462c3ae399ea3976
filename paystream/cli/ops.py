"""``paystream ops ...``: the ops page's companions."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def ops() -> None:
    """The ops page (/ops on the gateway) and its Grafana dashboard."""


@ops.command("grafana")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("deploy/grafana/paystream.json"),
    show_default=True,
    help="Where to write the dashboard ('-': standard output).",
)
def grafana_cmd(out: Path) -> None:
    """Write the Grafana dashboard: the ops page's panels, the same PromQL."""
    from devtools.ops.grafana import render

    text = render()
    if str(out) == "-":
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    click.echo(f"wrote {out}", err=True)
